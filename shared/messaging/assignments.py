"""Counts this process's partition assignments, so its outbox knows when partitions moved.

A partition assigned to this process may have been another's a moment ago, and that one may
have committed events it never sent: they must leave, in id order, before this process sends
anything newer for the same keys (`shared/messaging/outbox.py`)."""

from aiokafka import ConsumerRebalanceListener, TopicPartition

_assignments = 0


def assignments() -> int:
    return _assignments


class CountAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        global _assignments
        if assigned:
            _assignments += 1
