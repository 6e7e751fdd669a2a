from datetime import datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


class CustomerMessageRow(SQLModel, table=True):
    """One customer-facing message per order version; a redelivered version finds its row."""

    __tablename__ = "customer_message"

    order_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    status: str
    subject: str
    body: str
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
