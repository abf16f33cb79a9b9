"""Admission control in front of the search executor: a bounded, cost-weighted queue per worker and
optional per-API-key token buckets. Overload is answered at once (429 + Retry-After), not by
letting requests wait for seconds. Used from the event loop thread only (no locks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.errors import ApiError

MODE_WEIGHT = {"bm25": 1, "dense": 1, "hybrid": 2}


def request_cost(n_queries: int, k: int, mode: str) -> int:
    """Work units of a search request: queries x ceil(k / 10) x mode weight (a 64-query, k=10 BM25 request is 64)."""
    return max(1, n_queries) * max(1, math.ceil(k / 10)) * MODE_WEIGHT.get(mode, 2)


class Admission:
    """At most `capacity` cost units in flight. One request counts at most half the capacity (so a huge
    one can run, but never alone blocks everyone), and large requests (over 1/8 of it) share one half,
    so ordinary traffic keeps the other half however many large requests arrive."""

    def __init__(self, capacity: int, retry_after_s: float = 1.0):
        self.capacity = capacity
        self.retry_after_s = retry_after_s
        self.in_use = 0
        self.large_in_use = 0
        self.requests = 0
        self.rejected = 0

    @contextmanager
    def admit(self, cost: int) -> Iterator[None]:
        release = self.take(cost)
        try:
            yield
        finally:
            release()

    def is_large(self, cost: int) -> bool:
        """Whether a request of `cost` counts as large (over 1/8 of the capacity): such requests share
        one half of the queue, and the service computes them at a lower priority (`service.priority`)."""
        return cost > self.capacity // 8

    def take(self, cost: int) -> Callable[[], None]:
        """Admit `cost` (or raise the 429) and return the function that gives it back, once: a search that
        outlives its answer (a 504) keeps its units until its thread really stops."""
        units = min(cost, max(1, self.capacity // 2))
        large = self.is_large(cost)
        if (self.in_use and self.in_use + units > self.capacity) or (
            large and self.large_in_use and self.large_in_use + units > self.capacity // 2
        ):
            self.rejected += 1
            retry_s = max(1, math.ceil(self.retry_after_s))  # whole seconds, as Retry-After takes them; 0 would ask for a busy loop
            raise ApiError(429, "overloaded", f"server busy ({self.in_use}/{self.capacity} work units queued, this "
                           f"request needs {units}); retry after {retry_s} s", headers={"Retry-After": str(retry_s)})  # fmt: skip
        self.in_use += units
        self.requests += 1
        if large:
            self.large_in_use += units
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_use -= units
                self.requests -= 1
                if large:
                    self.large_in_use -= units

        return release


class RateLimiter:
    """Token buckets per API key: `rate` queries per second, bursts up to `burst`.

    A request of n queries costs n tokens. It is admitted while its key's bucket is not empty (holds at
    least one token), even when n is more than the bucket holds: the bucket then goes into debt, and the
    key's next requests are refused until it has refilled, so a batch costs what its queries cost."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill); only valid keys reach it

    def take(self, key: str, n: int) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:  # empty or in debt: back when one query's token is there again
            self._buckets[key] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise ApiError(429, "rate_limited", f"rate limit of {self.rate:g} queries/s for this key exceeded; "
                           f"retry after {wait} s", "X-API-Key", headers={"Retry-After": str(wait)})  # fmt: skip
        self._buckets[key] = (tokens - max(1, n), now)
