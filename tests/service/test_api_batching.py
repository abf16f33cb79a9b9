"""The micro-batcher over a real pipeline (tiny index): one query encoding shared by concurrent calls
with different options, one pipeline batch per distinct options, isolation of a failing call, bounds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from indexer.errors import QueryError
from ranker.pipeline import SearchOptions, SearchPipeline
from service.batching import MicroBatcher

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pipeline(tiny_root) -> Iterator[SearchPipeline]:
    p = SearchPipeline.open(tiny_root)
    yield p
    p.close()


@contextmanager
def recording(obj, name: str, before=None) -> Iterator[list[list[str]]]:
    """Record the queries of every call of the real `obj.name` (optionally running `before()` first)."""
    real = getattr(obj, name)
    seen: list[list[str]] = []
    lock = threading.Lock()

    def wrapper(queries, *args, **kwargs):
        with lock:
            seen.append(list(queries))
        if before is not None:
            before()
        return real(queries, *args, **kwargs)

    setattr(obj, name, wrapper)
    try:
        yield seen
    finally:
        delattr(obj, name)


def run_together(calls, **batcher_kwargs) -> list:
    """Submit every (pipeline, options, texts) at once; outcomes (results or exception) in call order."""

    async def main():
        with ThreadPoolExecutor(4) as pool:
            batcher = MicroBatcher(pool, **{"window_s": 0.05, **batcher_kwargs})
            return await asyncio.gather(*(batcher.submit(p, o, t) for p, o, t in calls), return_exceptions=True)

    return asyncio.run(main())


def test_calls_with_different_options_share_one_encoding(pipeline):
    calls = [
        (pipeline, SearchOptions(k=2, mode="hybrid"), ["green plants capture sunlight"]),
        (pipeline, SearchOptions(k=5, mode="hybrid"), ["lava and ash from a volcano", "immune system training"]),
        (pipeline, SearchOptions(k=3, mode="dense"), ["dough rising in the oven"]),
        (pipeline, SearchOptions(k=3, mode="bm25"), ["sicilian defence chess"]),
        (pipeline, SearchOptions(k=4, mode="hybrid", per_doc=0), ["moon pulls the sea"]),
    ]
    alone = [p.batch_search(texts, options) for p, options, texts in calls]
    with recording(pipeline.dense, "encode") as encoded:
        together = run_together(calls)
    assert encoded == [[q for _, o, texts in calls if o.mode != "bm25" for q in texts]]  # one call, BM25 left out
    assert together == alone
    assert [len(r) for r in together[1]] == [5, 5] and together[0][0][0].passage.doc_id == "photo"


def test_calls_with_the_same_options_run_as_one_pipeline_batch(pipeline):
    options = SearchOptions(k=3, mode="hybrid")
    calls = [(pipeline, options, [f"glacier ice valley {i}", f"jazz improvisation {i}"]) for i in range(6)]
    alone = [pipeline.batch_search(texts, options) for _, _, texts in calls]
    with recording(pipeline, "batch_search") as batches:
        together = run_together(calls)
    assert batches == [[q for _, _, texts in calls for q in texts]]
    assert together == alone


def test_a_failing_call_fails_alone(pipeline):
    good = ["blockchain currency miners"]
    calls = [
        (pipeline, SearchOptions(k=2, mode="hybrid"), good),
        (pipeline, SearchOptions(k=2, mode="hybrid"), ["the of and"]),  # no searchable terms
        (pipeline, SearchOptions(k=2, mode="bm25"), ["the of and"]),
        (pipeline, SearchOptions(k=2, mode="bm25"), good),
    ]
    ok_hybrid, bad_hybrid, bad_bm25, ok_bm25 = run_together(calls)
    assert ok_hybrid == pipeline.batch_search(good, SearchOptions(k=2, mode="hybrid"))
    assert ok_bm25 == pipeline.batch_search(good, SearchOptions(k=2, mode="bm25"))
    for bad in (bad_hybrid, bad_bm25):
        assert isinstance(bad, QueryError) and bad.field == "query"  # named as in the caller's own request


def test_then_runs_on_the_worker_with_the_batch_and_fails_alone(pipeline):
    """Each call's `then` gets that call's own results, on the worker thread that ran the batch; a
    `then` that raises fails its own call only."""
    options = SearchOptions(k=2, mode="hybrid")
    texts = [["glacier ice valley"], ["jazz improvisation", "moon pulls the sea"], ["lava and ash"]]
    threads: list[str] = []

    def then(results):
        threads.append(threading.current_thread().name)
        return [[r.passage.passage_id for r in ranked] for ranked in results]

    def broken(results):
        raise ValueError(f"cannot format {len(results)} lists")

    async def main():
        with ThreadPoolExecutor(2, thread_name_prefix="batch-worker") as pool:
            batcher = MicroBatcher(pool, window_s=0.05)
            thens = [then, broken, then]
            return await asyncio.gather(*(batcher.submit(pipeline, options, t, then=f) for t, f in zip(texts, thens)),
                                        return_exceptions=True)  # fmt: skip

    with recording(pipeline, "batch_search") as batches:
        first, second, third = asyncio.run(main())
    assert batches == [[q for t in texts for q in t]]  # one batch, the failing `then` included
    assert first == then(pipeline.batch_search(texts[0], options)) and third == then(pipeline.batch_search(texts[2], options))
    assert isinstance(second, ValueError) and str(second) == "cannot format 2 lists"
    assert len(threads) == 4 and all(name.startswith("batch-worker") for name in threads[:2])


def test_snapshots_are_not_mixed_and_max_queries_bounds_a_batch(pipeline, tiny_bm25_root):
    other = SearchPipeline.open(tiny_bm25_root)
    options = SearchOptions(k=1, mode="bm25")
    sizes: list[tuple[int, int]] = []
    try:
        calls = [(pipeline if i % 2 else other, options, [f"python tennis sleep {i}"]) for i in range(12)]
        with recording(pipeline, "batch_search") as mine, recording(other, "batch_search") as theirs:
            together = run_together(calls, max_queries=4, on_batch=lambda n_calls, n_queries: sizes.append((n_calls, n_queries)))
    finally:
        other.close()
    assert all(not isinstance(r, Exception) and len(r) == 1 for r in together)
    assert sorted(q for batch in mine for q in batch) == sorted(t[0] for p, _, t in calls if p is pipeline)
    assert sorted(q for batch in theirs for q in batch) == sorted(t[0] for p, _, t in calls if p is other)
    assert all(n <= 4 for _, n in sizes) and sum(n for _, n in sizes) == 12


def test_calls_pile_up_while_slots_are_busy(pipeline):
    """While the only slot is busy, later calls (any options) join one batch instead of many small ones."""
    gate = threading.Event()
    sizes: list[tuple[int, int]] = []

    async def main():
        with ThreadPoolExecutor(4) as pool:
            b = MicroBatcher(pool, window_s=0.001, max_batches=1, on_batch=lambda c, q: sizes.append((c, q)))
            first = asyncio.ensure_future(b.submit(pipeline, SearchOptions(k=1, mode="hybrid"), ["first tides"]))
            await asyncio.sleep(0.05)  # `first` is running now, held at the gate
            rest = [asyncio.ensure_future(b.submit(pipeline, SearchOptions(k=1 + i % 3, mode="hybrid"), [f"sleep {i}"]))
                    for i in range(8)]  # fmt: skip
            await asyncio.sleep(0.05)
            gate.set()
            return await asyncio.gather(first, *rest)

    with recording(pipeline.dense, "encode", before=lambda: gate.wait(30)) as encoded:
        results = asyncio.run(main())
    assert sizes == [(1, 1), (8, 8)]
    assert encoded == [["first tides"], [f"sleep {i}" for i in range(8)]]
    assert [len(r[0]) for r in results] == [1] + [1 + i % 3 for i in range(8)]


def test_a_batch_runs_once_it_holds_half_the_maximum_without_waiting_out_the_window(pipeline):
    """With a window far longer than the test: one single-query call waits for company; the call
    that brings the batch to `ready_queries` (half of max_queries) starts it, both in one batch."""
    sizes: list[tuple[int, int]] = []
    options = SearchOptions(k=1, mode="hybrid")

    async def main():
        with ThreadPoolExecutor(2) as pool:
            b = MicroBatcher(pool, window_s=600, max_queries=4, on_batch=lambda c, q: sizes.append((c, q)))
            first = asyncio.ensure_future(b.submit(pipeline, options, ["glacier ice valley"]))
            done, _ = await asyncio.wait([first], timeout=0.3)
            assert not done and sizes == []  # still collecting
            second = asyncio.ensure_future(b.submit(pipeline, options, ["jazz improvisation"]))
            return await asyncio.wait_for(asyncio.gather(first, second), 60)

    first, second = asyncio.run(main())
    assert sizes == [(2, 2)]
    assert first == pipeline.batch_search(["glacier ice valley"], options)
    assert second == pipeline.batch_search(["jazz improvisation"], options)
