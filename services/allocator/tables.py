"""The allocator's state: one book row per SKU (its lock) and one row per order line."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class SkuBookRow(SQLModel, table=True):
    __tablename__ = "sku_book"

    sku: str = Field(primary_key=True)
    # Units on hand held by nobody; only ever above zero while the queue is empty.
    available: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    received_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The SKU's own policy (shared/contracts/policy.py), whole; None: it has none, the
    # configured defaults apply.
    policy: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB(none_as_null=True), nullable=True)
    )
    # The policy's `max_wait` and `aging` in seconds (None: the global default), written with
    # it: the sweeps' SQL compares them for every SKU (repository/sweep_probes.py).
    max_wait_seconds: float | None = None
    aging_seconds: float | None = None
    # The counters of the lanes above the default rank (services/allocator/domain/ranks.py),
    # one object each; empty while no order asked for a higher priority.
    lanes: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    )
    # The queue's counters (see services/allocator/domain/book.py): the arrival number the next
    # waiting line draws, units ever queued, and units that left it at the head.
    next_seq: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))
    queued_units: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )
    departed_units: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )
    newest_requested_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AllocationLineRow(SQLModel, table=True):
    __tablename__ = "allocation_line"
    __table_args__ = (
        Index("ix_allocation_line_queue", "sku", "seq", postgresql_where=text("waiting > 0")),
        Index("ix_allocation_line_through", "sku", "through", postgresql_where=text("waiting > 0")),
        # A customer's waiting lines of a SKU: what a per-customer cap counts.
        Index(
            "ix_allocation_line_customer",
            "sku",
            "customer_id",
            postgresql_where=text("waiting > 0 and customer_id is not null"),
        ),
    )

    order_id: str = Field(primary_key=True)
    line_id: str = Field(primary_key=True)
    sku: str
    # Whose line it is, as the order service stamped it; None on lines from before.
    customer_id: str | None = None
    # The priority tier the order asked for and its rank then (0: the default tier). The rank
    # the line waits in now, raised by aging, is its seq's lane (see domain/ranks.py).
    priority: str | None = None
    priority_rank: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    # Arrival number and units queued up to and including the line; 0 if it never waited.
    seq: int = Field(sa_type=BigInteger)
    through: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )
    quantity: int
    allocated: int = 0
    rejected: int = 0
    waiting: int = 0
    cancelled: bool = False
    # Cancelled because it waited longer than the SKU's maximum wait.
    expired: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    reason: str | None = None
    revision: int = 0
    # The expected date last told: a recomputation publishes only when it moves.
    eta: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    requested_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class QueueGapRow(SQLModel, table=True):
    """A line that left the middle of its SKU's queue: its units count for the lines behind it
    until the head passes it."""

    __tablename__ = "allocation_queue_gap"

    sku: str = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    units: int = Field(sa_type=BigInteger)


class ScheduledRestockRow(SQLModel, table=True):
    """Supply expected for a SKU: what expected dates are computed from."""

    __tablename__ = "scheduled_restock"

    sku: str = Field(primary_key=True)
    po_id: str = Field(primary_key=True)
    quantity: int = Field(sa_type=BigInteger)
    expected_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class EarlyCancellationRow(SQLModel, table=True):
    """A cancel for a line whose allocate has not reached the SKU's book yet (after a partition
    increase, or while the allocate sits in a dead-letter topic): the allocate that follows
    ends cancelled, holding nothing."""

    __tablename__ = "allocation_early_cancel"

    order_id: str = Field(primary_key=True)
    line_id: str = Field(primary_key=True)
    sku: str
    reason: str | None = None
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
