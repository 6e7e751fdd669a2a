"""Allocator use cases: a batch of commands, one transaction; each command decides on its
SKU's book under the SKU's lock, and the book says which lines changed, each of them told."""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from services.allocator.domain.admission import Applicant
from services.allocator.domain.book import Key, Told
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line
from services.allocator.domain.ranks import POSITION_RETELL_LIMIT, RankedBook
from services.allocator.repository.early_cancellations import EarlyCancels
from services.allocator.repository.sku_books import OpenBook
from services.allocator.unit_of_work import AllocatorWork
from shared.contracts.headers import event_id
from shared.contracts.internal import (
    AllocateLine,
    AllocationCommand,
    CancelLine,
    LineAllocationChanged,
    ReceiveStock,
    ScheduleRestock,
    SetSkuPolicy,
    SubstituteLine,
)
from shared.contracts.outputs import eta_change
from shared.contracts.topics import LINE_ALLOCATION_CHANGED
from shared.messaging.errors import PoisonMessage

CONSUMER = "allocator"


@dataclass
class Outcome:
    """What the commands changed, for the metrics recorded once they have committed."""

    statuses: list[str] = field(default_factory=list)
    units_filled: int = 0


@dataclass(frozen=True)
class Received:
    """A command as it arrived: its message id, and the scope it is handled in (its trace)."""

    command: AllocationCommand
    message_id: str
    scope: Callable[[], AbstractContextManager[None]] = nullcontext


@dataclass
class Decision:
    """One command on an open book: what its deciding function may reach."""

    uow: AllocatorWork
    opened: OpenBook
    default_backorders: str
    now: datetime
    early_cancels: EarlyCancels
    # The line whose waiting part this decision closed at the customer's request: the SKU
    # taken instead and the units it is to be requested for.
    substituted: dict[Key, tuple[str, int]] = field(default_factory=dict)


Command = TypeVar("Command")
Decide = Callable[[Any, Decision], Awaitable[None]]
_DECIDE: dict[type, Decide] = {}


def decides(
    kind: type[Command],
) -> Callable[[Callable[[Command, Decision], Awaitable[None]]], Decide]:
    def register(function: Callable[[Command, Decision], Awaitable[None]]) -> Decide:
        _DECIDE[kind] = function
        return function

    return register


@decides(AllocateLine)
async def _allocate(command: AllocateLine, decision: Decision) -> None:
    book = decision.opened.book
    if await book.find(command.order_id, command.line_id) is not None:
        return  # the same line asked for again: decided already
    line = Line(
        order_id=command.order_id,
        line_id=command.line_id,
        quantity=command.quantity,
        priority=command.priority,
        rank=command.rank,
    )
    early = await decision.early_cancels.take(line.key)
    if early is None:
        applicant = Applicant(command.customer_id, command.returning_customer)
        await book.request(line, decision.now, applicant)
    else:
        line.requested_at = decision.now
        book.refuse_cancelled(line, early.reason)


@decides(CancelLine)
async def _cancel(command: CancelLine, decision: Decision) -> None:
    book = decision.opened.book
    line = await book.find(command.order_id, command.line_id)
    if line is None:
        # Its allocate is yet to come: remembered, so that it ends cancelled.
        await decision.early_cancels.remember(command)
    else:
        await book.cancel(line, command.reason)


@decides(SubstituteLine)
async def _substitute(command: SubstituteLine, decision: Decision) -> None:
    """The order service checked the request against what it was last told; a line that
    stopped waiting since (filled, expired, substituted) has nothing left to swap."""
    book = decision.opened.book
    line = await book.find(command.order_id, command.line_id)
    if line is None or not line.short:
        return
    offered = book.policy.alternatives
    if command.substitute not in offered:
        # The SKU's policy changed after the order service checked the request.
        raise PoisonMessage(
            f"{command.substitute} is no longer an alternative of {book.sku} "
            f"(its alternatives: {', '.join(offered) or 'none'})"
        )
    units = line.short
    reason = f"substituted by {command.substitute} at the customer's request"
    if command.reason:
        reason += f": {command.reason}"
    if line.allocated:
        await book.close_waiting(line, reason)
    else:
        # Nothing held: the line leaves the queue as a cancelled one does.
        await book.cancel(line, reason)
    decision.substituted[line.key] = (command.substitute, units)


