from typing import cast

from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaMessage


def record_of(message: KafkaMessage) -> "ConsumerRecord[bytes, bytes]":
    """The consumed Kafka record behind a (non-batch) FastStream message."""
    return cast("ConsumerRecord[bytes, bytes]", message.raw_message)


def cause_of(message: KafkaMessage) -> str:
    """Where the message sits in the log: the same on every redelivery of it."""
    record = record_of(message)
    return f"{record.topic}/{record.partition}/{record.offset}"
