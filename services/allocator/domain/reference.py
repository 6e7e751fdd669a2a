"""The allocation rules stated over the whole queue, held in a list: the specification.

The service decides with `book.SkuBook`, which never loads a queue whole; the property tests
(tests/unit/test_incremental_book.py) hold it to this book on random histories. Not used by
the service itself.

A SKU has units on hand that nobody holds (`available`) and a queue of lines still short, in
arrival order. Every rise in availability fills the queue from its head, so once a decision
is taken no unit sits idle while someone waits, and nobody is served ahead of an earlier line.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.allocator.domain.admission import Applicant, admit
from services.allocator.domain.model import Line, Policy, describe_wait


@dataclass
class ReferenceBook:
    sku: str
    available: int = 0
    policy: Policy = field(default_factory=Policy)
    queue: list[Line] = field(default_factory=list)
    # The rank each queued line waits in (its order's, or higher once aged); the queue is
    # served highest rank first, and within a rank in the order lines reached it.
    ranks: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def waiting_quantity(self) -> int:
        return sum(line.short for line in self.queue)

    def position(self, line: Line) -> int | None:
        for index, queued in enumerate(self.queue, start=1):
            if queued is line:
                return index
        return None

    def waiting_of(self, customer_id: str | None) -> int:
        """Units the customer's lines wait for; an unnamed customer's lines are nobody's."""
        if customer_id is None:
            return 0
        return sum(line.short for line in self.queue if line.customer_id == customer_id)

    def request(self, line: Line, applicant: Applicant | None = None) -> list[Line]:
        """A new line reaches the SKU's decision point. Returns every line that changed."""
        applicant = applicant or Applicant()
        line.customer_id = applicant.customer_id
        if not self.queue:
            line.allocated = min(self.available, line.quantity)
            self.available -= line.allocated
        missing = line.short
        if missing:
            admission = admit(
                policy=self.policy,
                sku=self.sku,
                applicant=applicant,
                missing=missing,
                sku_waiting=self.waiting_quantity,
                customer_waiting=self.waiting_of(applicant.customer_id),
            )
            if admission.refused:
                line.rejected, line.reason = admission.refused, admission.reason
            if line.short:
                self._enqueue(line, max(line.rank, 0))
        return [line]

    def age(self, now: datetime, default_aging: timedelta | None, top_rank: int) -> list[Line]:
        """A line that waited longer than the bound for each rank it rose moves up one rank, to
        that rank's tail, keeping what it holds; higher ranks first, so one sweep lifts a line
        once."""
        bound = self.policy.aging or default_aging
        if bound is None:
            return []
        promoted: list[Line] = []
        for rank in range(top_rank - 1, -1, -1):
            due = [
                line
                for line in self.queue
                if self.ranks[line.key] == rank
                and line.requested_at is not None
                and now - line.requested_at > bound * (rank - line.rank + 1)
            ]
            for line in due:
                self.queue.remove(line)
                self._enqueue(line, rank + 1)
            promoted.extend(due)
        return promoted

    def _enqueue(self, line: Line, rank: int) -> None:
        """Behind every line of its rank or higher, ahead of every lower one."""
        self.ranks[line.key] = rank
        behind = sum(1 for queued in self.queue if self.ranks[queued.key] >= rank)
        self.queue.insert(behind, line)

    def refuse_cancelled(self, line: Line, reason: str | None) -> list[Line]:
        """A line cancelled before it reached the book: it never joins the queue or holds units."""
        line.cancelled, line.reason = True, reason
        return [line]

    def receive(self, quantity: int) -> list[Line]:
        self.available += quantity
        return self._fill()

    def cancel(self, line: Line, reason: str | None) -> list[Line]:
        """Takes the line out of the queue and passes the units it held to the next in line."""
        if line.cancelled:
            return []
        self._withdraw(line, reason)
        return [line, *self._fill()]

    def expire(self, now: datetime, default_max_wait: timedelta | None) -> list[Line]:
        """Lines that waited longer than allowed leave the queue; what they held passes on."""
        limit = self.policy.max_wait or default_max_wait
        if limit is None:
            return []
        overdue = [
            line
            for line in self.queue
            if line.requested_at is not None and now - line.requested_at > limit
        ]
        for line in overdue:
            line.expired = True
            self._withdraw(line, f"waited longer than the maximum of {describe_wait(limit)}")
        # One fill after all have left: units go straight to the first line still waiting.
        return [*overdue, *self._fill()] if overdue else []

    def _withdraw(self, line: Line, reason: str | None) -> None:
        """Takes the line out of the queue and frees the units it held, without filling."""
        self.queue = [queued for queued in self.queue if queued is not line]
        line.cancelled, line.reason = True, reason
        self.available += line.allocated
        line.allocated = 0

    def _fill(self) -> list[Line]:
        filled: list[Line] = []
        while self.queue and self.available:
            head = self.queue[0]
            taken = min(head.short, self.available)
            head.allocated += taken
            self.available -= taken
            filled.append(head)
            if head.short == 0:
                self.queue.pop(0)
        return filled