@decides(ReceiveStock)
async def _receive(command: ReceiveStock, decision: Decision) -> None:
    book, restocks = decision.opened.book, decision.uow.restocks
    decision.opened.row["received_total"] += command.quantity
    if command.po_id:
        await restocks.fulfil(sku=book.sku, po_id=command.po_id, quantity=command.quantity)
        book.schedule = Schedule(await restocks.of(book.sku), now=decision.now)
    await book.receive(command.quantity)


@decides(ScheduleRestock)
async def _schedule(command: ScheduleRestock, decision: Decision) -> None:
    book, restocks = decision.opened.book, decision.uow.restocks
    await restocks.schedule(
        sku=book.sku,
        po_id=command.po_id,
        quantity=command.quantity,
        expected_at=command.expected_at,
    )
    await book.reschedule(Schedule(await restocks.of(book.sku), now=decision.now))


@decides(SetSkuPolicy)
async def _set_policy(command: SetSkuPolicy, decision: Decision) -> None:
    decision.opened.set_policy(command.policy, default_backorders=decision.default_backorders)


async def handle_commands(
    batch: Sequence[Received],
    *,
    uow: AllocatorWork,
    default_backorders: str,
    retell_limit: int = POSITION_RETELL_LIMIT,
) -> Outcome:
    """Each SKU's book is locked once, in SKU order (so two batches never deadlock), and its
    commands are decided in the order they arrived. `retell_limit`: how many waiting lines one
    decision retells when a line of a higher tier goes ahead of them (`RankedBook`)."""
    fresh = await uow.first_times(consumer=CONSUMER, message_ids=[r.message_id for r in batch])
    by_sku: dict[str, list[Received]] = {}
    for received in batch:
        if received.message_id in fresh:
            fresh.discard(received.message_id)  # the same message twice in a batch: once
            by_sku.setdefault(received.command.sku, []).append(received)
    outcome = Outcome()
    books = await uow.books.open(
        by_sku,
        default_backorders=default_backorders,
        retell_limit=retell_limit,
        lines={
            sku: [
                (r.command.order_id, r.command.line_id)
                for r in received
                if isinstance(r.command, AllocateLine | CancelLine | SubstituteLine)
            ]
            for sku, received in by_sku.items()
        },
        customers={
            sku: {
                r.command.customer_id
                for r in received
                if isinstance(r.command, AllocateLine) and r.command.customer_id
            }
            for sku, received in by_sku.items()
        },
    )
    early_cancels = await EarlyCancels.take_for(
        uow.early_cancels,
        [
            (r.command.order_id, r.command.line_id)
            for received in by_sku.values()
            for r in received
            if isinstance(r.command, AllocateLine)
        ],
    )
    for sku, opened in books.items():
        for received in by_sku[sku]:
            with received.scope():
                decision = Decision(
                    uow, opened, default_backorders, datetime.now(UTC), early_cancels
                )
                await _DECIDE[type(received.command)](received.command, decision)
                await _tell(decision, cause=received.message_id, outcome=outcome)
    await uow.books.save(books.values())
    return outcome


async def skus_to_expire(*, uow: AllocatorWork, default_max_wait: timedelta | None) -> list[str]:
    """SKUs with lines past their maximum wait, and SKUs with lines told a date that has passed
    (an overdue restock): the max-wait sweep does both, at most 100 SKUs of each per round."""
    now = datetime.now(UTC)
    overdue = await uow.sweeps.skus_with_overdue_lines(
        now=now, default_max_wait=default_max_wait, limit=100
    )
    past = await uow.sweeps.skus_with_past_dates(now=now, limit=100)
    return list(dict.fromkeys([*overdue, *past]))


