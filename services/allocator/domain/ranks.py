"""A SKU's book with priority ranks: one lane per rank, each an incremental `SkuBook`, served
highest rank first and each strictly in the order lines reached it. Pure, no I/O of its own.

- A line joins the lane of the rank its order asked for, at the tail. Lane `r` counts its seqs
  and units from `r << LANE_BITS`, so one SKU's lanes share the stored queue and its indexes
  without ever sharing a number, and a walk of one lane never reads another's lines.
- Stock fills the highest lane's head first, and a lower lane only once every higher lane is
  served: no lower rank is filled while a higher-ranked line is short.
- A line's expected date and position count everything waiting in the higher lanes ahead of
  it: each lane sees the restock schedule behind the units of the lanes above it.
- Aging: a line that waited longer than the aging bound per rank it rose (its wait from the
  request, so a sweep that comes late promotes as one on time would) moves up one rank, to
  the tail of that lane, keeping what it holds. Lines of one rank are promoted in the order
  they wait, so a later line of the same rank never passes it.

With a single lane (no order ever asked for a rank above the default, or the higher lanes have
emptied) every decision is the lowest lane's own, exactly as without ranks, and costs the same.
A line joining at the tail of a lane moves no date in it or above it: only lanes below retell.

Places: a line told its place never keeps a better one than it has for lack of news, within a
bound. Lines move up without being told (a fill, a cancel ahead), but a line of a higher rank
going ahead of waiting lines moves them back: a line joining rank `r` puts every waiting line
of the lanes below one place further back, and a promotion puts the lines of its old lane that
it passed one place further back. Those lines are retold, the first `retell_limit` of them per
decision in queue order (highest lane first, each from its head): they read about as many
lines as they tell, however long the queue. The rest keep the place they were told last, which
may be better than theirs until they are told again; the look-up API's `/skus/{sku}/queue`
counts places afresh.
"""

from datetime import datetime, timedelta

from services.allocator.domain.admission import Applicant
from services.allocator.domain.book import (
    LANE_BITS,
    Key,
    QueueState,
    SkuBook,
    Told,
    WaitingLines,
    lane_of,
)
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line, Policy

# How many lines of the lower lanes one decision retells when their position worsened.
POSITION_RETELL_LIMIT = 100


def empty_lane(rank: int) -> QueueState:
    origin = rank << LANE_BITS
    return QueueState(lane=rank, next_seq=origin + 1, queued=origin, departed=origin)


