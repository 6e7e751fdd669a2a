"""The inventory service's state: the receipt ledger and the latest policy per SKU."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from shared.db.tables import SourcePositioned


class StockReceiptRow(SQLModel, table=True):
    __tablename__ = "stock_receipt"

    receipt_id: str = Field(primary_key=True)
    sku: str = Field(index=True)
    quantity: int = Field(sa_type=BigInteger)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RestockScheduleRow(SourcePositioned, table=True):
    """The latest word on each purchase order; quantity 0 once withdrawn."""

    __tablename__ = "restock_schedule"

    po_id: str = Field(primary_key=True)
    sku: str = Field(index=True)
    quantity: int = Field(sa_type=BigInteger)
    expected_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # Counts the messages applied, giving each forwarded command its own id.
    revision: int = 0
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SkuPolicyRow(SourcePositioned, table=True):
    __tablename__ = "sku_policy"

    sku: str = Field(primary_key=True)
    # The policy as handed to the SKU's book (shared/contracts/policy.py), whole; None after a
    # tombstone: the configured defaults apply.
    policy: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB(none_as_null=True), nullable=True)
    )
    # Counts the policy messages applied, giving each forwarded command its own id.
    revision: int = 0
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
