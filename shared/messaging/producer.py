from aiokafka import AIOKafkaProducer

from shared.messaging.connection import kafka_options
from shared.settings import Settings


def make_producer(settings: Settings) -> AIOKafkaProducer:
    # Idempotence keeps per-partition order through retries, which the outbox relies on.
    return AIOKafkaProducer(
        **kafka_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=15_000,
        max_request_size=max(1_048_576, settings.max_message_bytes * 2),
    )