class RankedBook:
    def __init__(
        self,
        *,
        sku: str,
        policy: Policy,
        lanes: list[QueueState],
        schedule: Schedule,
        waiting: WaitingLines,
        retell_limit: int = POSITION_RETELL_LIMIT,
    ) -> None:
        self.sku = sku
        self.retell_limit = retell_limit
        self._policy = policy
        self._schedule = schedule
        self._waiting = waiting
        self._lines: dict[Key, Line] = {}
        self._lanes: dict[int, SkuBook] = {}
        for state in lanes:
            self._open(state)
        if 0 not in self._lanes:
            self._open(QueueState())
        self._reshift()

    # The lowest lane's state holds what the SKU has on the shelf: what a repository stores.
    @property
    def state(self) -> QueueState:
        return self._lanes[0].state

    @property
    def available(self) -> int:
        return self.state.available

    @property
    def policy(self) -> Policy:
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy
        for lane in self._lanes.values():
            lane.policy = policy

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    @schedule.setter
    def schedule(self, schedule: Schedule) -> None:
        self._schedule = schedule
        self._reshift()

    def higher_lanes(self) -> list[QueueState]:
        """Every lane above the lowest, idle ones too: their counters keep seqs unique."""
        return [lane.state for rank, lane in sorted(self._lanes.items(), reverse=True) if rank]

    def gaps(self) -> dict[int, int]:
        return {
            seq: units for lane in self._lanes.values() for seq, units in lane.state.gaps.items()
        }

    def lines(self) -> list[Line]:
        return list(self._lines.values())

    async def find(self, order_id: str, line_id: str) -> Line | None:
        return await self._lanes[0].find(order_id, line_id)

    async def request(self, line: Line, now: datetime, applicant: Applicant | None = None) -> None:
        rank = max(line.rank, 0)
        lane = self._lane(rank)
        lane.state.waiting_elsewhere = self._waiting_units() - lane.state.waiting_units
        if self._single() and rank == 0:
            await lane.request(line, now, applicant)
            return
        self._reshift()
        await self._on(lane).request(line, now, applicant)
        self._off(lane)
        if line.short:
            # The line joins its lane at the tail: only the lanes below wait behind its units,
            # and every line waiting in them is one place further back.
            await self._retell(below=rank)
            budget = self.retell_limit
            for lower, below in self._ranked():
                if lower < rank and budget > 0:
                    budget -= await below.retell_places(budget)

    def refuse_cancelled(self, line: Line, reason: str | None) -> None:
        self._lanes[0].refuse_cancelled(line, reason)

    async def receive(self, quantity: int) -> None:
        if self._single():
            await self._lanes[0].receive(quantity)
            return
        self.state.available += quantity
        await self._fill()
        await self._retell()

    async def reschedule(self, schedule: Schedule) -> None:
        if self._single():
            self._schedule = schedule
            await self._lanes[0].reschedule(schedule)
            return
        self.schedule = schedule
        await self._retell()

    async def cancel(self, line: Line, reason: str | None) -> None:
        if self._single():
            await self._lanes[0].cancel(line, reason)
            return
        if line.cancelled:
            return
        lane = self._lanes.get(lane_of(line.seq), self._lanes[0])
        self._on(lane).withdraw(line, reason)
        self._off(lane)
        await self._fill()
        await self._retell()

    async def close_waiting(self, line: Line, reason: str | None) -> None:
        if self._single():
            await self._lanes[0].close_waiting(line, reason)
            return
        self._lanes.get(lane_of(line.seq), self._lanes[0]).close_waiting_part(line, reason)
        await self._retell()

    async def expire(self, now: datetime, default_max_wait: timedelta | None) -> None:
        if self._single():
            await self._lanes[0].expire(now, default_max_wait)
            return
        limit = self.policy.max_wait or default_max_wait
        if limit is None:
            return
        withdrawn = False
        for _, lane in self._ranked():
            withdrawn = await self._on(lane).withdraw_overdue(now, limit) or withdrawn
            self._off(lane)
        if withdrawn:
            await self._fill()
            await self._retell()

    async def age(self, now: datetime, default_aging: timedelta | None, top_rank: int) -> None:
        """Promotes by one rank every line that waited past its bound, below `top_rank`."""
        bound = self.policy.aging or default_aging
        if bound is None:
            return
        promoted = False
        budget = self.retell_limit
        # Highest first, so that a line promoted in this sweep is not promoted again (and the
        # lines passed are met in the order they are served).
        for rank, lane in self._ranked():
            if rank >= top_rank:
                continue
            due: list[Line] = []
            # Lines that stay while a later line of their lane rises past them: one place
            # further back for each. Only the first `budget` are kept, to be retold.
            passed: list[Line] = []
            pending: list[Line] = []
            async for line in lane.waiting():
                waited = now - (line.requested_at or now)
                if waited > bound * (rank - line.rank + 1):
                    due.append(line)
                    passed.extend(pending)
                    pending = []
                elif rank == 0:
                    break  # the lowest lane is in request order: those behind waited less
                elif len(passed) + len(pending) < budget:
                    pending.append(line)
            if due:
                # The lane they join dates them by a schedule shifted by what waits in the
                # lanes above it, which a promotion from a higher lane in this sweep changed:
                # a date told out of queue order would never be corrected. (Lines leaving this
                # lane change only the lanes below it.)
                self._reshift()
            for line in due:
                self._lane(rank + 1).arrive(line, lane.depart(line))
            for line in passed:
                lane.retell(line)
            budget -= len(passed)
            promoted = promoted or bool(due)
        if promoted:
            await self._retell()

    async def told(self) -> list[Told]:
        if self._single():
            return await self._lanes[0].told()
        told: list[Told] = []
        ahead = 0
        for _, lane in self._ranked():
            told.extend(await lane.told(ahead))
            ahead += await lane.lines_waiting()
        return told

    async def position(self, line: Line) -> int | None:
        ahead = 0
        for rank, lane in self._ranked():
            if rank == lane_of(line.seq):
                position = await lane.position(line)
                return None if position is None else ahead + position
            ahead += await lane.lines_waiting()
        return None

    def _open(self, state: QueueState) -> SkuBook:
        lane = SkuBook(
            sku=self.sku,
            policy=self._policy,
            state=state,
            schedule=self._schedule,
            waiting=self._waiting,
            lines=self._lines,
        )
        self._lanes[state.lane] = lane
        return lane

    def _lane(self, rank: int) -> SkuBook:
        if rank not in self._lanes:
            self._open(empty_lane(rank))
            self._reshift()
        return self._lanes[rank]

    def _ranked(self) -> list[tuple[int, SkuBook]]:
        """The lanes, highest first, but for higher ones that hold nothing to decide or tell:
        walking those would only read the store to find them empty."""
        return sorted(
            ((rank, lane) for rank, lane in self._lanes.items() if rank == 0 or not lane.idle),
            reverse=True,
        )

    def _single(self) -> bool:
        """Whether the lowest lane decides alone, as a book without ranks would."""
        return len(self._ranked()) == 1

    def _waiting_units(self) -> int:
        return sum(lane.state.waiting_units for lane in self._lanes.values())

    def _on(self, lane: SkuBook) -> SkuBook:
        """The lane about to decide sees the shelf, which the lowest lane's state keeps."""
        lane.state.available = self.state.available
        return lane

    def _off(self, lane: SkuBook) -> None:
        self.state.available = lane.state.available

    async def _fill(self) -> None:
        for _, lane in self._ranked():
            if not self.state.available:
                return
            await self._on(lane).fill()
            self._off(lane)

    def _reshift(self) -> None:
        ahead = 0
        # Idle lanes too: a line joining one takes its date from the lane's schedule.
        for _, lane in sorted(self._lanes.items(), reverse=True):
            lane.schedule = self._schedule.behind(ahead)
            ahead += lane.state.waiting_units

    async def _retell(self, *, below: int | None = None) -> None:
        self._reshift()
        for rank, lane in self._ranked():
            if below is None or rank < below:
                await lane.retell_dates()
