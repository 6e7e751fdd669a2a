"""Kafka plumbing: the outbox relay, the consume guard (retry and dead-letter), the producer."""
