"""Strict JSON decoding for every subscriber: anything else is a poison message."""

from typing import Any

import orjson
from faststream.kafka import KafkaMessage

from shared.messaging.errors import PoisonMessage


def make_json_decoder(max_bytes: int) -> Any:
    async def decode_json(msg: KafkaMessage) -> Any:
        """One record's body, or a batch's bodies in a list: the batch fails if one does."""
        if isinstance(msg.raw_message, tuple):
            return [_decode(record.value or b"", max_bytes) for record in msg.raw_message]
        return _decode(msg.body, max_bytes)

    return decode_json


def _decode(body: bytes, max_bytes: int) -> Any:
    if not body:
        # A tombstone (null value), as on a compacted topic: handlers that accept it say so.
        return None
    if len(body) > max_bytes:
        raise PoisonMessage(f"oversized message: {len(body)} bytes, limit {max_bytes}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson refuses what is not UTF-8 with the same error; the reason says which.
        if "utf-8" in str(error).lower():
            raise PoisonMessage(f"not UTF-8: {error}") from None
        raise PoisonMessage(f"not JSON: {error}") from None
