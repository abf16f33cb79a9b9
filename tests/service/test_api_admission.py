"""Overload is answered at once and memory stays bounded (issue 16): a full admission queue gives
429 + Retry-After immediately, per-key rate limits, a byte-bounded response cache that evicts, and
/metrics reporting RSS, JVM heap, queue depth and rejections."""

from __future__ import annotations

import threading
import time

import pytest

from service.admission import Admission, request_cost
from service.index_state import LRUCache
from tests.service.conftest import start_server
from tests.service.test_api import metric

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

HEAVY = {"queries": [f"pressure distribution on a wing at mach {i}" for i in range(64)], "k": 100, "mode": "hybrid",
         "include_domains": ["nih.gov"], "timeout_ms": 2000}  # fmt: skip


def test_cache_evicts_by_bytes():
    from service.index_state import ENTRY_OVERHEAD

    cache = LRUCache(max_entries=100, max_bytes=4000)
    for i in range(10):
        cache.put(f"k{i}", b"x" * 190)
    assert cache.bytes == len(cache) * (190 + ENTRY_OVERHEAD) <= 4000 and len(cache) < 10  # entries weigh their overhead too
    assert cache.get("k0") is None and cache.get("k9") == b"x" * 190  # oldest out, newest in
    cache.put("huge", b"y" * 800)  # over a quarter of the budget with its overhead: not cached at all
    assert cache.get("huge") is None and cache.get("k9") is not None


def test_a_cached_request_costs_a_bounded_key_however_large_the_request():
    """The cache's byte bound counts answers; a request can be far larger than its answer (1,000 long
    domains for a 257-byte answer), so what it keeps of the request is a fixed-size digest."""
    from ranker.pipeline import SearchOptions
    from service.api_models import SearchRequest
    from service.app import _cache_key

    def key(**extra):
        body = SearchRequest(query="wing flutter", **extra)
        return _cache_key("v1", body, "bm25", SearchOptions())

    domains = [f"site{i}-{'x' * 50}.{'y' * 60}.example.org" for i in range(1000)]
    big, other = key(include_domains=domains), key(include_domains=domains[:-1])
    assert len(big) == len(other) == 64 and big != other and big == key(include_domains=domains)
    assert key() != key(k=11)


@pytest.mark.parametrize(("retry_after_s", "said"), [(0.0, "1"), (2.5, "3")])
def test_retry_after_says_in_the_message_what_the_header_says(retry_after_s, said):
    adm = Admission(capacity=4, retry_after_s=retry_after_s)
    with adm.admit(4), pytest.raises(Exception) as err, adm.admit(4):
        pass
    assert err.value.headers["Retry-After"] == said and f"retry after {said} s" in err.value.message


def test_admission_weights_and_halves():
    adm = Admission(capacity=64)
    assert request_cost(64, 10, "bm25") == 64 and request_cost(1, 100, "hybrid") == 20
    with adm.admit(request_cost(64, 100, "hybrid")):  # huge: counts half the queue
        assert adm.in_use == 32
        with pytest.raises(Exception) as err, adm.admit(request_cost(64, 10, "bm25")):
            pass  # a second large request does not fit beside it
        assert err.value.status_code == 429 and err.value.headers["Retry-After"] == "1"
        assert "retry after 1 s" in err.value.message
        held = [adm.admit(request_cost(1, 10, "hybrid")) for _ in range(16)]  # ordinary traffic keeps the other half
        for ctx in held:
            ctx.__enter__()
        assert adm.in_use == 64
        with pytest.raises(Exception):
            adm.admit(1).__enter__()  # now the queue is full
        for ctx in held:
            ctx.__exit__(None, None, None)
    assert adm.rejected == 2 and adm.in_use == 0


def test_full_queue_answers_429_at_once(service_root):
    srv = start_server(index=service_root, threads=2, warmup=False, queue_units=2, cache_size=0)
    try:
        with srv.client() as heavy_client, srv.client() as c:
            done = threading.Event()
            heavy = threading.Thread(target=lambda: (heavy_client.post("/v1/search", json=HEAVY), done.set()), daemon=True)
            heavy.start()
            deadline = time.monotonic() + 30
            while metric(c, "drsearch_queue_units") < 1:  # the heavy request holds the queue
                assert time.monotonic() < deadline and not done.is_set(), "the heavy request never queued"
                time.sleep(0.005)
            statuses, refused_while_held = [], 0
            for _ in range(5):
                r = c.post("/v1/search", json={"query": "wing flutter", "k": 10, "mode": "hybrid"})
                statuses.append(r.status_code)
                if done.is_set():
                    break
                assert r.status_code == 429, r.text
                assert r.json()["error"]["code"] == "overloaded" and r.headers["retry-after"] == "1"
                refused_while_held += 1
            # At once: answered while the heavy request still held the queue (one made to wait comes back after it).
            assert refused_while_held >= 1, statuses
            heavy.join(timeout=60)
            assert metric(c, "drsearch_rejected_requests_total", 'reason="overloaded"') >= 1
            overloaded = 'code="overloaded",endpoint="/v1/search",status="429"'
            assert metric(c, "drsearch_http_errors_total", overloaded) == statuses.count(429) >= 1
            # the queries counter counts what was searched: the heavy request's 64, not the refused ones
            assert metric(c, "drsearch_search_queries_total", 'mode="hybrid"') == 64 + statuses.count(200)
            deadline = time.monotonic() + 60  # a search answered 504 keeps its units until its work stops
            while metric(c, "drsearch_queue_units") > 0:
                assert time.monotonic() < deadline, "the heavy request's work never ended"
                time.sleep(0.05)
            ok = c.post("/v1/search", json={"query": "wing flutter", "k": 10, "mode": "hybrid"})
            assert ok.status_code == 200, ok.text
    finally:
        srv.stop()


