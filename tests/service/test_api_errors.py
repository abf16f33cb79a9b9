"""Bad input always ends as a 4xx with `{"error": {"code", "message", "field"}}`, never a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.service.conftest import start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OK = "pressure distribution on a wing"


def assert_error(r, status: int, code: str | None = None, field: str | None = "__any__"):
    from tests.service.test_api_edges import api_error

    assert r.status_code == status, (r.status_code, r.text)
    err = api_error(r.json())
    if code is not None:
        assert err["code"] == code, err
    if field != "__any__":
        assert err["field"] == field, err
    return err


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"queries": "not a list"}, 422, "invalid_request", "queries"),
        ({"query": 5}, 422, "invalid_request", "query"),
        ({"query": OK, "k": "ten"}, 422, "invalid_request", "k"),
        ({"query": OK, "k": 0}, 422, "invalid_request", "k"),
        ({"query": OK, "k": 101}, 422, "invalid_request", "k"),
        ({"query": OK, "k": 2.5}, 422, "invalid_request", "k"),
        ({"query": OK, "colour": "red"}, 422, "invalid_request", "colour"),
        ({}, 422, "invalid_request", "queries"),
        ({"query": OK, "queries": [OK]}, 422, "invalid_request", "queries"),
        ({"queries": []}, 422, "invalid_request", "queries"),
        ({"queries": [OK] * 65}, 422, "invalid_request", "queries"),
        ({"query": OK, "mode": "semantic"}, 422, "invalid_request", "mode"),
        ({"query": OK, "min_tier": 4}, 422, "invalid_request", "min_tier"),
        ({"query": OK, "min_tier": 0}, 422, "invalid_request", "min_tier"),
        ({"query": OK, "published_after": "last year"}, 422, "invalid_request", "published_after"),
        ({"query": OK, "published_before": "2020-1-1"}, 422, "invalid_request", "published_before"),
        ({"query": OK, "snippet_chars": 10}, 422, "invalid_request", "snippet_chars"),
        ({"query": OK, "per_doc": -1}, 422, "invalid_request", "per_doc"),
        ({"query": OK, "max_per_domain": 0}, 422, "invalid_request", "max_per_domain"),
        ({"query": OK, "return_text": "maybe"}, 422, "invalid_request", "return_text"),
        # JSON types as documented: no bool for a number, no string for a number or a bool
        ({"query": OK, "k": True}, 422, "invalid_request", "k"),
        ({"query": OK, "k": "5"}, 422, "invalid_request", "k"),
        ({"query": OK, "offset": False}, 422, "invalid_request", "offset"),
        ({"query": OK, "min_tier": "2"}, 422, "invalid_request", "min_tier"),
        ({"query": OK, "return_text": 1}, 422, "invalid_request", "return_text"),
        ({"query": OK, "dedupe_across_queries": "true"}, 422, "invalid_request", "dedupe_across_queries"),
        ({"query": OK, "include_undated": "yes"}, 422, "invalid_request", "include_undated"),
        ({"query": ""}, 400, "invalid_query", "query"),
        ({"query": "   \n\t "}, 400, "invalid_query", "query"),
        ({"queries": [OK, " "]}, 400, "invalid_query", "queries[1]"),
        ({"query": "x" * 10_001}, 400, "invalid_query", "query"),
        ({"query": "?!? ..."}, 400, "invalid_query", "query"),
        ({"query": "the of and", "mode": "bm25"}, 400, "invalid_query", "query"),
        ({"queries": ["the of and"], "mode": "bm25"}, 400, "invalid_query", "queries[0]"),  # the field as sent
        ({"queries": ["the of and"]}, 400, "invalid_query", "queries[0]"),
        ({"query": OK, "categories": ["astrology"]}, 400, "invalid_query", "categories"),
        ({"queries": [OK, OK], "offset": 5, "dedupe_across_queries": True}, 400, "invalid_query", "offset"),
        ({"query": OK, "include_domains": ["  "]}, 400, "invalid_query", "include_domains"),
        ({"query": OK, "exclude_domains": ["two words.com"]}, 400, "invalid_query", "exclude_domains"),
    ],
)
def test_bad_search_bodies(client, body, status, code, field):
    assert_error(client.post("/v1/search", json=body), status, code, field)


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/v1/search", {"queries": []}, "queries: must have at least 1 item, not 0"),
    ("/v1/search", {"queries": [OK] * 65}, "queries: must have at most 64 items, not 65"),
    ("/v1/search", {"query": OK, "include_domains": ["a.org"] * 1001}, "include_domains: must have at most 1000 items, not 1001"),
    ("/v1/fetch", {"items": [{"doc_id": ""}]}, "items[0].doc_id: must not be empty"),
    ("/v1/fetch", {"items": [{"url": "http://a.org/" + "x" * 4096}]}, "items[0].url: must have at most 4096 characters, not 4109"),
])  # fmt: skip
def test_length_limits_are_told_in_the_apis_words(client, path, body, message):
    """Lists are counted in items and text in characters, whatever pydantic's type behind them."""
    assert assert_error(client.post(path, json=body), 422, "invalid_request")["message"] == message


