"""The plumbing's one backoff: retries spread out, grow, and never wait past the cap."""

from hypothesis import given
from hypothesis import strategies as st

from shared.backoff import Backoff


@given(attempt=st.integers(min_value=1, max_value=100_000))
def test_a_retry_waits_at_most_the_capped_exponential_ceiling(attempt: int) -> None:
    """However long the outage: the relay retries past attempt 1,024 after ~85 minutes."""
    backoff = Backoff(initial=0.2, maximum=10.0)
    assert 0 <= backoff.delay(attempt) <= min(10.0, 0.2 * 2 ** min(attempt - 1, 100))


def test_retries_after_a_shared_outage_do_not_come_back_together() -> None:
    backoff = Backoff(initial=0.2, maximum=10.0)
    delays = [backoff.delay(8) for _ in range(200)]
    # Full jitter: spread over the whole window, not bunched at its ceiling.
    assert min(delays) < 2.0 < 8.0 < max(delays) <= 10.0
