"""What bounds one search request's time: its deadline, awaited on the event loop.

The pipeline checks the same deadline between its stages and deepening rounds and stops there;
awaiting with a timeout answers the client on time even while a long stage finishes in its thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from ranker.budget import DeadlineExceeded

T = TypeVar("T")
PARTIAL_GRACE = 0.15  # with allow_partial, the pipeline gets this share of the budget more to hand back (and format) what it has


def deadline_for(timeout_ms: int | None, limit_ms: float) -> tuple[float, float]:
    """(deadline as time.monotonic(), budget in s): a request may ask for less time than the setting, never more."""
    budget_s = min(timeout_ms, limit_ms) / 1000.0 if timeout_ms else limit_ms / 1000.0
    return time.monotonic() + budget_s, budget_s


async def within(deadline: float, budget_s: float, work: Awaitable[T], *, partial: bool = False) -> T:
    """`work`'s result, or DeadlineExceeded when the deadline passes first (`partial`: a little later)."""
    at = deadline + (PARTIAL_GRACE * budget_s if partial else 0.0)
    try:
        async with asyncio.timeout(max(0.0, at - time.monotonic())):
            return await work
    except TimeoutError:
        raise DeadlineExceeded(f"search did not finish within {budget_s * 1000:.0f} ms; ask for fewer queries, "
                               "a smaller k or a larger timeout_ms, or set allow_partial", field="timeout_ms") from None