@pytest.mark.parametrize(("path", "body", "field"), [
    # /retrieve reads its fields laxly, as Search-R1's own model does (tests/service/test_search_r1.py), still not any value
    ("/retrieve", {"queries": ["lava"], "topk": "three"}, "topk"),
    ("/retrieve", {"queries": ["lava"], "return_scores": "maybe"}, "return_scores"),
    ("/v1/fetch", {"items": [{"doc_id": "d1", "max_chars": True}]}, "items[0].max_chars"),
])
def test_a_number_or_flag_of_another_json_type_is_a_422_naming_it(client, path, body, field):
    assert_error(client.post(path, json=body), 422, "invalid_request", field)


def test_a_whole_number_written_with_a_fraction_is_read_as_an_integer(client):
    """JSON Schema's "integer" (the tool schema's type) admits 5.0, and clients whose function-call
    arguments arrive as floats send it: every count was a 422."""
    counts = {"k": 3, "offset": 1, "snippet_chars": 80, "max_per_domain": 2, "per_doc": 1,
              "timeout_ms": 60_000, "max_chars_per_hit": 500, "max_total_chars": 5_000}  # fmt: skip
    for sent in (counts, {"min_tier": 3}):
        as_int = client.post("/v1/search", json={"query": OK, **sent})
        as_float = client.post("/v1/search", json={"query": OK, **{name: float(v) for name, v in sent.items()}})
        assert as_int.status_code == as_float.status_code == 200, as_float.text
        assert as_float.json()["results"] == as_int.json()["results"]
    r = client.post("/v1/fetch", json={"items": [{"doc_id": "1", "max_chars": 300.0}]})
    assert r.status_code == 200 and len(r.json()["results"][0]["text"]) <= 300, r.text




def test_query_of_exactly_max_chars_is_fine(client):
    text = ("wing " * 2000)[:10_000]
    assert client.post("/v1/search", json={"query": text, "k": 1}).status_code == 200
    padded = "  " + text + "  "  # surrounding whitespace does not count
    assert client.post("/v1/search", json={"query": padded, "k": 1}).status_code == 200
    r = client.post("/v1/search", json={"queries": ["wing", text + " x"], "k": 1})
    assert assert_error(r, 400, "invalid_query", "queries[1]")["message"].startswith("query is longer than 10000")


