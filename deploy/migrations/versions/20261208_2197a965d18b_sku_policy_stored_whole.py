"""SKU policies stored whole

Issue 17, "one shape per concept": a SKU policy's fields are declared once
(shared/contracts/policy.py), and the inventory's `sku_policy` and the allocator's `sku_book`
store the policy whole in one JSONB column, `policy`, read back through that declaration; a
new field needs no column. NULL where the SKU has no policy of its own (never set, or
tombstoned: the old `backorders` was NULL).

`sku_book` keeps `max_wait_seconds` and `aging_seconds`: the sweeps' SQL compares them for
every SKU. The allocator writes them with the policy; this leaves them as they are. In the
JSON the durations are seconds (a JSON number, which the declaration takes as it takes the
shop's "seconds or ISO 8601"), cut to the 365 days a policy may set today, since a row
written before durations were bounded may hold more and the declaration would refuse it.
Written by hand.

Revision ID: 2197a965d18b
Revises: 9d41c7a2e5b8
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2197a965d18b"
down_revision: str | None = "9d41c7a2e5b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The longest duration a policy may set (MAX_DURATION), in seconds.
_LONGEST = 365 * 86_400


def _bounded(column: str) -> str:
    # The old readers took 0 (and NULL) as "not set"; least() alone would turn NULL into
    # the bound.
    return f"case when {column} > 0 then least({column}, {_LONGEST}) end"


_POLICY = (
    "case when backorders is not null then jsonb_build_object("
    " 'backorders', backorders,"
    " 'max_backorder_quantity', max_backorder_quantity,"
    " 'max_backorder_quantity_per_customer', max_backorder_quantity_per_customer,"
    f" 'max_wait', {_bounded('max_wait_seconds')},"
    f" 'aging', {_bounded('aging_seconds')},"
    " 'alternatives', alternatives,"
    " 'delay_incentive', delay_incentive) end"
)
# Moved into `policy` on both tables; `sku_policy` moves its durations too.
_MOVED = (
    "backorders",
    "max_backorder_quantity",
    "max_backorder_quantity_per_customer",
    "alternatives",
    "delay_incentive",
)
_DURATIONS = ("max_wait_seconds", "aging_seconds")


def upgrade() -> None:
    for table in ("sku_policy", "sku_book"):
        op.add_column(
            table, sa.Column("policy", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
        )
        op.execute(f"update {table} set policy = {_POLICY}")
        for column in _MOVED:
            op.drop_column(table, column)
    for column in _DURATIONS:
        op.drop_column("sku_policy", column)


def _seconds(field: str) -> str:
    """A duration of the JSON in seconds: a number as it is; ISO 8601 (as the services write
    it) through an interval, whose year PostgreSQL counts as 365.25 days where the services
    count 365."""
    value = f"policy -> '{field}'"
    interval = f"(policy ->> '{field}')::interval"
    return (
        f"case jsonb_typeof({value}) when 'number' then ({value})::float8"
        f" when 'string' then extract(epoch from {interval})::float8"
        f" - date_part('year', {interval}) * 21600 end"
    )


def downgrade() -> None:
    for table in ("sku_book", "sku_policy"):
        op.add_column(
            table, sa.Column("backorders", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        op.add_column(table, sa.Column("max_backorder_quantity", sa.BigInteger(), nullable=True))
        op.add_column(
            table,
            sa.Column("max_backorder_quantity_per_customer", sa.BigInteger(), nullable=True),
        )
        op.add_column(
            table,
            sa.Column(
                "alternatives",
                postgresql.JSONB(astext_type=sa.Text()),
                server_default=sa.text("'[]'::jsonb"),
                nullable=False,
            ),
        )
        op.add_column(
            table,
            sa.Column("delay_incentive", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        )
    for column in _DURATIONS:
        op.add_column("sku_policy", sa.Column(column, sa.Float(), nullable=True))
    moved = (
        "backorders = policy ->> 'backorders',"
        " max_backorder_quantity = (policy ->> 'max_backorder_quantity')::bigint,"
        " max_backorder_quantity_per_customer ="
        " (policy ->> 'max_backorder_quantity_per_customer')::bigint,"
        " alternatives = coalesce(policy -> 'alternatives', '[]'::jsonb),"
        " delay_incentive = policy ->> 'delay_incentive'"
    )
    op.execute(f"update sku_book set {moved} where policy is not null")
    op.execute(
        f"update sku_policy set {moved}, max_wait_seconds = {_seconds('max_wait')},"
        f" aging_seconds = {_seconds('aging')} where policy is not null"
    )
    for table in ("sku_book", "sku_policy"):
        op.drop_column(table, "policy")
