"""The one backoff of the plumbing: how long to wait before trying again after a failure.

Full jitter (a uniform draw up to an exponentially growing, capped ceiling) spreads the retries
of many consumers and relays after an outage they shared, so they do not all come back at
once. The notifier's delivery schedule is a domain rule of its own (what a customer's mail
server sees), kept in `services/notifier/domain/notification.py`."""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt` + 1; the first retry follows attempt 1."""
        # The exponent is capped: a float overflows past 2**1023, and an outage may well
        # outlast a thousand retries.
        return random.uniform(0, min(self.maximum, self.initial * 2 ** min(attempt - 1, 60)))
