"""The skeleton of a background loop: one round of work, again and again, until cancelled."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.messaging.errors import is_transient

log = logging.getLogger(__name__)

# A round returns True when more work is already waiting (go again at once), else False/None.
Round = Callable[[], Awaitable[bool | None]]


async def repeat(name: str, round_: Round, *, interval: float) -> None:
    """Runs `round_` forever: again at once when it says more work is waiting, otherwise after
    `interval` seconds. A round that fails is logged (with its traceback unless the error is
    transient, such as the database being away) and tried again after `interval`; only
    cancelling the task ends the loop."""
    while True:
        more = False
        try:
            more = bool(await round_())
        except Exception as error:
            log.warning("%s failed: %s", name, error, exc_info=not is_transient(error))
        if not more:
            await asyncio.sleep(interval)
