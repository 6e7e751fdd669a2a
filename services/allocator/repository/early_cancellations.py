"""`allocation_early_cancel`: cancels that came before their line's allocate, remembered until
it comes."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

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


class EarlyCancelsRepository(Protocol):
    async def remember(self, command: CancelLine) -> None:
        """Keeps the cancel until its line's allocate comes; a second one for the line changes
        nothing."""
        ...

    async def take(self, keys: list[Key]) -> dict[Key, EarlyCancel]:
        """The cancels remembered for these lines, forgotten as they are handed out."""
        ...


class SqlEarlyCancelsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def remember(self, command: CancelLine) -> None:
        await self._session.execute(
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

    async def take(self, keys: list[Key]) -> dict[Key, EarlyCancel]:
        taken = await self._session.execute(
            delete(EarlyCancellationRow)
            .where(
                tuple_(col(EarlyCancellationRow.order_id), col(EarlyCancellationRow.line_id)).in_(
                    keys
                )
            )
            .returning(
                col(EarlyCancellationRow.order_id),
                col(EarlyCancellationRow.line_id),
                col(EarlyCancellationRow.reason),
            )
        )
        return {(order_id, line_id): EarlyCancel(reason) for order_id, line_id, reason in taken}


@dataclass
class EarlyCancels:
    """Cancels that came before their line's allocate, as one batch sees them. Those of a
    batch's lines are taken in one statement before its first command; one remembered during
    the batch is taken alone."""

    store: EarlyCancelsRepository
    taken: dict[Key, EarlyCancel] = field(default_factory=dict)
    remembered: set[Key] = field(default_factory=set)

    @classmethod
    async def take_for(cls, store: EarlyCancelsRepository, keys: list[Key]) -> "EarlyCancels":
        return cls(store, await store.take(keys) if keys else {})

    async def remember(self, command: CancelLine) -> None:
        await self.store.remember(command)
        self.remembered.add((command.order_id, command.line_id))

    async def take(self, key: Key) -> EarlyCancel | None:
        if key in self.remembered:
            self.remembered.discard(key)
            self.taken.update(await self.store.take([key]))
        return self.taken.pop(key, None)
