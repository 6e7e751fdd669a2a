"""Record sizes as the broker counts them against a topic's `max.message.bytes`."""

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import size_of_varint

# A record batch's header (format v2): what a batch of one record weighs beyond the record.
BATCH_HEADER_BYTES = 61


def batch_bytes(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """The size of an uncompressed batch of this one record (the first of its batch)."""
    listed: list[tuple[str, bytes | None]] = list(headers)
    # attributes (1 byte), offset delta 0 and timestamp delta 0 (1 byte each)
    body = 3 + int(DefaultRecordBatchBuilder.size_of(key, value, listed))
    return BATCH_HEADER_BYTES + int(size_of_varint(body)) + body


def value_at_limit(limit: int, key: bytes | None, headers: list[tuple[str, bytes]]) -> bytes:
    """The largest value whose record, as a batch of one, is no larger than `limit` bytes."""
    size = limit - BATCH_HEADER_BYTES
    while batch_bytes(key, b"x" * size, headers) > limit:
        size -= 1
    return b"x" * size