@pytest.mark.parametrize("content", [b'{"queries": [', b"not json", b"", b"[1, 2]", b'"just a string"', b"\xff\xfe"])
def test_invalid_json(client, content):
    r = client.post("/v1/search", content=content, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert_error(r, r.status_code)


def test_wrong_content_type_is_4xx(client):
    r = client.post("/v1/search", content=b"query=wing", headers={"content-type": "application/x-www-form-urlencoded"})
    assert "content-type" in assert_error(r, 415, "unsupported_media_type", None)["message"]
    r = client.post("/v1/search", content=json.dumps({"query": OK}).encode(), headers={"content-type": "text/plain"})
    assert "text/plain" in assert_error(r, 415, "unsupported_media_type", None)["message"]


BODIES = {"/v1/search": {"query": OK, "k": 1}, "/v1/fetch": {"items": [{"doc_id": "1"}]}, "/retrieve": {"queries": [OK]},
          "/mcp": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}  # fmt: skip


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("content_type", ["text/json", "application/jsonx", "application/x-json", "text/plain; charset=utf-8",
                                          "multipart/form-data; boundary=x", "json"])  # fmt: skip
def test_a_json_body_under_another_content_type_is_415(client, path, content_type):
    """Only application/json or a +json type is read as JSON, on every POST endpoint, in the API's error shape."""
    r = client.post(path, content=json.dumps(BODIES[path]).encode(),
                    headers={"content-type": content_type, "accept": "application/json, text/event-stream"})  # fmt: skip
    message = assert_error(r, 415, "unsupported_media_type", None)["message"]
    assert repr(content_type) in message and "\n" not in message, message
    assert ("jsonrpc" in r.json()) == (path == "/mcp")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON",
                                          "application/vnd.drsearch+json", "application/problem+json; charset=UTF-8"])  # fmt: skip
def test_json_content_types_are_read(client, content_type):
    for path in ("/v1/search", "/retrieve"):
        r = client.post(path, content=json.dumps(BODIES[path]).encode(), headers={"content-type": content_type})
        assert r.status_code == 200, (path, r.text)


def test_what_search_r1_and_mcp_clients_send_is_read(client):
    """Search-R1's retriever client posts with `requests.post(url, json=...)`; MCP clients send application/json."""
    import requests

    r = requests.post(f"{client.base_url}/retrieve", json={"queries": [OK], "topk": 3, "return_scores": True}, timeout=60)
    assert r.status_code == 200 and len(r.json()["result"][0]) == 3, r.text
    mcp = client.post("/mcp", json=BODIES["/mcp"], headers={"accept": "application/json, text/event-stream",
                                                            "mcp-protocol-version": "2025-06-18"})  # fmt: skip
    assert mcp.status_code == 200 and [t["name"] for t in mcp.json()["result"]["tools"]] == ["search", "fetch"]


