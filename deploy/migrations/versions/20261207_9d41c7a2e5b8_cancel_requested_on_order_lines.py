"""cancel requested on order lines

Issue 21 defect 1: a line remembers that the customer asked to cancel it until its SKU's
book has said so, so a substitute of it still on its way is cancelled as it arrives instead
of being requested. Written by hand.

Revision ID: 9d41c7a2e5b8
Revises: 3f9b8c2d1e70
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "9d41c7a2e5b8"
down_revision: str | None = "3f9b8c2d1e70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "order_line",
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "order_line",
        sa.Column("cancel_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("order_line", "cancel_reason")
    op.drop_column("order_line", "cancel_requested")
