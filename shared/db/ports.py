"""What a use case may ask of its unit of work, as Protocols: the unit of work on the database
and a test's in-memory fake both fit, so use cases run in a fast tier without either."""

from typing import Protocol, TypedDict, Unpack

from pydantic import BaseModel


class Outgoing(TypedDict):
    """An event as a use case publishes it, before it is encoded for the outbox."""

    topic: str
    key: str
    event: BaseModel
    event_type: str
    event_id: str
    correlation_id: str


class Publisher(Protocol):
    def publish(self, **outgoing: Unpack[Outgoing]) -> None:
        """Queues the event: it leaves only if the unit of work commits."""
        ...
