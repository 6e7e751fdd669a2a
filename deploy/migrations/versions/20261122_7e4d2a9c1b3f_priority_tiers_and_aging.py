"""priority tiers and aging

Issue 9, part 1: the priority an order asked for (on the order, and with its rank on each
allocation line), the counters of a SKU's lanes above the default rank, and the aging bound of
SKU policies and books. Existing rows are of the default tier, rank 0, with no higher lanes:
their queues are served exactly as before. Written by hand.

Revision ID: 7e4d2a9c1b3f
Revises: 5b1c0e7d9a42
Create Date: 2026-11-22 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7e4d2a9c1b3f"
down_revision: str | None = "5b1c0e7d9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customer_order",
        sa.Column("priority", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.add_column(
        "allocation_line",
        sa.Column("priority", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.add_column(
        "allocation_line",
        sa.Column("priority_rank", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    for table in ("sku_policy", "sku_book"):
        op.add_column(table, sa.Column("aging_seconds", sa.Float(), nullable=True))
    op.add_column(
        "sku_book",
        sa.Column(
            "lanes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("sku_book", "lanes")
    for table in ("sku_policy", "sku_book"):
        op.drop_column(table, "aging_seconds")
    op.drop_column("allocation_line", "priority_rank")
    op.drop_column("allocation_line", "priority")
    op.drop_column("customer_order", "priority")
