"""customer policies: returning customers, per-customer cap, delay incentive

The policy fields of issue 9 (parts 2, 3 and 5): a per-customer cap and a delay incentive on
SKU policies and books, the customer behind each allocation line (what the cap counts), the
incentive on order lines (what notices show), the shop's word on a customer being returning (a
replay that changes it is a conflict), and the index the order service's look-up of a
customer's earlier orders uses. Written by hand.

Revision ID: 5b1c0e7d9a42
Revises: ac218ee6d43a
Create Date: 2026-11-22 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "5b1c0e7d9a42"
down_revision: str | None = "ac218ee6d43a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("sku_policy", "sku_book"):
        op.add_column(
            table,
            sa.Column("max_backorder_quantity_per_customer", sa.BigInteger(), nullable=True),
        )
        op.add_column(
            table,
            sa.Column("delay_incentive", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        )
    op.add_column(
        "allocation_line",
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.create_index(
        "ix_allocation_line_customer",
        "allocation_line",
        ["sku", "customer_id"],
        unique=False,
        postgresql_where=sa.text("waiting > 0 and customer_id is not null"),
    )
    op.add_column(
        "order_line",
        sa.Column("delay_incentive", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.add_column("customer_order", sa.Column("customer_returning", sa.Boolean(), nullable=True))
    op.create_index(
        "ix_customer_order_customer_id", "customer_order", ["customer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_customer_order_customer_id", table_name="customer_order")
    op.drop_column("customer_order", "customer_returning")
    op.drop_column("order_line", "delay_incentive")
    op.drop_index("ix_allocation_line_customer", table_name="allocation_line")
    op.drop_column("allocation_line", "customer_id")
    for table in ("sku_book", "sku_policy"):
        op.drop_column(table, "delay_incentive")
        op.drop_column(table, "max_backorder_quantity_per_customer")
