"""What the notifier prunes, and why each horizon is safe (see shared/db/retention.py).

Only finished notifications go; `notified_order` (one row per order: the newest picture, whose
version is what makes a redelivered `orders.status-changed` a no-op) stays, as does every open
notification (scheduled, sending, retrying).

- Skipped notifications (nothing new to tell, nobody to tell it to): nothing reads them again.
  They go after the closed horizon.
- Sent notifications go after the closed horizon, except the newest sent one of each order and
  channel: it is what the next message about the order is described against (`last_told`: "date
  changed" rather than "backordered" again), and what an operator's resend is checked against.
  So a sent notification goes only once a newer one of its order and channel was sent.
- Failed notifications (given up and dead-lettered): `backorder dlq replay` of their dead letter
  sends them again by id (`send_again`), for as long as `orders.status-changed.dlq` keeps the
  letter. They go after the later of the closed horizon and the dedupe horizon, which counts
  that dead-letter topic's retention.
"""

from collections.abc import Sequence

from services.notifier.domain.notification import NotificationStatus
from shared.db.retention import Prunable, chunked_delete, later, service_horizons
from shared.settings import Settings

SERVICE = "notifier"

SKIPPED = chunked_delete(
    "notification", f"old.status = '{NotificationStatus.SKIPPED}' and old.updated_at < :before"
)
SUPERSEDED = chunked_delete(
    "notification",
    f"old.status = '{NotificationStatus.SENT}' and old.updated_at < :before and exists ("
    "select 1 from notification newer where newer.order_id = old.order_id"
    " and newer.channel = old.channel and newer.version > old.version"
    f" and newer.status = '{NotificationStatus.SENT}')",
)
FAILED = chunked_delete(
    "notification", f"old.status = '{NotificationStatus.FAILED}' and old.updated_at < :before"
)


def prunables(settings: Settings) -> Sequence[Prunable]:
    dedupe, closed = service_horizons(SERVICE, settings)
    return [
        Prunable("notification", SKIPPED, closed, label="notification skipped"),
        Prunable("notification", SUPERSEDED, closed, label="notification sent"),
        Prunable("notification", FAILED, later(dedupe, closed), label="notification failed"),
    ]
