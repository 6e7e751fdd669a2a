"""The container tier: the system from its images, as a shop's tests and an operator run it.

`deploy/bin/stack test-containers` makes the images (`stack images`), exports their names
from .stack/images.env and runs this tier.
"""

import os
from collections.abc import Iterator

import pytest

from services.testing import BackorderSystem

# No registry is reachable here, so Testcontainers' reaper image cannot be pulled; every
# fixture removes its own containers instead (read when the first container starts).
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

# Short timers so a test can watch a notification or a sweep happen.
FAST = {
    "BACKORDER_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    "BACKORDER_NOTIFY_COALESCE_SECONDS": "1",
    "BACKORDER_METRICS_INTERVAL_SECONDS": "0.5",
}


@pytest.fixture(scope="session")
def backorder() -> Iterator[BackorderSystem]:
    """The fixture the README shows a shop: images named by the BACKORDER_*_IMAGE variables."""
    with BackorderSystem(settings=FAST) as system:
        yield system
