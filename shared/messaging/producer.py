from aiokafka import AIOKafkaProducer

from shared.messaging.connection import kafka_options
from shared.settings import Settings


def make_producer(settings: Settings) -> AIOKafkaProducer:
    # Idempotence keeps per-partition order through retries, which the outbox relies on.
    return AIOKafkaProducer(
        **kafka_options(settings),
        enable_idempotence=True,
        acks="all",
        # Sends wait for their acks under the outbox lock (shared/messaging/outbox.py): a
        # linger would add to every batch, and the records of one batch go in one request anyway.
        linger_ms=0,
        request_timeout_ms=15_000,
        max_request_size=max(1_048_576, settings.max_message_bytes * 2),
    )
