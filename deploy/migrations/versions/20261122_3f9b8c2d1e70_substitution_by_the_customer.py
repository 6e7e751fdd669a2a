"""substitution by the customer

Issue 9 part 4: an order line keeps the SKU policy's alternatives it was last told while it
waits (what a substitution may take), and a line taken instead of another's waiting part names
that line. Written by hand.

Revision ID: 3f9b8c2d1e70
Revises: 7e4d2a9c1b3f
Create Date: 2026-11-22 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3f9b8c2d1e70"
down_revision: str | None = "7e4d2a9c1b3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "order_line",
        sa.Column(
            "substitutes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "order_line",
        sa.Column("replaces", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("order_line", "replaces")
    op.drop_column("order_line", "substitutes")
