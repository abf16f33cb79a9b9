"""The same request gets the same answer, whatever ran beside it: requests that differ in every option,
sent at once to a micro-batching server, each answered as when sent alone; pages consistent with the
full list; the response cache never answering for another build. Real servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.service.conftest import LiveServer, agent_docs, build_tiny_index, start_server
from tests.text_fixtures import AGENT_NOW, FUND_QUERY, REPORT_QUERY, press_release_docs

pytestmark = pytest.mark.timeout(300)

VARYING = [
    {"query": "influenza vaccine risk", "k": 3},
    {"query": "influenza vaccine risk", "k": 5, "mode": "bm25"},
    {"query": "influenza vaccine risk", "k": 4, "mode": "dense"},
    {"queries": ["vaccine trials immune response", "wages inflation earnings"], "k": 3, "per_doc": 0},
    {"queries": ["vaccine trials immune response", "wages inflation earnings"], "k": 3, "per_doc": 2, "mode": "bm25"},
    {"query": FUND_QUERY, "k": 4, "dedupe_text": False},
    {"query": FUND_QUERY, "k": 4},
    {"query": FUND_QUERY, "k": 4, "offset": 2},
    {"query": FUND_QUERY, "k": 3, "max_per_domain": 1},
    {"query": REPORT_QUERY, "k": 2, "include_domains": ["oecd.org", "example.net"]},
    {"query": REPORT_QUERY, "k": 2, "exclude_domains": ["oecd.org"], "mode": "bm25"},
    {"queries": [FUND_QUERY, REPORT_QUERY, "imf staff agreement"], "k": 3, "dedupe_across_queries": True},
    {"queries": [FUND_QUERY, "imf staff agreement"], "k": 3, "dedupe_across_queries": True, "dedupe_text": False},
    {"queries": ["wages inflation earnings", "Reallöhne Inflation Deutschland"], "k": 3, "languages": ["de"]},
    {"query": "wages inflation earnings", "k": 3, "countries": ["gb", "de"]},
    {"query": "vaccine", "k": 3, "min_tier": 1},
    {"query": "vaccine hesitancy", "k": 3, "time_range": "year", "now": AGENT_NOW},
    {"query": "vaccine hesitancy", "k": 3, "published_after": "2020", "include_undated": True},
    {"query": "vaccine hesitancy refusal", "k": 5, "snippet_chars": 60, "return_text": True},
    {"queries": ["vaccine hesitancy refusal", "glacier ice"], "k": 5, "max_chars_per_hit": 50, "max_total_chars": 300},
    {"query": "jazz improvisation blues", "k": 2, "offset": 1, "mode": "dense"},
    {"query": "Reallöhne in Deutschland", "k": 3},  # a language the dense model may not cover: mode_used
    {"query": "the of and"},  # no searchable terms: an error, the same one
]
# One set of options, queries of several languages (modes used), one without searchable terms: one pipeline batch.
SAME_OPTIONS = [{"query": q, "k": 3} for q in ("glacier ice valley", "Reallöhne in Deutschland", "the of and",
                                               "blockchain miners ledger", "staff-level agreement Ghana",
                                               "Die Reallohne in Deutschland sind im zweiten Quartal gestiegen")]


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory) -> Path:
    """Sourced, dated, multilingual documents and copies of one text, BM25 + dense."""
    docs = agent_docs() + press_release_docs()
    return build_tiny_index(tmp_path_factory.mktemp("consistency") / "index", docs, dense=True, chunk_words=40)


@pytest.fixture(scope="module")
def batching_server(mixed_root) -> Iterator[LiveServer]:
    """No response cache (every answer computed), a batch window long enough for concurrent calls to merge."""
    srv = start_server(index=mixed_root, threads=2, cache_size=0, batch_window_ms=40.0)
    yield srv
    srv.stop()


def answer(response) -> tuple[int, object]:
    """What a response says about its request: status and body without request id, timing and cache flag."""
    body = response.json()
    if isinstance(body, dict):
        for name in ("request_id", "took_ms", "cached"):
            body.pop(name, None)
    return response.status_code, body


def merged_calls(client) -> float:
    """Search calls that ran in a batch with another call so far (the batcher's histogram)."""
    values = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(("drsearch_batch_calls_sum", "drsearch_batch_calls_count")):
            name, value = line.split()
            values[name] = float(value)
    return values["drsearch_batch_calls_sum"] - values["drsearch_batch_calls_count"]


@pytest.mark.parametrize("bodies", [VARYING, SAME_OPTIONS], ids=["every-option", "same-options"])
def test_every_request_answered_as_when_sent_alone(batching_server, bodies):
    with batching_server.client() as c:
        alone = [answer(c.post("/v1/search", json=body)) for body in bodies]
        assert [status for status, _ in alone].count(200) == len(bodies) - 1
        merged_before = merged_calls(c)
    with ThreadPoolExecutor(8) as pool, batching_server.client() as c:
        for _ in range(3):
            together = list(pool.map(lambda body: answer(c.post("/v1/search", json=body)), bodies))
            for body, one, many in zip(bodies, alone, together):
                assert many == one, json.dumps(body)
        assert merged_calls(c) > merged_before  # the calls did run together


@pytest.mark.parametrize("body", [{"query": FUND_QUERY, "per_doc": 0}, {"query": FUND_QUERY, "dedupe_text": False},
                                  {"query": "market price policy growth", "max_per_domain": 2, "mode": "dense"},
                                  {"queries": ["IMF staff agreement inflation", "market price policy growth"], "mode": "bm25"}],
                         ids=["per_doc-0", "copies-kept", "max_per_domain", "two-queries"])  # fmt: skip
def test_pages_fetched_at_once_are_the_full_list(batching_server, body):
    """Pages of 3 (offset 0, 3, ..., requested together, so batched) are the list of 12, cut: no hit
    repeated or skipped, ranks counting on, the same scores."""
    with batching_server.client() as c, ThreadPoolExecutor(4) as pool:
        full = c.post("/v1/search", json={**body, "k": 12}).json()["results"]
        pages = list(pool.map(lambda offset: c.post("/v1/search", json={**body, "k": 3, "offset": offset}).json(),
                              range(0, 12, 3)))  # fmt: skip
    for i, ranked in enumerate(full):
        assert len(ranked["hits"]) == 12
        paged = [h for page in pages for h in page["results"][i]["hits"]]
        assert [(h["rank"], h["passage_id"], h["scores"]) for h in paged] == [
            (h["rank"], h["passage_id"], h["scores"]) for h in ranked["hits"]]


def _served_with_a_list_of_its_own(mixed_root, tmp_path, monkeypatch, **settings):
    """A server (admin key set) over a copy of the mixed index, whose authority list is one file of
    one entry, `nih.gov` named "Old name"; returns (the server, that file)."""
    import shutil

    from tests.service.conftest import ADMIN_KEY

    authority = tmp_path / "authority"
    authority.mkdir()
    listed = authority / "health.csv"
    listed.write_text("domain,name,category,country,tier,note\nnih.gov,Old name,health_agency,us,1,\n", encoding="utf-8")
    monkeypatch.setenv("DRSEARCH_AUTHORITY_LIST", str(authority))
    root = tmp_path / "index"
    shutil.copytree(mixed_root, root, symlinks=True)
    return start_server(index=root, admin_key=ADMIN_KEY, threads=2, warmup=False, **settings), listed


LISTED_QUERY = {"query": "vaccine clinical trials phases", "k": 1, "mode": "bm25"}  # its best hit is on nih.gov


def test_an_answer_computed_on_the_replaced_build_is_not_cached(mixed_root, tmp_path, monkeypatch):
    """A search still running on the old build when a reload swaps in a new one must not leave its answer
    in the cache: a forced reload of the same build (same version) with an edited authority list
    answers with the new list at once."""
    import threading

    from tests.service.conftest import ADMIN_KEY

    # A 1 s batch window: the search waits in it, on the old build, while the reload swaps.
    server, listed = _served_with_a_list_of_its_own(mixed_root, tmp_path, monkeypatch, batch_window_ms=1000.0)
    try:
        with server.client() as c:
            assert c.post("/v1/search", json=LISTED_QUERY).json()["results"][0]["hits"][0]["authority"]["name"] == "Old name"
            listed.write_text(listed.read_text(encoding="utf-8").replace("Old name", "New name"), encoding="utf-8")
            stale = {**LISTED_QUERY, "snippet_chars": 100}  # not yet cached
            running: dict[str, object] = {}
            search = threading.Thread(target=lambda: running.update(r=c.post("/v1/search", json=stale)))
            search.start()
            index = server.app.state.svc.index
            waited = time.monotonic() + 0.8
            while index.current.inflight == 0 and time.monotonic() < waited:  # until the search holds the build
                time.sleep(0.01)
            reloaded = c.post("/v1/admin/reload", params={"force": "true"}, headers={"X-API-Key": ADMIN_KEY})
            assert reloaded.status_code == 200 and search.is_alive(), "the search was to finish after the swap"
            search.join(timeout=60)
            assert running["r"].json()["results"][0]["hits"][0]["authority"]["name"] == "Old name"  # started before it
            after = c.post("/v1/search", json=stale).json()
            assert after["results"][0]["hits"][0]["authority"]["name"] == "New name", after["cached"]
    finally:
        server.stop()


def test_a_reload_refused_for_its_authority_list_names_the_line_and_keeps_serving(mixed_root, tmp_path, monkeypatch):
    """The refusal said `category: unknown category ...`: no file, no line, and not that the old list serves on."""
    from tests.service.conftest import ADMIN_KEY

    server, listed = _served_with_a_list_of_its_own(mixed_root, tmp_path, monkeypatch, cache_size=0)
    try:
        with server.client() as c:
            listed.write_text(listed.read_text(encoding="utf-8") + "cdc.gov,CDC,think_tank,us,1,\n", encoding="utf-8")
            refused = c.post("/v1/admin/reload", params={"force": "true"}, headers={"X-API-Key": ADMIN_KEY})
            error = refused.json()["error"]
            assert refused.status_code == 503 and error["code"] == "config_error", refused.text
            assert error["message"].startswith("reload refused, still serving the loaded build and list: ")
            assert "health.csv:3: category: unknown category 'think_tank'" in error["message"], error
            assert c.post("/v1/search", json=LISTED_QUERY).json()["results"][0]["hits"][0]["authority"]["name"] == "Old name"
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_lists_deduplicated_across_queries_rank_as_each_query_alone(mixed_root, monkeypatch, mode):
    """dedupe_across_queries only leaves out what an earlier query showed: the first list is the first
    query's own (hits and scores), a later one its own list without those passages, refilled. With
    DRSEARCH_K0=5 the lists searched for the refill go deeper than a query alone searches."""
    monkeypatch.setenv("DRSEARCH_K0", "5")
    queries = [FUND_QUERY, "International Monetary Fund Peru Ghana"]
    server = start_server(index=mixed_root, threads=2, cache_size=0, warmup=False)
    try:
        with server.client() as c:
            options = {"k": 3, "mode": mode, "dedupe_text": False}
            alone = [c.post("/v1/search", json={"query": q, **options}).json()["results"][0]["hits"] for q in queries]
            first, second = (r["hits"] for r in c.post("/v1/search", json={
                "queries": queries, **options, "dedupe_across_queries": True}).json()["results"])
    finally:
        server.stop()
    assert first == alone[0]
    shown = {h["passage_id"] for h in first}
    kept = [h for h in alone[1] if h["passage_id"] not in shown]
    assert shown & {h["passage_id"] for h in alone[1]}  # the second query did lose a passage to the first
    # (a leg searched deeper for the refill may find a kept hit too: its raw `bm25` / `dense` can then be given)
    ranked_as = [(h["passage_id"], h["scores"]["fused"], h["scores"]["final"]) for h in kept]
    assert [(h["passage_id"], h["scores"]["fused"], h["scores"]["final"]) for h in second[: len(kept)]] == ranked_as
    assert len(second) == 3 and not shown & {h["passage_id"] for h in second}


def test_a_cached_answer_is_the_answer_computed_for_that_request(mixed_root, batching_server):
    """Requests that differ in one field each (k, mode, offset, dedupe_text, snippet_chars, `now`, ...)
    are answered from the cache with their own answer, never another's."""
    bodies = [*VARYING, {"query": "vaccine hesitancy", "k": 3, "time_range": "year", "now": "2020-03-05T00:00:00Z"},
              {"query": "vaccine hesitancy", "k": 3, "time_range": "year", "now": "2020-03-05T23:00:00+00:00"}]
    with batching_server.client() as c:
        computed = [answer(c.post("/v1/search", json=body)) for body in bodies]
    server = start_server(index=mixed_root, threads=2)
    try:
        with server.client() as c:
            for _ in range(2):
                for body, expected in zip(bodies, computed):
                    assert answer(c.post("/v1/search", json=body)) == expected, json.dumps(body)
            assert c.post("/v1/search", json=bodies[0]).json()["cached"] is True
    finally:
        server.stop()
