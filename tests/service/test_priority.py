"""Large search requests run on low-priority threads (service.priority); ordinary ones do not."""

from __future__ import annotations

import os
import threading

import pytest

from service.priority import bulk_executor
from tests.service.conftest import start_server

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are set with setpriority")


def own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_bulk_threads_run_lower_and_the_caller_does_not() -> None:
    before = own_nice()
    pool = bulk_executor(2, 4)
    try:
        seen = {pool.submit(own_nice).result(timeout=30) for _ in range(6)}
    finally:
        pool.shutdown(wait=True)
    assert seen == {min(before + 4, 19)}
    assert own_nice() == before


def test_large_requests_are_computed_on_the_bulk_threads(tiny_root) -> None:
    srv = start_server(index=tiny_root, threads=2, warmup=False, cache_size=0, bulk_nice=3, queue_units=256)
    base = own_nice()
    try:
        pipeline = srv.app.state.svc.index.current.pipeline
        real = pipeline.batch_search
        ran_on: list[tuple[str, int, int]] = []

        def recording(texts, *args, **kwargs):
            ran_on.append((threading.current_thread().name, own_nice(), len(texts)))
            return real(texts, *args, **kwargs)

        pipeline.batch_search = recording
        with srv.client() as c:
            one = c.post("/v1/search", json={"query": "lava from a volcano", "k": 3, "mode": "bm25"})
            # 40 BM25 queries at k=10 cost 40 units, over 1/8 of the 256-unit queue: a large request
            many = c.post("/v1/search", json={"queries": [f"lava flow {i}" for i in range(40)], "k": 10, "mode": "bm25"})
            two = c.post("/v1/search", json={"queries": ["lava", "moon"], "k": 3, "mode": "bm25"})
        # Threads inherit their creator's priority: the BM25 leg's pool was started when the index
        # opened, not by the first batch (here the bulk one), so ordinary batches keep normal priority.
        lucene = [t for t in threading.enumerate() if t.name.startswith("lucene-topk")]
        lucene_nice = {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in lucene}
    finally:
        srv.stop()
    assert one.status_code == many.status_code == two.status_code == 200
    assert len(many.json()["results"]) == 40 and any(r["hits"] for r in many.json()["results"])
    (one_thread, one_nice, _), (many_thread, many_nice, n), (two_thread, two_nice, _) = ran_on
    assert one_thread.startswith("drsearch-search") and one_nice == base
    assert many_thread.startswith("drsearch-bulk") and many_nice == min(base + 3, 19) and n == 40
    assert two_thread.startswith("drsearch-search") and two_nice == base
    if pipeline.lexical._topk._threads > 1:
        assert lucene and lucene_nice == {base}