def test_rate_limit_per_key(tiny_bm25_root):
    srv = start_server(index=tiny_bm25_root, threads=2, api_key="rate-key", rate_limit_qps=0.5, rate_limit_burst=3)
    try:
        with srv.client(headers={"X-API-Key": "rate-key"}) as c:
            statuses = [c.post("/v1/search", json={"query": "lava from a volcano", "k": 1, "snippet_chars": 40 + i}).status_code
                        for i in range(4)]  # fmt: skip
            assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
            r = c.post("/v1/search", json={"query": "lava", "k": 1})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
            # the error metric is labelled with the API's code, so rate_limited and overloaded 429s tell apart
            errors = 'code="rate_limited",endpoint="/v1/search",status="429"'
            assert metric(c, "drsearch_http_errors_total", errors) == 2
    finally:
        srv.stop()


def test_rate_limit_charges_every_query_of_a_batch(tiny_bm25_root):
    """A batch of N queries costs N tokens: admitted while the bucket is not empty, even when it holds
    fewer than N, it leaves the bucket in debt, and the next request waits until the debt is repaid."""
    srv = start_server(index=tiny_bm25_root, threads=2, api_key="rate-key", rate_limit_qps=0.5, rate_limit_burst=3)
    try:
        with srv.client(headers={"X-API-Key": "rate-key"}) as c:
            assert c.post("/v1/search", json={"query": "lava", "k": 1}).status_code == 200  # 2 of 3 left
            r = c.post("/v1/search", json={"queries": ["lava from a volcano"] * 10, "k": 1})
            assert r.status_code == 200, r.text  # holds 2, costs 10: admitted, 8 in debt
            r = c.post("/v1/search", json={"query": "volcano", "k": 1})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
            # 8 of debt plus the one query asked for, at 0.5 queries/s: 18 s, not the 2 s of one query
            assert int(r.headers["retry-after"]) >= 17, r.headers
            r = c.post("/retrieve", json={"queries": ["lava"]})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 17
    finally:
        srv.stop()


def test_rate_limit_counts_every_way_to_search(tiny_bm25_root):
    """A cached answer, `/retrieve` (Search-R1) and MCP's search tool take from the key's bucket as
    `/v1/search` does: none of them is a way around the limit."""
    srv = start_server(index=tiny_bm25_root, threads=2, api_key="rate-key", rate_limit_qps=0.01, rate_limit_burst=5)
    mcp_call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "search", "arguments": {"queries": ["lava"], "k": 1}}}  # fmt: skip
    mcp_headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
    try:
        with srv.client(headers={"X-API-Key": "rate-key"}) as c:
            body = {"query": "lava from a volcano", "k": 1}
            assert [c.post("/v1/search", json=body).json()["cached"] for _ in range(2)] == [False, True]  # 2 of 5
            assert c.post("/retrieve", json={"queries": ["lava", "volcano"]}).status_code == 200  # 4 of 5
            assert c.post("/mcp", json=mcp_call, headers=mcp_headers).json()["result"]["isError"] is False  # 5 of 5
            refused = c.post("/mcp", json=mcp_call, headers=mcp_headers).json()["result"]
            assert refused["isError"] is True and "rate limit" in refused["content"][0]["text"]
            r = c.post("/retrieve", json={"queries": ["lava"]})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
            assert c.post("/v1/search", json=body).status_code == 429  # cached, still counted
            assert metric(c, "drsearch_rejected_requests_total", 'reason="rate_limited"') >= 3
    finally:
        srv.stop()


def test_cache_bounded_in_bytes_and_memory_metrics(service_root):
    srv = start_server(index=service_root, threads=2, warmup=False, cache_max_bytes=100_000)
    try:
        with srv.client() as c:
            bodies = [{"queries": [f"flow over a wing {i} {j}" for j in range(2)], "k": 5, "mode": "bm25",
                       "return_text": True} for i in range(12)]  # fmt: skip  (~17 KB each)
            for body in bodies:
                assert c.post("/v1/search", json=body).status_code == 200
            assert 0 < metric(c, "drsearch_cache_bytes") <= 100_000 and metric(c, "drsearch_cache_entries") < 12
            assert c.post("/v1/search", json=bodies[0]).json()["cached"] is False  # evicted
            assert c.post("/v1/search", json=bodies[-1]).json()["cached"] is True
            assert metric(c, "process_resident_memory_bytes") > 50e6
            assert metric(c, "drsearch_jvm_heap_bytes", 'kind="max"') > 0
            assert 0 < metric(c, "drsearch_jvm_heap_bytes", 'kind="used"') <= metric(c, "drsearch_jvm_heap_bytes", 'kind="max"')
            assert metric(c, "drsearch_queue_units") == 0
    finally:
        srv.stop()
