"""`allocation_early_cancel`: cancels that came before their line's allocate, remembered until
it comes."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import Key
from services.allocator.tables import EarlyCancellationRow
from shared.contracts.internal import CancelLine


@dataclass(frozen=True)
class EarlyCancel:
    reason: str | None


@dataclass
class EarlyCancels:
    """Cancels that came before their line's allocate. Those of a batch's lines are taken in
    one statement before its first command; one remembered during the batch is taken alone."""

    taken: dict[Key, EarlyCancel] = field(default_factory=dict)
    remembered: set[Key] = field(default_factory=set)

    @classmethod
    async def take_for(cls, session: AsyncSession, keys: list[Key]) -> "EarlyCancels":
        return cls(await _take_early_cancellations(session, keys) if keys else {})

    async def remember(self, session: AsyncSession, command: CancelLine) -> None:
        await session.execute(
            insert(EarlyCancellationRow)
            .values(
                order_id=command.order_id,
                line_id=command.line_id,
                sku=command.sku,
                reason=command.reason,
                received_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing()
        )
        self.remembered.add((command.order_id, command.line_id))

    async def take(self, session: AsyncSession, key: Key) -> EarlyCancel | None:
        if key in self.remembered:
            self.remembered.discard(key)
            self.taken.update(await _take_early_cancellations(session, [key]))
        return self.taken.pop(key, None)


async def _take_early_cancellations(
    session: AsyncSession, keys: list[Key]
) -> dict[Key, EarlyCancel]:
    taken = await session.execute(
        delete(EarlyCancellationRow)
        .where(
            tuple_(col(EarlyCancellationRow.order_id), col(EarlyCancellationRow.line_id)).in_(keys)
        )
        .returning(
            col(EarlyCancellationRow.order_id),
            col(EarlyCancellationRow.line_id),
            col(EarlyCancellationRow.reason),
        )
    )
    return {(order_id, line_id): EarlyCancel(reason) for order_id, line_id, reason in taken}
