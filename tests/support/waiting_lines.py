"""The allocator's waiting lines in memory: the store of the use-case and property tests.

It hands out copies, as a database would, so a book cannot change what is stored by accident."""

from dataclasses import replace

from services.allocator.domain.book import Key
from services.allocator.domain.model import Line


class InMemoryWaitingLines:
    def __init__(self) -> None:
        self.lines: dict[Key, Line] = {}

    def save(self, lines: list[Line]) -> None:
        for line in lines:
            self.lines[line.key] = replace(line)

    def _waiting(self) -> list[Line]:
        return sorted((ln for ln in self.lines.values() if ln.short), key=lambda ln: ln.seq or 0)

    async def find(self, key: Key) -> Line | None:
        line = self.lines.get(key)
        return replace(line) if line else None

    async def waiting_from(self, seq: int, limit: int) -> list[Line]:
        return [replace(ln) for ln in self._waiting() if (ln.seq or 0) >= seq][:limit]

    async def waiting_down_from(self, seq: int, limit: int) -> list[Line]:
        later_first = reversed(self._waiting())
        return [replace(ln) for ln in later_first if (ln.seq or 0) <= seq][:limit]

    async def first_waiting_beyond(self, through: int) -> Line | None:
        return next((replace(ln) for ln in self._waiting() if ln.through > through), None)

    async def waiting_of(self, customer_id: str) -> list[tuple[Key, int]]:
        return [(ln.key, ln.short) for ln in self._waiting() if ln.customer_id == customer_id]
