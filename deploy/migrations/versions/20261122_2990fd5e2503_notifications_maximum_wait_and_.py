"""notifications, maximum wait and alternatives

Revision ID: 2990fd5e2503
Revises: cf3fc36f1e4a
Create Date: 2026-11-22 01:28:08.314755
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2990fd5e2503"
down_revision: str | None = "cf3fc36f1e4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("picture", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "channel", "version"),
    )
    op.create_index(
        "ix_notification_due",
        "notification",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status in ('scheduled', 'sending', 'retrying')"),
    )
    op.create_index(op.f("ix_notification_order_id"), "notification", ["order_id"], unique=False)
    op.create_index(
        "ux_notification_scheduled",
        "notification",
        ["order_id", "channel"],
        unique=True,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_table(
        "notified_order",
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("picture", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.drop_table("customer_message")
    op.add_column(
        "allocation_line",
        sa.Column("expired", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "order_line",
        sa.Column(
            "alternatives",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("sku_book", sa.Column("max_wait_seconds", sa.Float(), nullable=True))
    op.add_column(
        "sku_book",
        sa.Column(
            "alternatives",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("sku_policy", sa.Column("max_wait_seconds", sa.Float(), nullable=True))
    op.add_column(
        "sku_policy",
        sa.Column(
            "alternatives",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("sku_policy", "alternatives")
    op.drop_column("sku_policy", "max_wait_seconds")
    op.drop_column("sku_book", "alternatives")
    op.drop_column("sku_book", "max_wait_seconds")
    op.drop_column("order_line", "alternatives")
    op.drop_column("allocation_line", "expired")
    op.create_table(
        "customer_message",
        sa.Column("order_id", sa.VARCHAR(), autoincrement=False, nullable=False),
        sa.Column("version", sa.INTEGER(), autoincrement=False, nullable=False),
        sa.Column("status", sa.VARCHAR(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.VARCHAR(), autoincrement=False, nullable=False),
        sa.Column("body", sa.VARCHAR(), autoincrement=False, nullable=False),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            autoincrement=False,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("order_id", "version", name=op.f("customer_message_pkey")),
    )
    op.drop_table("notified_order")
    op.drop_index(
        "ux_notification_scheduled",
        table_name="notification",
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.drop_index(op.f("ix_notification_order_id"), table_name="notification")
    op.drop_index(
        "ix_notification_due",
        table_name="notification",
        postgresql_where=sa.text("status in ('scheduled', 'sending', 'retrying')"),
    )
    op.drop_table("notification")
