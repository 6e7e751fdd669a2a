"""One SKU's book, decided without ever loading its queue whole. Pure: the waiting lines are
read through a port (`WaitingLines`), and nothing here does I/O of its own.

The rules are those of `reference.ReferenceBook`; what differs is how the queue is kept, so that
a decision costs the lines it changes and not the length of the queue:

- A line that joins the queue draws the next arrival number (`seq`) and records `through`, the
  units ever queued up to and including it. Neither changes afterwards.
- Units that leave the queue are counted, never rewritten into the lines behind them:
  `departed` counts units served or withdrawn at the head, and a line withdrawn from the middle
  leaves a gap (its seq and units) that counts for the lines behind it only.
- So a line's cumulative need, which decides its expected date, is `through - departed - gaps
  ahead of it`, and its position is its seq less the head's, less the gaps between them.
- Stock fills from the head; expiry withdraws from the head, as lines join in time order; a
  new line joins at the tail. Dates are retold only where a line crossed the edge of a
  restock's run (`_retell_dates`).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from services.allocator.domain.admission import Applicant, admit
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line, Policy, describe_wait

Key = tuple[str, str]
_FIRST_PAGE, _LAST_PAGE = 16, 1024


class WaitingLines(Protocol):
    """The SKU's lines as stored before this decision; "waiting" means still short."""

    async def find(self, key: Key) -> Line | None:
        """The line, waiting or not; None if the SKU never saw it."""
        ...

    async def waiting_from(self, seq: int, limit: int) -> list[Line]:
        """Waiting lines with seq at or after `seq`, in arrival order."""
        ...

    async def waiting_down_from(self, seq: int, limit: int) -> list[Line]:
        """Waiting lines with seq at or before `seq`, latest first."""
        ...

    async def first_waiting_beyond(self, through: int) -> Line | None:
        """The waiting line with the smallest `through` above the given one."""
        ...

    async def waiting_of(self, customer_id: str) -> list[tuple[Key, int]]:
        """The customer's waiting lines of the SKU, with the units each waits for."""
        ...


@dataclass
class QueueState:
    """The counters of one SKU's queue: kept with the SKU, read and written with its lock."""

    available: int = 0
    next_seq: int = 1
    queued: int = 0
    departed: int = 0
    gaps: dict[int, int] = field(default_factory=dict)
    # Lines join in time order even across instances whose clocks differ a little: a line's
    # wait starts no earlier than that of the line ahead of it.
    newest_requested_at: datetime | None = None
    # The priority rank whose lane this is (see ranks.py); its seqs and units are counted from
    # the lane's origin, so the lanes of one SKU never share a number.
    lane: int = 0
    # Units waiting in the SKU's other lanes: they count towards the SKU's cap.
    waiting_elsewhere: int = 0

    @property
    def waiting_units(self) -> int:
        return self.queued - self.departed - sum(self.gaps.values())


@dataclass(frozen=True)
class Told:
    """A line to tell the order service about, as it stands after the decision."""

    line: Line
    position: int | None
    # The date told before, while the line still waits (None once it left the queue).
    eta_before: datetime | None
    # Units the line held before the decision.
    allocated_before: int

    @property
    def units_filled(self) -> int:
        """Units the decision handed to this line (none to a line it cancelled)."""
        return 0 if self.line.cancelled else max(0, self.line.allocated - self.allocated_before)


