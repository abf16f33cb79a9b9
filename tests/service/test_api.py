"""Every endpoint of the search API against a live uvicorn server over a real Cranfield index."""

from __future__ import annotations

import json
import time
import logging
import re
from urllib.parse import quote

import pytest

from tests.service.conftest import ADMIN_KEY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

Q1 = "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft"
Q2 = "what problems of heat conduction in composite slabs have been solved so far"
Q3 = "boundary layer transition on a flat plate at supersonic speed"
HIT_KEYS = {"rank", "passage_id", "doc_id", "title", "url", "domain", "authority", "published", "snippet", "scores"}
SCORE_KEYS = {"bm25", "dense", "fused", "authority", "final"}


def metric(client, name: str, labels: str = "") -> float:
    text = client.get("/metrics").text
    pattern = re.compile(rf"^{re.escape(name)}(\{{{re.escape(labels)}\}})? (\S+)$", re.M) if labels else re.compile(
        rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.M
    )
    return sum(float(m.group(2)) for m in pattern.finditer(text))


def search(client, **body):
    r = client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------------------------ ops


def test_health_ready_index(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["index_version"]
    info = client.get("/v1/index").json()
    assert info["version"] == ready.json()["index_version"]
    assert info["manifest"]["format_version"] == 2 and info["manifest"]["counts"]["passages"] > 1000
    assert info["default_mode"] == "hybrid" and info["has_dense"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", info["authority"]["content_hash"])


def test_tool_schema(client):
    tools = client.get("/v1/tool-schema").json()["tools"]
    assert [t["function"]["name"] for t in tools] == ["search", "fetch"]
    schema = tools[0]
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "search" and len(fn["description"]) > 50
    params = fn["parameters"]
    assert params["type"] == "object" and params["required"] == ["queries"]
    assert params["properties"]["queries"]["type"] == "array"
    assert params["properties"]["queries"]["maxItems"] == 64
    assert set(params["properties"]["mode"]["enum"]) == {"hybrid", "bm25", "dense"}
    assert "snippet_chars" not in params["properties"]
    assert "$ref" not in str(schema) and "anyOf" not in str(schema)


def test_openapi_documents_errors(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/search"]["post"]
    for status in ("400", "401", "413", "422", "500"):
        assert status in post["responses"], status
    ref = post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorResponse")
    for path in ("/v1/search", "/v1/fetch", "/retrieve"):  # a body that does not arrive in time: 408 on any of them
        assert {"408", "413", "415"} <= set(spec["paths"][path]["post"]["responses"]), path
    for path in ("/v1/documents/{doc_id}", "/v1/passages/{passage_id}", "/healthz", "/readyz", "/v1/index",
                 "/metrics", "/v1/tool-schema", "/v1/admin/reload"):  # fmt: skip
        assert path in spec["paths"], path


def test_metrics_text(client):
    search(client, query=Q3, k=2)
    text = client.get("/metrics").text
    for name in ("drsearch_http_requests_total", "drsearch_http_request_seconds_bucket", "drsearch_cache_hits_total",
                 "drsearch_cache_misses_total", "drsearch_index_info", "drsearch_batch_queries_bucket"):  # fmt: skip
        assert name in text, name
    assert 'endpoint="/v1/search"' in text and 'mode="hybrid"' in text


# ------------------------------------------------------------------------------------------ search


def test_search_single_query_shortcut(client):
    body = search(client, query=Q1, k=5)
    assert body["index_version"] and body["request_id"] and body["took_ms"] >= 0 and body["mode"] == "hybrid"
    (result,) = body["results"]
    assert result["query"] == Q1
    hits = result["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    for h in hits:
        assert HIT_KEYS <= set(h) and "text" not in h
        assert set(h["scores"]) >= SCORE_KEYS
        assert h["scores"]["bm25"] is not None or h["scores"]["dense"] is not None
        assert h["passage_id"].startswith(h["doc_id"] + "#")
        assert len(h["snippet"]) <= 240 + 2
    finals = [h["scores"]["final"] for h in hits]
    assert finals == sorted(finals, reverse=True)
    assert len({h["doc_id"] for h in hits}) == 5  # per_doc=1 by default


def test_search_batch_keeps_order_and_modes(client):
    for mode in ("bm25", "dense", "hybrid"):
        body = search(client, queries=[Q1, Q2, Q3], k=3, mode=mode)
        assert body["mode"] == mode
        assert [r["query"] for r in body["results"]] == [Q1, Q2, Q3]
        for r in body["results"]:
            assert len(r["hits"]) == 3
            if mode == "bm25":
                assert all(h["scores"]["dense"] is None for h in r["hits"])
            if mode == "dense":
                assert all(h["scores"]["bm25"] is None for h in r["hits"])


def test_search_options(client):
    full = search(client, query=Q2, k=4, return_text=True, snippet_chars=60, per_doc=0)
    for h in full["results"][0]["hits"]:
        assert isinstance(h["text"], str) and len(h["text"]) >= len(h["snippet"]) - 2
        assert len(h["snippet"]) <= 62
    # Cranfield has no URLs, so a domain allow-list or a tier floor leaves nothing.
    assert search(client, query=Q2, include_domains=["nasa.gov"])["results"][0]["hits"] == []
    assert search(client, query=Q2, min_tier=1)["results"][0]["hits"] == []
    assert len(search(client, query=Q2, k=3, exclude_domains=["https://www.example.com/x"])["results"][0]["hits"]) == 3
    assert len(search(client, query=Q2, k=3, max_per_domain=1)["results"][0]["hits"]) == 3


def test_dedupe_across_queries(client):
    plain = search(client, queries=[Q1, Q1], k=5)
    a, b = (r["hits"] for r in plain["results"])
    assert [h["passage_id"] for h in a] == [h["passage_id"] for h in b]
    deduped = search(client, queries=[Q1, Q1, Q1], k=5, dedupe_across_queries=True)
    lists = [[h["passage_id"] for h in r["hits"]] for r in deduped["results"]]
    assert lists[0] == [h["passage_id"] for h in a]
    assert all(len(ids) == 5 for ids in lists)
    assert len(set(lists[0]) | set(lists[1]) | set(lists[2])) == 15
    assert [h["rank"] for h in deduped["results"][2]["hits"]] == [1, 2, 3, 4, 5]


def _strip_volatile(body):
    return {k: v for k, v in body.items() if k not in ("request_id", "took_ms", "cached")}


def test_deterministic_and_cached(client):
    hits_before = metric(client, "drsearch_cache_hits_total")
    first = search(client, queries=[Q3], k=7, mode="hybrid")
    second = search(client, queries=[Q3], k=7, mode="hybrid")
    assert second["cached"] is True and _strip_volatile(first) == _strip_volatile(second)
    assert first["request_id"] != second["request_id"]
    assert metric(client, "drsearch_cache_hits_total") >= hits_before + 1
    # A fresh computation (different cache key) is identical too.
    fresh = search(client, queries=[Q3], k=7, mode="hybrid", snippet_chars=241)
    assert fresh["cached"] is False
    assert [h["scores"] for h in fresh["results"][0]["hits"]] == [h["scores"] for h in first["results"][0]["hits"]]
    assert [h["passage_id"] for h in fresh["results"][0]["hits"]] == [h["passage_id"] for h in first["results"][0]["hits"]]


def _batch_invariant_encoder() -> bool:
    from backends.faiss import encoder

    return bool(getattr(encoder.encode_queries, "batch_invariant", False))


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_same_hits_alone_or_batched(client, mode):
    """A query's hits do not depend on the queries it shares a pipeline batch with (micro-batching).

    BM25 is exact. Dense vectors differ by ~1e-7 with the padding of the other queries unless the
    encoder pads batch-invariantly (see the service report), so dense scores compare to 1e-6 then.
    """
    alone = search(client, query=Q3, k=7, mode=mode, snippet_chars=100)["results"][0]["hits"]
    batched = search(client, queries=[Q1, Q3, Q2], k=7, mode=mode, snippet_chars=100)["results"][1]["hits"]
    assert [h["passage_id"] for h in alone] == [h["passage_id"] for h in batched]
    if mode == "bm25" or _batch_invariant_encoder():
        assert alone == batched
    else:
        for a, b in zip(alone, batched):
            assert {k: v for k, v in a.items() if k != "scores"} == {k: v for k, v in b.items() if k != "scores"}
            for leg, value in a["scores"].items():
                other = b["scores"][leg]
                assert (value is None and other is None) or value == pytest.approx(other, rel=1e-6, abs=1e-6), leg


# ------------------------------------------------------------------------------------------ fetch


def test_document_and_passage_fetch(client):
    hit = search(client, query=Q1, k=1)["results"][0]["hits"][0]
    doc = client.get(f"/v1/documents/{quote(hit['doc_id'], safe='')}")
    assert doc.status_code == 200, doc.text
    d = doc.json()
    assert d["doc_id"] == hit["doc_id"] and d["title"] == hit["title"] and d["text"]
    assert d["passages"] and any(p["passage_id"] == hit["passage_id"] for p in d["passages"])
    for p in d["passages"]:
        assert 0 <= p["start"] < p["end"] <= len(d["text"])
    passage = client.get(f"/v1/passages/{quote(hit['passage_id'], safe='')}")  # '#' must travel as %23
    assert passage.status_code == 200, passage.text
    p = passage.json()
    assert p["passage_id"] == hit["passage_id"] and p["doc_id"] == hit["doc_id"] and p["text"]
    ref = next(x for x in d["passages"] if x["passage_id"] == hit["passage_id"])
    assert (p["start"], p["end"], p["ordinal"]) == (ref["start"], ref["end"], ref["ordinal"])


@pytest.mark.parametrize("path", ["/v1/documents/no-such-doc", "/v1/documents/a/b%23c", "/v1/passages/1%23999",
                                  "/v1/passages/nope"])  # fmt: skip
def test_fetch_unknown_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and err["field"] in ("doc_id", "passage_id")


# ------------------------------------------------------------------------------------------ admin


def test_admin_requires_key(client):
    assert client.post("/v1/admin/reload").status_code == 401
    r = client.post("/v1/admin/reload", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    ok = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert ok.status_code == 200, ok.text
    # Another module may have published a build into the shared root: the first reload takes it up,
    # a second one then has nothing to change.
    again = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY}).json()
    assert again["reloaded"] is False and again["old_version"] == again["new_version"] == ok.json()["new_version"]


def test_reload_takes_force_in_a_json_body_too(client):
    """`{"force": true}` reopens the unchanged build as `?force=true` does; it was ignored before (the
    build stayed, `reloaded: false`). A misspelt or mistyped field is a 422 naming it."""
    admin = {"X-API-Key": ADMIN_KEY}
    client.post("/v1/admin/reload", headers=admin)  # another module's published build, if any, taken up first
    assert client.post("/v1/admin/reload", headers=admin, json={}).json()["reloaded"] is False
    forced = client.post("/v1/admin/reload", headers=admin, json={"force": True})
    assert forced.status_code == 200 and forced.json()["reloaded"] is True, forced.text
    for body, field in (({"forse": True}, "forse"), ({"force": "yes"}, "force")):
        r = client.post("/v1/admin/reload", headers=admin, json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text


def test_request_id_header_and_access_log(client):
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logger = logging.getLogger("drsearch.access")
    logger.addHandler(handler)
    try:
        r = client.get("/healthz", headers={"X-Request-ID": "trace-123"})
        s = client.post("/v1/search", json={"queries": [Q1, Q2], "k": 2, "mode": "bm25"})
        # The server logs from its own thread, possibly just after the client has the response.
        wanted = {"trace-123", s.json()["request_id"]}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not wanted <= {json.loads(x.getMessage())["request_id"] for x in records}:
            time.sleep(0.01)
    finally:
        logger.removeHandler(handler)
    assert r.headers["x-request-id"] == "trace-123"
    lines = [json.loads(rec.getMessage()) for rec in records]
    health = next(x for x in lines if x["request_id"] == "trace-123")
    assert health["path"] == "/healthz" and health["status"] == 200 and health["method"] == "GET"
    entry = next(x for x in lines if x["request_id"] == s.json()["request_id"])
    assert entry["n_queries"] == 2 and entry["mode"] == "bm25" and entry["cache"] in ("hit", "miss")
    assert {"ts", "ms", "status", "path"} <= set(entry)
