"""Where notifications leave the system: email to the customer, a signed webhook to the shop."""

from dataclasses import dataclass
from typing import Protocol

from services.notifier.domain.model import Kind
from services.notifier.rendering import Rendered
from shared.contracts.outputs import OrderStatusChanged


@dataclass(frozen=True)
class Outgoing:
    """A notification with its content fixed: every attempt sends exactly this."""

    notification_id: str
    recipient: str
    subject: str
    body: str


class DeliveryFailed(Exception):
    """An attempt that did not deliver; `permanent` ones are not tried again."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def recipient(self, latest: OrderStatusChanged) -> str | None:
        """Who receives it; None: nobody can be told on this channel."""

    def body(
        self, *, notification_id: str, kind: Kind, latest: OrderStatusChanged, rendered: Rendered
    ) -> str: ...

    async def send(self, outgoing: Outgoing) -> None:
        """Delivers or raises DeliveryFailed."""
