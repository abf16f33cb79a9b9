"""A query is cleaned and validated once per request, at the edge (the request model), never again
in the pipeline or the backends; the options object is the one place request options are declared."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ranker import query as query_module
from tests.service.conftest import start_server

pytestmark = [pytest.mark.timeout(300)]


@contextmanager
def counting_clean_query() -> Iterator[list[str]]:
    """Replace `clean_query` in every loaded module that holds it; record each call's field."""
    real = query_module.clean_query
    calls: list[str] = []

    def counted(query, *, field="query"):
        calls.append(field)
        return real(query, field=field)

    holders = [m for m in list(sys.modules.values()) if getattr(m, "clean_query", None) is real]
    for m in holders:
        m.clean_query = counted
    try:
        yield calls
    finally:
        for m in holders:
            m.clean_query = real


@pytest.fixture(scope="module")
def server(tiny_root):
    import ranker.pipeline  # noqa: F401 - loaded before counting, so its reference is replaced too
    import service.api_models  # noqa: F401

    srv = start_server(index=tiny_root, api_key=None, threads=2, cache_size=0)
    yield srv
    srv.stop()


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_query_is_cleaned_exactly_once_per_request(server, mode):
    body = {"queries": ["  lava from a volcano ", "jazz improvisation", "tides and the moon"], "k": 2, "mode": mode}
    with server.client() as c, counting_clean_query() as calls:
        r = c.post("/v1/search", json=body)
        assert r.status_code == 200, r.text
        assert calls == ["queries[0]", "queries[1]", "queries[2]"]
        assert [res["query"] for res in r.json()["results"]][0] == "lava from a volcano"
        calls.clear()
        assert c.post("/v1/search", json={"query": "lava", "mode": mode}).status_code == 200
        assert calls == ["query"]


def test_the_pipeline_checks_text_it_was_given_raw(tiny_root):
    """Callers without an edge of their own (eval, benchmarks) still get their queries checked, once."""
    from ranker.pipeline import SearchOptions, SearchPipeline

    p = SearchPipeline.open(tiny_root)
    try:
        with counting_clean_query() as calls:
            p.rank(["lava", "jazz"], SearchOptions(k=1, mode="bm25"))
        assert calls == ["queries[0]", "queries[1]"]
    finally:
        p.close()


def test_a_request_option_is_declared_once():
    """The HTTP body, the pipeline's options and the response cache key all come from ranker.options."""
    from ranker.options import RequestOptions, SearchOptions
    from service.api_models import SearchRequest

    for name in RequestOptions.model_fields:
        assert name in SearchRequest.model_fields and name in SearchOptions.model_fields
    body = SearchRequest(queries=["lava"], include_domains=["https://WWW.Example.org/x"], min_tier=2)
    options = body.to_search(mode="bm25")
    assert options.include_domains == ("example.org",) and options.min_tier == 2 and options.mode == "bm25"
    assert hash(options) == hash(body.to_search(mode="bm25"))  # the batcher groups calls by equal options