class SkuBook:
    def __init__(
        self,
        *,
        sku: str,
        policy: Policy,
        state: QueueState,
        schedule: Schedule,
        waiting: WaitingLines,
        lines: "dict[Key, Line] | None" = None,
    ) -> None:
        self.sku = sku
        self.policy = policy
        self.state = state
        self.schedule = schedule
        self._stored = waiting
        # Every line read or changed in this book's life, newer than what the store holds.
        # Shared by the lanes of a ranked book, so that a line is one object in all of them.
        self._lines: dict[Key, Line] = {} if lines is None else lines
        # Lines that joined the queue since the store was read, in arrival order.
        self._joined: list[Line] = []
        # Lines to tell, with the date and the units they had when first touched.
        self._told: dict[Key, tuple[datetime | None, int]] = {}
        # The head once read: only its leaving changes it, as lines join at the tail.
        self._head_line: Line | None = None
        self._head_known = False

    @property
    def available(self) -> int:
        return self.state.available

    def lines(self) -> list[Line]:
        """Every line this book read or changed: what a repository writes back."""
        return list(self._lines.values())

    async def find(self, order_id: str, line_id: str) -> Line | None:
        key = (order_id, line_id)
        if key not in self._lines:
            stored = await self._stored.find(key)
            if stored is None:
                return None
            self._lines[key] = stored
        return self._lines[key]

    async def request(self, line: Line, now: datetime, applicant: Applicant | None = None) -> None:
        """A new line reaches the SKU's decision point."""
        applicant = applicant or Applicant()
        line.customer_id = applicant.customer_id
        self._lines[line.key] = line
        self._tell(line)
        line.requested_at = now
        # Nothing on hand: no need to know whether anyone waits ahead (a read of the queue).
        if self.state.available and await self._head() is None:
            line.allocated = min(self.state.available, line.quantity)
            self.state.available -= line.allocated
        missing = line.short
        if not missing:
            return
        admission = admit(
            policy=self.policy,
            sku=self.sku,
            applicant=applicant,
            missing=missing,
            sku_waiting=self.state.waiting_units + self.state.waiting_elsewhere,
            customer_waiting=await self._waiting_of(applicant.customer_id, besides=line),
        )
        if admission.refused:
            line.rejected, line.reason = admission.refused, admission.reason
        if line.short:
            self._join(line)

    def refuse_cancelled(self, line: Line, reason: str | None) -> None:
        """A line cancelled before it reached the book: it never joins the queue or holds units."""
        self._lines[line.key] = line
        self._tell(line)
        line.cancelled, line.reason = True, reason

    async def receive(self, quantity: int) -> None:
        self.state.available += quantity
        await self._fill()
        await self._retell_dates()

    async def reschedule(self, schedule: Schedule) -> None:
        self.schedule = schedule
        await self._retell_dates()

    async def cancel(self, line: Line, reason: str | None) -> None:
        """Takes the line out of the queue and passes the units it held to the next in line."""
        if line.cancelled:
            return
        self._withdraw(line, reason)
        await self._fill()
        await self._retell_dates()

    async def close_waiting(self, line: Line, reason: str | None) -> None:
        """The line's waiting units leave the queue; what it holds stays its own."""
        self.close_waiting_part(line, reason)
        await self._retell_dates()

    async def expire(self, now: datetime, default_max_wait: timedelta | None) -> None:
        """Lines that waited longer than allowed leave the queue; what they held passes on."""
        limit = self.policy.max_wait or default_max_wait
        if limit is not None and await self.withdraw_overdue(now, limit):
            # One fill after all have left: units go straight to the first line still waiting.
            await self._fill()
            await self._retell_dates()

    async def withdraw_overdue(self, now: datetime, limit: timedelta) -> bool:
        """Withdraws the lines that waited longer than `limit`, without filling."""
        overdue = []
        async for line in self._walk(0):
            if line.requested_at is None or now - line.requested_at <= limit:
                if self.state.lane == 0:
                    break  # lines join the lowest lane in time order: those behind waited less
                continue  # promoted lines joined a higher lane late: its order is not by wait
            overdue.append(line)
        for line in overdue:
            line.expired = True
            self._withdraw(line, f"waited longer than the maximum of {describe_wait(limit)}")
        return bool(overdue)

    async def told(self, lines_ahead: int = 0) -> list[Told]:
        """The lines this decision changed, with their positions (behind `lines_ahead` lines of
        higher lanes); the book starts afresh."""
        head = await self._head()
        self._fold_gaps(head)
        told = []
        for key, (eta_before, allocated_before) in self._told.items():
            line = self._lines[key]
            line.revision += 1
            if line.short and head is not None:
                position = lines_ahead + self._position(line, head)
                told.append(Told(line, position, eta_before, allocated_before))
            else:
                line.eta = None
                told.append(Told(line, None, None, allocated_before))
        self._told = {}
        return told

    async def position(self, line: Line) -> int | None:
        head = await self._head()
        return self._position(line, head) if line.short and head is not None else None

    def _position(self, line: Line, head: Line) -> int:
        assert line.seq is not None
        assert head.seq is not None
        between = sum(1 for gap in self.state.gaps if head.seq < gap < line.seq)
        return line.seq - head.seq + 1 - between

    def _tell(self, line: Line) -> None:
        self._told.setdefault(line.key, (line.eta, line.allocated))

    def _join(self, line: Line) -> None:
        state = self.state
        if state.newest_requested_at is not None and line.requested_at is not None:
            line.requested_at = max(line.requested_at, state.newest_requested_at)
        state.newest_requested_at = line.requested_at
        line.seq, state.next_seq = state.next_seq, state.next_seq + 1
        state.queued += line.short
        line.through = state.queued
        line.eta = self.schedule.date_for(state.waiting_units)
        self._joined.append(line)
        if self._head_known and self._head_line is None:
            self._head_line = line

    def _withdraw(self, line: Line, reason: str | None) -> None:
        """Takes the line out of the queue and frees the units it held, without filling."""
        self._tell(line)
        if line.short and line.seq is not None:
            self.state.gaps[line.seq] = line.short
        line.cancelled, line.reason = True, reason
        self.state.available += line.allocated
        line.allocated = 0

    async def _waiting_of(self, customer_id: str | None, *, besides: Line) -> int:
        """Units the customer waits for now: asked only where a per-customer cap needs it.
        The store answers as it was read; lines this book touched since count as they stand,
        the customer's lines requested since among them (not `besides`, the line being
        decided)."""
        if customer_id is None or self.policy.max_backorder_quantity_per_customer is None:
            return 0
        units, seen = 0, {besides.key}
        for key, stored_units in await self._stored.waiting_of(customer_id):
            line = self._lines.get(key)
            units += stored_units if line is None else line.short
            seen.add(key)
        requested_since = (
            line
            for key, line in self._lines.items()
            if line.customer_id == customer_id and key not in seen
        )
        return units + sum(line.short for line in requested_since)

    async def _fill(self) -> None:
        if not self.state.available:
            return
        async for head in self._walk(0):
            self._tell(head)
            taken = min(head.short, self.state.available)
            head.allocated += taken
            self.state.available -= taken
            self.state.departed += taken
            if not self.state.available:
                break

    async def _retell_dates(self) -> None:
        """Within one restock's run every line expects its date, and the dates told before were
        in queue order too, so the lines whose date moved sit at either end of each run: walk
        in from both ends until a line already expects the run's date.

        Gaps left ahead of the head are folded first: each seek for a run's first line tries
        every gap, and walks past every line withdrawn since the read, so a decision that
        withdrew n lines (an expiry of a whole queue) cost n * n line reads. 1,000 lines
        expired at once took 9.5 s, 4,000 took 112 s. Without gaps there is nothing to fold,
        and the head is not read for it."""
        if self.state.gaps:
            self._fold_gaps(await self._head())
        for run in self.schedule.runs:
            first = await self._first_beyond(run.after)
            if first is None:
                return
            assert first.seq is not None
            walked_whole_run = True
            async for line in self._walk(first.seq):
                if run.through is not None and self._cumulative_need(line) > run.through:
                    break
                if line.eta == run.date:
                    walked_whole_run = False
                    break
                self._tell(line)
                line.eta = run.date
            if walked_whole_run:
                continue
            after_run = None if run.through is None else await self._first_beyond(run.through)
            last_seq = None if after_run is None else after_run.seq
            async for line in self._walk(None if last_seq is None else last_seq - 1, back=True):
                if self._cumulative_need(line) <= run.after or line.eta == run.date:
                    break
                self._tell(line)
                line.eta = run.date

    def _cumulative_need(self, line: Line) -> int:
        assert line.seq is not None
        ahead = sum(units for seq, units in self.state.gaps.items() if seq < line.seq)
        return line.through - self.state.departed - ahead

    async def _first_beyond(self, need: int) -> Line | None:
        """The first waiting line whose cumulative need exceeds `need`. Between two gaps the
        gaps ahead are the same for every line, so a seek by `through` finds it."""
        gaps_ahead, after_seq = 0, 0
        for gap_seq in [*sorted(self.state.gaps), None]:
            found = await self._first_through_beyond(need + self.state.departed + gaps_ahead)
            if (
                found is not None
                and found.seq is not None
                and found.seq > after_seq
                and (gap_seq is None or found.seq < gap_seq)
            ):
                return found
            if gap_seq is not None:
                gaps_ahead += self.state.gaps[gap_seq]
                after_seq = gap_seq
        return None

    async def _first_through_beyond(self, through: int) -> Line | None:
        stored = await self._stored.first_waiting_beyond(through)
        if stored is not None and stored.seq is not None and lane_of(stored.seq) == self.state.lane:
            # Later lines hold more `through`: the first still waiting from here on is the one.
            async for line in self._walk(stored.seq):
                return line
            return None
        return next((ln for ln in self._joined if self._holds(ln) and ln.through > through), None)

    async def _head(self) -> Line | None:
        if self._head_known and (self._head_line is None or self._holds(self._head_line)):
            return self._head_line
        self._head_line = None
        async for line in self._walk(0):
            self._head_line = line
            break
        self._head_known = True
        return self._head_line

    async def _walk(
        self, seq: int | None, *, back: bool = False, first_page: int = _FIRST_PAGE
    ) -> AsyncIterator[Line]:
        """Waiting lines from `seq` on (None: from the tail), as this decision left them;
        `first_page`: how many to read first, when the caller knows how many it wants."""
        if back:
            for line in reversed(self._joined):
                if self._holds(line) and (seq is None or (line.seq or 0) <= seq):
                    yield line
        origin = self.state.lane << LANE_BITS
        last_of_lane = origin + (1 << LANE_BITS) - 1
        cursor = last_of_lane if seq is None else max(seq, origin)
        limit = max(1, min(first_page, _LAST_PAGE))
        while True:
            if back:
                page = await self._stored.waiting_down_from(cursor, limit)
            else:
                page = await self._stored.waiting_from(cursor, limit)
            for stored in page:
                if lane_of(stored.seq) != self.state.lane:
                    break  # the next lane's lines: this one's end
                line = self._lines.setdefault(stored.key, stored)
                if self._holds(line):
                    yield line
            if len(page) < limit or lane_of(page[-1].seq) != self.state.lane:
                break
            last = page[-1].seq or 0
            cursor = last - 1 if back else last + 1
            limit = min(limit * 2, _LAST_PAGE)
        if not back:
            for line in self._joined:
                if self._holds(line) and (line.seq or 0) >= (seq or 0):
                    yield line

    def _fold_gaps(self, head: Line | None) -> None:
        """Gaps ahead of the head count for every waiting line alike: they join `departed`."""
        for gap_seq in list(self.state.gaps):
            if head is None or (head.seq is not None and gap_seq < head.seq):
                self.state.departed += self.state.gaps.pop(gap_seq)

    # What a ranked book (ranks.py) asks of each of its lanes.

    def _holds(self, line: Line) -> bool:
        """Waiting in this lane: a promoted line has left the lane it drew its first seq in."""
        return bool(line.short) and lane_of(line.seq) == self.state.lane

    @property
    def idle(self) -> bool:
        """Nothing waits in the lane, no gap is left to fold and no line to tell: a ranked book
        can leave it out of a decision (ranks.py) and still store its counters."""
        return not self.state.waiting_units and not self.state.gaps and not self._told

    def waiting(self) -> AsyncIterator[Line]:
        """The lane's waiting lines from its head, in the order they are served."""
        return self._walk(0)

    async def fill(self) -> None:
        await self._fill()

    async def retell_dates(self) -> None:
        await self._retell_dates()

    async def retell_places(self, limit: int) -> int:
        """Tells the first `limit` waiting lines of the lane, whose places moved though their
        dates may not have (a line of a higher rank went ahead of them all); returns how many
        it told. Reads about `limit` lines, however long the lane."""
        told = 0
        if limit <= 0:
            return told
        async for line in self._walk(0, first_page=limit):
            self._tell(line)
            told += 1
            if told >= limit:
                break
        return told

    def retell(self, line: Line) -> None:
        """Tells the line again: its place moved though its date may not have."""
        self._tell(line)

    def withdraw(self, line: Line, reason: str | None) -> None:
        """Takes the line out of the queue and frees what it held, without filling."""
        self._withdraw(line, reason)

    def close_waiting_part(self, line: Line, reason: str | None) -> None:
        """Closes the units the line still waits for, as refused ones: they leave a gap in the
        queue like a withdrawn line's, and the units it holds stay allocated to it."""
        self._tell(line)
        if line.short and line.seq is not None:
            self.state.gaps[line.seq] = line.short
        line.rejected += line.short
        line.reason = reason

    async def lines_waiting(self) -> int:
        head = await self._head()
        if head is None or head.seq is None:
            return 0
        tail = self.state.next_seq - 1
        return tail - head.seq + 1 - sum(1 for gap in self.state.gaps if head.seq < gap <= tail)

    def depart(self, line: Line) -> tuple[datetime | None, int] | None:
        """The line leaves this lane for a higher one, still waiting: a gap stays behind.
        Returns what the line had when this decision first touched it, if it did."""
        assert line.seq is not None
        self.state.gaps[line.seq] = line.short
        self._head_known = self._head_known and self._head_line is not line
        return self._told.pop(line.key, None)

    def arrive(self, line: Line, before: tuple[datetime | None, int] | None) -> None:
        """A promoted line joins this lane at its tail, keeping the time its wait began."""
        self._told[line.key] = before or (line.eta, line.allocated)
        self._lines[line.key] = line
        requested_at, newest = line.requested_at, self.state.newest_requested_at
        self._join(line)
        line.requested_at, self.state.newest_requested_at = requested_at, newest


LANE_BITS = 52


def lane_of(seq: int | None) -> int:
    """The lane a seq belongs to: each rank counts its seqs and units from `rank << LANE_BITS`."""
    return 0 if seq is None else seq >> LANE_BITS
