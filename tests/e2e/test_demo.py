"""`backorder demo` against the running services tells the story it promises."""

import pytest

from tests.conftest import SERVICE_ENV
from tests.support.cli import backorder
from tests.support.demo import EXPECTED, timelines
from tests.support.fleet import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_the_demo_prints_each_customers_timeline(fleet: Fleet) -> None:
    tiers = {"BACKORDER_PRIORITY_TIERS": SERVICE_ENV["BACKORDER_PRIORITY_TIERS"]}
    assert timelines(await backorder("demo", env=tiers)) == EXPECTED