def test_a_post_without_a_body_needs_no_content_type(client):
    from tests.service.conftest import ADMIN_KEY

    r = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})  # what `curl -X POST` sends: no body, no type
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("content", [b'{"query": "caf\xe9"}', b'{"a":' * 5000 + b"1" + b"}" * 5000])
def test_a_body_json_cannot_read_is_invalid_json(client, content):
    """Bytes that are not UTF-8, or nesting past the parser's depth: the body is not JSON it can use."""
    r = client.post("/v1/search", content=content, headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_json", None)


def test_invalid_json_says_where_and_why(client):
    r = client.post("/v1/search", content=b'{"query": "wing",\n  "k": }', headers={"content-type": "application/json"})
    message = assert_error(r, 400, "invalid_json", None)["message"]
    assert "line 2 column 8 (char 25)" in message and "Expecting value" in message and "\n" not in message, message
    r = client.post("/v1/search", content=b'{"query": "wing', headers={"content-type": "application/json"})  # cut short
    message = assert_error(r, 400, "invalid_json", None)["message"]
    assert message.endswith("Unterminated string starting at line 1 column 11 (char 10)"), message
    r = client.post("/v1/search", content=b'{"query": "caf\xe9"}', headers={"content-type": "application/json"})
    message = assert_error(r, 400, "invalid_json", None)["message"]
    assert "UTF-8" in message and "byte 14" in message and "0xe9" in message, message
    r = client.post("/v1/search", content=b'{"a":' * 5000 + b"1" + b"}" * 5000, headers={"content-type": "application/json"})
    assert "nested" in assert_error(r, 400, "invalid_json", None)["message"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_a_utf16_or_utf32_body_is_refused(client, encoding):
    """JSON over HTTP is UTF-8 (RFC 8259): a body in UTF-16 or UTF-32, with a byte order mark or without,
    is refused saying so, not decoded by guesswork."""
    for path, body in (("/v1/search", {"query": OK, "k": 1}), ("/retrieve", {"queries": [OK]})):
        r = client.post(path, content=json.dumps(body).encode(encoding), headers={"content-type": "application/json"})
        message = assert_error(r, 400, "invalid_json", None)["message"]
        assert encoding[:6].upper() in message and "UTF-8" in message, message


def test_an_integer_too_long_to_convert_is_invalid_json(client):
    """Python refuses to convert an integer literal of more than 4300 digits: a 400, not a 500."""
    digits = b"9" * 5000
    for path, content in (("/v1/search", b'{"query": "wing", "k": ' + digits + b"}"),
                          ("/retrieve", b'{"queries": ["wing"], "topk": ' + digits + b"}")):  # fmt: skip
        r = client.post(path, content=content, headers={"content-type": "application/json"})
        message = assert_error(r, 400, "invalid_json", None)["message"]
        assert "4300 digits" in message and "char " in message and len(message) < 300, message


def test_an_empty_body_says_so(client):
    r = client.post("/v1/search", content=b"", headers={"content-type": "application/json"})
    assert "empty" in assert_error(r, 422, "invalid_request", None)["message"]


def test_oversized_body_by_content_length(client):
    big = json.dumps({"query": OK, "include_domains": ["a" * 100] * 11_000}).encode()
    assert len(big) > 1 << 20
    assert_error(client.post("/v1/search", content=big, headers={"content-type": "application/json"}), 413, "payload_too_large")


def test_oversized_body_streamed_without_length(client):
    def chunks():
        yield b'{"query": "wing", "include_domains": ['
        for _ in range(1100):
            yield b'"' + b"a" * 1000 + b'",'
        yield b'"b"]}'

    r = client.post("/v1/search", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")


def test_wrong_method_and_unknown_path(client):
    assert_error(client.get("/v1/search"), 405, "method_not_allowed")
    assert_error(client.get("/v2/nothing"), 404, "not_found")


@pytest.fixture(scope="module")
def bm25_only(tiny_bm25_root) -> Iterator[httpx.Client]:
    """A live server over an index built without the dense leg (`index build --no-dense`)."""
    srv = start_server(index=tiny_bm25_root, threads=2)
    try:
        with srv.client() as c:
            yield c
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_dense_modes_on_a_bm25_only_index_are_4xx(bm25_only, mode):
    """Options the served index cannot honour are the caller's problem (4xx), not a server error."""
    err = assert_error(bm25_only.post("/v1/search", json={"query": "lava from a volcano", "mode": mode}),
                       400, "unsupported_by_index", "mode")  # fmt: skip
    assert "dense" in err["message"]


def test_a_bm25_only_index_serves_bm25_by_default(bm25_only):
    info = bm25_only.get("/v1/index").json()
    assert info["has_dense"] is False and info["default_mode"] == "bm25"
    r = bm25_only.post("/v1/search", json={"query": "lava from a volcano", "k": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "bm25" and body["results"][0]["hits"][0]["doc_id"] == "volcano"


def test_unexpected_exception_is_json_500_and_logged(client, live, caplog):
    snap = live.app.state.svc.index.current

    def boom(doc_id):
        raise RuntimeError("simulated bug")

    snap.pipeline.document = boom
    try:
        with caplog.at_level(logging.ERROR, logger="drsearch.service"):
            logging.getLogger("drsearch.service").addHandler(caplog.handler)
            try:
                r = client.get("/v1/documents/1")
            finally:
                logging.getLogger("drsearch.service").removeHandler(caplog.handler)
        err = assert_error(r, 500, "internal_error", None)
        assert "simulated" not in err["message"]  # no internals leak to the client
        assert any(rec.exc_info and "simulated bug" in str(rec.exc_info[1]) for rec in caplog.records)
    finally:
        del snap.pipeline.document
    assert client.get("/v1/documents/1").status_code == 200


def test_bad_call_in_a_batch_does_not_fail_its_neighbours(client):
    """Calls merged by the micro-batcher: a stopword-only query fails alone."""
    good = {"query": "heat transfer in laminar flow", "mode": "bm25", "k": 3}
    bad = {"query": "the of and", "mode": "bm25", "k": 3}
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client.post, "/v1/search", json=dict(good if i % 2 else bad, snippet_chars=40 + i))
                   for i in range(16)]  # fmt: skip
        responses = [f.result() for f in futures]
    for i, r in enumerate(responses):
        if i % 2:
            assert r.status_code == 200 and len(r.json()["results"][0]["hits"]) == 3
        else:
            assert_error(r, 400, "invalid_query", "query")


LONG = "x\n\x1b" + "y" * 5000  # a control character and a newline, then far more than any message should hold


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/search", {"query": OK, "include_domains": [LONG]}),
    ("POST", "/v1/search", {"query": OK, "exclude_domains": ["ok.org", LONG]}),
    ("POST", "/v1/search", {"query": OK, "categories": [LONG]}),
    ("POST", "/v1/search", {"query": OK, "languages": [LONG]}),
    ("POST", "/v1/search", {"query": OK, "countries": [LONG]}),
    ("POST", "/v1/search", {"query": OK, LONG: 1}),  # an unknown field's name
    ("POST", "/v1/fetch", {"items": [{"doc_id": LONG[:900]}]}),  # doc_id's own cap is 1000
    ("POST", "/v1/fetch", {"items": [{"url": "gopher" * 300 + "://example.org/"}]}),
    ("POST", "/v1/fetch", {"items": [{"url": "http://example.org:" + "9" * 3000 + "x/"}]}),
    ("GET", "/v1/documents/" + "d" * 5000, None),
    ("GET", "/v1/passages/" + "p" * 5000, None),
    ("GET", "/ui/" + "a" * 3000 + ".js", None),
])  # fmt: skip
def test_echoed_client_text_is_cut_and_escaped(client, method, path, body):
    """An error message quotes what the client sent at most 100 characters long, marked as cut, with
    control characters escaped: one short line, however long or strange the text."""
    r = client.request(method, path, json=body)
    assert 400 <= r.status_code < 500, r.text
    message = r.json()["error"]["message"]
    assert len(message) < 400 and "\n" not in message and "\x1b" not in message, message
    assert "…" in message and "y" * 101 not in message and "9" * 101 not in message, message
    assert "characters)" in message, message


def test_echoed_text_in_a_fetch_failure_and_a_content_type_is_cut(client):
    host = ".".join(["h" * 60] * 3) + ".example.org"  # a DNS name (labels of at most 63) of 194 characters
    r = client.post("/v1/fetch", json={"items": [{"url": f"http://{host}/page"}]})
    assert r.status_code == 200, r.text
    (item,) = r.json()["results"]
    assert item["error"]["code"] == "host_not_allowed" and len(item["error"]["message"]) < 300, item
    assert "…" in item["error"]["message"] and "h" * 101 not in item["error"]["message"]
    r = client.post("/v1/search", content=b"{}", headers={"content-type": "text/" + "z" * 3000})
    message = assert_error(r, 415, "unsupported_media_type", None)["message"]
    assert len(message) < 400 and "…" in message and "z" * 101 not in message, message
