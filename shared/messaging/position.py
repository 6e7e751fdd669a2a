"""Where a message sat in its source topic, and which of two words on one thing is the newer.

A consumer that lost its partitions in a rebalance may still commit a message it retried, after
the new owner applied newer ones; and a purchase order moved to another SKU is told on another
partition, which may be read first. Keeping the position of the word applied last, and applying
only newer ones, makes the outcome independent of who commits last.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SourcePosition:
    partition: int
    offset: int
    # The record's timestamp (the producer's create time, or the broker's append time).
    timestamp_ms: int

    def supersedes(self, applied: "SourcePosition | None") -> bool:
        """Newer than the word applied last. Timestamps order words across partitions, and
        survive a topic being recreated (offsets restart at 0); within a partition, the offset
        breaks a tie. The same message again is not newer."""
        if applied is None:
            return True
        if self.timestamp_ms != applied.timestamp_ms:
            return self.timestamp_ms > applied.timestamp_ms
        if self.partition == applied.partition:
            return self.offset > applied.offset
        return True
