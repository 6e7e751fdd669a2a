"""Headers carried by every message this project publishes."""

import json
import uuid

EVENT_ID = "event-id"
EVENT_TYPE = "event-type"
CORRELATION_ID = "correlation-id"
DLQ_REASON = "dlq-reason"
DLQ_ORIGINAL_TOPIC = "dlq-original-topic"
DLQ_ORIGINAL_PARTITION = "dlq-original-partition"
DLQ_ORIGINAL_OFFSET = "dlq-original-offset"
# On a dead letter too large to carry whole: what was cut ("value", "value,headers",
# "value,headers,key"); the value is then an excerpt, its first bytes, and cannot be replayed.
DLQ_TRUNCATED = "dlq-truncated"
# Beside `dlq-truncated`: the original value's size in bytes and its SHA-256 (hex).
DLQ_ORIGINAL_SIZE = "dlq-original-size"
DLQ_ORIGINAL_SHA256 = "dlq-original-sha256"
# On a message an operator replayed from a dead-letter topic: `<dlq topic>/<partition>/<offset>`.
REPLAYED_FROM = "replayed-from"
# On a failed notification's dead letter: replaying it sends that notification again.
NOTIFICATION_ID = "notification-id"
NOTIFICATION_CHANNEL = "notification-channel"

_NAMESPACE = uuid.UUID("5c1f3a4e-7d0b-4f6a-9a57-6a4f0b1d2e3c")


def event_id(*cause: str) -> str:
    """A deterministic id: processing the same cause again yields the same id, and two
    different causes never share one (the parts are encoded as a JSON array, not joined)."""
    return str(uuid.uuid5(_NAMESPACE, json.dumps(cause, ensure_ascii=False)))