async def expire_overdue_lines(
    *, uow: AllocatorWork, sku: str, default_backorders: str, default_max_wait: timedelta | None
) -> Outcome:
    """Cancels the SKU's lines that waited too long; their units go to the next in line. And
    where a restock is overdue (the book's schedule, read now, leaves it out), the waiting
    lines are told their dates again: no line keeps a date that has passed."""

    async def expire(book: RankedBook, now: datetime) -> None:
        await book.expire(now, default_max_wait)
        if book.schedule.overdue:
            await book.reschedule(book.schedule)

    return await _sweep_sku(uow, sku, default_backorders, expire, cause="max-wait")


async def skus_to_promote(
    *, uow: AllocatorWork, default_aging: timedelta | None, top_rank: int
) -> list[str]:
    return await uow.sweeps.skus_with_lines_to_promote(
        now=datetime.now(UTC),
        default_aging=default_aging,
        top_rank=top_rank,
        limit=100,
    )


async def promote_waiting_lines(
    *,
    uow: AllocatorWork,
    sku: str,
    default_backorders: str,
    default_aging: timedelta | None,
    top_rank: int,
    retell_limit: int = POSITION_RETELL_LIMIT,
) -> Outcome:
    """Lifts the SKU's lines that waited past their aging bound one rank; each is told its new
    place in the queue, and so are the first `retell_limit` lines it rose past."""

    async def age(book: RankedBook, now: datetime) -> None:
        await book.age(now, default_aging, top_rank)

    return await _sweep_sku(
        uow, sku, default_backorders, age, cause="aging", retell_limit=retell_limit
    )


async def _sweep_sku(
    uow: AllocatorWork,
    sku: str,
    default_backorders: str,
    act: Callable[[RankedBook, datetime], Awaitable[None]],
    *,
    cause: str,
    retell_limit: int = POSITION_RETELL_LIMIT,
) -> Outcome:
    """One SKU's turn in a sweep: lock its book, act on it now, tell what changed, save."""
    books = await uow.books.open(
        [sku], default_backorders=default_backorders, retell_limit=retell_limit
    )
    opened = books[sku]
    decision = Decision(
        uow, opened, default_backorders, datetime.now(UTC), EarlyCancels(uow.early_cancels)
    )
    await act(opened.book, decision.now)
    outcome = Outcome()
    await _tell(decision, cause=cause, outcome=outcome)
    await uow.books.save([opened])
    return outcome


async def _tell(decision: Decision, *, cause: str, outcome: Outcome) -> None:
    """Tells the order service about every line the decision changed; `save` writes them."""
    opened = decision.opened
    book = opened.book
    told: list[Told] = await book.told()
    for item in told:
        opened.told[item.line.key] = item.line
    waiting = any(item.line.short for item in told)
    alternatives = await decision.uow.books.in_stock(book.policy.alternatives) if waiting else []
    for item in told:
        line = item.line
        substitute, substituted = decision.substituted.get(line.key, (None, 0))
        decision.uow.publish(
            topic=LINE_ALLOCATION_CHANGED.name,
            key=line.order_id,
            event=LineAllocationChanged(
                order_id=line.order_id,
                line_id=line.line_id,
                sku=book.sku,
                quantity=line.quantity,
                allocated=line.allocated,
                backordered=line.short,
                rejected=line.rejected,
                status=line.status,
                queue_position=item.position,
                eta=line.eta,
                eta_change=eta_change(item.eta_before, line.eta) if line.short else None,
                reason=line.reason,
                alternatives=alternatives if line.short else [],
                delay_incentive=book.policy.delay_incentive if line.short else None,
                substitutes=list(book.policy.alternatives) if line.short else [],
                substituted_by=substitute,
                substituted=substituted,
                revision=line.revision,
                occurred_at=decision.now,
            ),
            event_type="LineAllocationChanged",
            event_id=event_id(CONSUMER, cause, line.order_id, line.line_id, str(line.revision)),
            correlation_id=line.order_id,
        )
    outcome.statuses.extend(item.line.status for item in told)
    outcome.units_filled += sum(item.units_filled for item in told)
