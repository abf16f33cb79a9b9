"""The micro-batcher on its own: merging, isolation of a failing call, size bound (no server, no index)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.batching import MicroBatcher

pytestmark = pytest.mark.timeout(60)


class FakePipeline:
    def __init__(self, delay: float = 0.0):
        self.calls: list[list[str]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def run(self, queries: list[str]) -> list[list[str]]:
        with self.lock:
            self.calls.append(list(queries))
        time.sleep(self.delay)
        if any(q == "bad" for q in queries):
            raise ValueError("bad query")
        return [[q.upper()] for q in queries]


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_calls_are_merged_and_split_back():
    fake = FakePipeline()

    async def main():
        with ThreadPoolExecutor(2) as pool:
            b = MicroBatcher(pool, window_s=0.05, max_queries=64)
            return await asyncio.gather(*(b.submit("k", fake.run, [f"q{i}", f"r{i}"]) for i in range(10)))

    results = _run(main())
    assert results == [[[f"Q{i}"], [f"R{i}"]] for i in range(10)]
    assert len(fake.calls) == 1 and len(fake.calls[0]) == 20


def test_keys_are_not_mixed_and_max_queries_bounds_a_batch():
    fake = FakePipeline()

    async def main():
        with ThreadPoolExecutor(2) as pool:
            b = MicroBatcher(pool, window_s=0.05, max_queries=4)
            return await asyncio.gather(*(b.submit(i % 2, fake.run, [str(i)]) for i in range(12)))

    assert _run(main()) == [[[str(i)]] for i in range(12)]
    assert all(len(c) <= 4 for c in fake.calls)
    assert all(len({int(q) % 2 for q in c}) == 1 for c in fake.calls)
    assert sum(len(c) for c in fake.calls) == 12


def test_a_failing_call_fails_alone():
    fake = FakePipeline()

    async def main():
        with ThreadPoolExecutor(2) as pool:
            b = MicroBatcher(pool, window_s=0.05)
            return await asyncio.gather(b.submit("k", fake.run, ["a"]), b.submit("k", fake.run, ["bad"]),
                                        b.submit("k", fake.run, ["c"]), return_exceptions=True)  # fmt: skip

    a, bad, c = _run(main())
    assert a == [["A"]] and c == [["C"]] and isinstance(bad, ValueError)


def test_calls_pile_up_while_slots_are_busy():
    """With one slot busy, later calls join one batch instead of many small ones."""
    fake = FakePipeline(delay=0.2)

    async def main():
        with ThreadPoolExecutor(4) as pool:
            b = MicroBatcher(pool, window_s=0.001, max_batches=1)
            first = asyncio.ensure_future(b.submit("k", fake.run, ["first"]))
            await asyncio.sleep(0.05)  # `first` is running now
            rest = [b.submit("k", fake.run, [str(i)]) for i in range(8)]
            return await asyncio.gather(first, *rest)

    _run(main())
    assert fake.calls[0] == ["first"] and len(fake.calls) == 2 and len(fake.calls[1]) == 8
