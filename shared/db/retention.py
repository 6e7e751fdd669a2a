"""Retention: rows that only history still holds are deleted once past their horizon.

Each service registers what it prunes (`services/<name>/retention.py`): a `Prunable` per kind
of row, with the horizon after which no live decision, redelivered message or look-up can need
it. `prune` deletes them in chunks of `chunk` rows, each chunk its own short transaction, so a
large backlog never holds locks or a snapshot for long and replicas share the work (a chunk
skips rows another replica has locked). Two horizons exist:

- The dedupe horizon (`dedupe_horizon`): how long a message of a topic the service consumes
  can still be delivered after it was first handled, plus a margin. A dedupe row, or any row
  whose presence makes a repeated message a no-op, may only go after it.
- The closed horizon (`BACKORDER_RETENTION_CLOSED_SECONDS`): how long finished things (a
  cancelled line, a delivered notification) stay visible for operators. A row that also makes
  a repeat idempotent goes after the later of both.
"""

import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import CursorResult, text
from sqlalchemy.sql.elements import TextClause

from shared.contracts.topics import ALL_TOPICS, DAY_MS, Topic
from shared.db.engine import SessionFactory
from shared.periodic import repeat
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger(__name__)

# Kafka deletes a partition's records a whole segment at a time, and only once the newest
# record in the segment is past retention.ms; the active segment rolls after segment.ms (the
# broker's log.roll.hours: 168 by default). So a record may still be read up to
# retention.ms + segment.ms after it was written (plus the broker's retention check, every
# 5 minutes by default, which the margin covers).
DEFAULT_SEGMENT_MS = 7 * DAY_MS


def readable_for(topic: Topic) -> timedelta | None:
    """How long after it was written a record of `topic` may still be delivered to its
    consumers; None: for ever (a compacted topic keeps a key's latest record).

    A dead letter counts too: `backorder dlq replay` sends it back to the topic with its
    original headers (its event id), for as long as the dead-letter topic retains it. It was
    never handled itself, but another copy of the same event may have been (the outbox relay
    republishes a batch after a crash between send and delete), and only the dedupe row then
    keeps the replay from acting twice."""
    if topic.compacted:
        return None
    retention_days = topic.retention_days
    if topic.dead_letter:
        retention_days = max(retention_days, topic.dead_letter_retention_days)
    segment_ms = max(
        (int(spec.config.get("segment.ms", DEFAULT_SEGMENT_MS)) for spec in topic.specs()),
        default=DEFAULT_SEGMENT_MS,
    )
    return timedelta(milliseconds=retention_days * DAY_MS + segment_ms)


def dedupe_horizon(topics: Iterable[Topic], *, margin: timedelta) -> timedelta | None:
    """How long a service must remember what it handled: the longest any record of the topics
    it consumes can still come (see `readable_for`), plus `margin` for clocks and late
    retention checks. None (never prune) when one of them keeps records for ever, or when
    there is no topic at all to measure against."""
    horizons = [readable_for(topic) for topic in topics]
    if not horizons or None in horizons:
        return None
    return max(h for h in horizons if h is not None) + margin


def service_horizons(service: str, settings: Settings) -> tuple[timedelta | None, timedelta]:
    """A service's dedupe horizon (over the topics it is declared to consume, with the
    configured margin) and the configured closed horizon."""
    dedupe = dedupe_horizon(
        [topic for topic in ALL_TOPICS if service in topic.consumers],
        margin=timedelta(seconds=settings.retention_dedupe_margin_seconds),
    )
    return dedupe, timedelta(seconds=settings.retention_closed_seconds)


def later(*horizons: timedelta | None) -> timedelta | None:
    """The horizon that keeps rows the longest; None (never) wins."""
    if not horizons or None in horizons:
        return None
    return max(h for h in horizons if h is not None)


def chunked_delete(table: str, where: str) -> TextClause:
    """One chunk: deletes up to `:chunk` rows of `table` matching `where` (which names the table
    `old` and may use `:before`), by their physical address, so each chunk costs one
    statement whatever the key. `skip locked`: rows another transaction (a replica's chunk,
    a handler) holds are left for a later chunk instead of waited on."""
    return text(
        f"delete from {table} where ctid = any(array("
        f"select old.ctid from {table} as old where {where}"
        " limit :chunk for update of old skip locked))"
    )


@dataclass(frozen=True)
class Prunable:
    """Rows of one table that may go once older than `horizon` (None: kept for ever)."""

    table: str
    delete: TextClause  # a `chunked_delete`
    horizon: timedelta | None
    params: Mapping[str, object] = field(default_factory=dict)
    # A name for logs and the metric when one table has several kinds of prunable rows.
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.table


class PrunedCounter(Protocol):
    def labels(self, table: str) -> "PrunedCounter": ...
    def inc(self, amount: float = 1) -> None: ...


async def prune(
    session_factory: SessionFactory,
    prunables: Sequence[Prunable],
    *,
    now: datetime,
    chunk: int,
    counter: PrunedCounter | None = None,
) -> dict[str, int]:
    """Deletes every registered row older than its horizon, as of `now`, chunk by chunk until
    a chunk comes back short. Returns the rows pruned per name; each chunk is counted in
    `counter` (label: table) once it has committed."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    pruned: dict[str, int] = {}
    for prunable in prunables:
        pruned[prunable.name] = 0
        if prunable.horizon is None:
            continue
        before = now - prunable.horizon
        while True:
            async with session_factory() as session, session.begin():
                result = await session.execute(
                    prunable.delete, {**prunable.params, "before": before, "chunk": chunk}
                )
            deleted = cast("CursorResult[Any]", result).rowcount
            pruned[prunable.name] += deleted
            if counter is not None and deleted:
                counter.labels(prunable.table).inc(deleted)
            if deleted < chunk:
                break
    return pruned


def retention_job(
    prunables: Callable[[Settings], Sequence[Prunable]],
) -> "Callable[[Runtime], Coroutine[Any, Any, None]]":
    """A service's background task: every `BACKORDER_RETENTION_INTERVAL_SECONDS`, prunes what
    `prunables` lists for the service's settings, `BACKORDER_RETENTION_CHUNK_SIZE` rows a
    chunk, counting them in `backorder_retention_pruned_total{table}`."""

    async def run(runtime: "Runtime") -> None:
        settings = runtime.settings
        registered = prunables(settings)
        for prunable in registered:
            horizon = "never" if prunable.horizon is None else str(prunable.horizon)
            log.info("retention: %s pruned after %s", prunable.name, horizon)

        async def round_() -> None:
            pruned = await prune(
                runtime.session_factory,
                registered,
                now=datetime.now(UTC),
                chunk=settings.retention_chunk_size,
                counter=runtime.metrics.retention_pruned,
            )
            if any(pruned.values()):
                log.info("retention: pruned %s", pruned)

        await repeat("retention", round_, interval=settings.retention_interval_seconds)

    run.__name__ = run.__qualname__ = "retention"
    return run
