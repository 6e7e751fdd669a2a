"""Creates the declared topics that are missing; existing ones are left as they are."""

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.contracts.topics import ALL_TOPICS

log = logging.getLogger(__name__)


async def ensure_topics(*, bootstrap_servers: str, partitions: int) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for topic in ALL_TOPICS:
            wanted.append(NewTopic(topic.name, partitions, 1, topic_configs=dict(topic.config)))
            if topic.dead_letter:
                wanted.append(NewTopic(topic.dlq, partitions, 1))
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
