"""A unit of work without a database: what a use case published, and whether it was committed."""

from typing import Unpack

from shared.db.ports import Outgoing


class FakeUnitOfWork:
    """Fits `shared.db.ports.Publisher`; a service's fake adds its repositories as attributes.
    Use cases are handed a unit of work already open, so this one is not a context manager;
    the real one sends `events` only if committed."""

    def __init__(self) -> None:
        self.events: list[Outgoing] = []
        self.committed = False

    async def commit(self) -> None:
        self.committed = True

    def publish(self, **outgoing: Unpack[Outgoing]) -> None:
        self.events.append(outgoing)
