"""Hostile edges of the HTTP layer (issue 16): every error is JSON, labels stay bounded, slow clients
are timed out, keys are checked before a body is read. A real server on 127.0.0.1 over a tiny BM25 index."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import drsearch
from tests.service.conftest import LiveServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

KEY = "edge-key-for-tests"
AUTH = {"X-API-Key": KEY}
Q = "lava from a volcano"
TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def edge(tiny_bm25_root) -> Iterator[LiveServer]:
    srv = start_server(index=tiny_bm25_root, api_key=KEY, admin_key="admin-edge", threads=2, header_timeout_s=TIMEOUT_S,
                       body_timeout_s=TIMEOUT_S, idle_timeout_s=TIMEOUT_S)  # fmt: skip
    yield srv
    srv.stop()


def raw(srv: LiveServer, data: bytes, *, wait_s: float = 5.0) -> bytes:
    """Send `data` on a fresh connection; return everything the server sends until it closes (a server
    that never closes fails the read after `wait_s`)."""
    host, port = srv.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def json_error(response: bytes, status: int) -> dict:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), response[:300]
    assert b"content-type: application/json" in head.lower(), head
    return api_error(json.loads(body))


def api_error(body: dict) -> dict:
    """The API's error object of a response body; on `/mcp`, of the JSON-RPC error it is written as."""
    err = body["error"]
    if "jsonrpc" in body:
        assert body["id"] is None and isinstance(err["code"], int) and set(err["data"]) == {"code", "field"}, body
        err = {"code": err["data"]["code"], "message": err["message"], "field": err["data"]["field"]}
    assert set(err) == {"code", "message", "field"} and err["message"]
    return err


def post(srv: LiveServer, body: dict, headers: dict | None = None, path: str = "/v1/search"):
    """POST `body` as ASCII JSON: a lone surrogate travels as its escape, as a hostile client would send it."""
    with srv.client() as c:
        return c.post(path, content=json.dumps(body).encode(),
                      headers={"content-type": "application/json", **(headers if headers is not None else AUTH)})  # fmt: skip


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "smoking \ud800 heart"}, "query"),
    ({"queries": [Q, "smoking \udfff heart"]}, "queries[1]"),
    ({"query": Q, "categories": ["smoking \ud800 heart"]}, "categories[0]"),
    ({"query": Q, "include_domains": ["\ud800.org"]}, "include_domains[0]"),
    ({"query": Q, "\ud800": 1}, None),  # a surrogate in a field name
])  # fmt: skip
def test_lone_surrogates_are_422_json(edge, body, field):
    r = post(edge, body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and err["field"] == field, err
    assert "lone UTF-16 surrogate at character" in err["message"], err


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/search", {"queries": [Q, Q, Q, "smoking \ud800 heart"]}, "queries[3]"),
    ("/v1/search", {"query": Q, "exclude_domains": ["a.org", "\udc00.org"]}, "exclude_domains[1]"),
    ("/v1/search", {"query": Q, "languages": ["en", "e\ud800"]}, "languages[1]"),
    ("/v1/search", {"query": Q, "countries": ["\ud800"]}, "countries[0]"),
    ("/v1/fetch", {"items": [{"doc_id": "volcano"}, {"doc_id": "x\ud800"}]}, "items[1].doc_id"),
    ("/v1/fetch", {"items": [{"doc_id": "volcano", "query": "lava \ud800"}]}, "items[0].query"),
    ("/v1/fetch", {"items": [{"url": "http://example.org/\ud800"}]}, "items[0].url"),
    ("/retrieve", {"queries": ["lava", "a", "b", "x\ud800"]}, "queries[3]"),
    ("/v1/search", {"query": Q, "mode": "hy\ud800brid"}, "mode"),  # fields of library types, not our strings
    ("/v1/search", {"query": Q, "time_range": "day", "now": "\ud800"}, "now"),
    ("/v1/fetch", {"items": [{"doc_id": "volcano", "\ud800": 1}]}, "items[0]"),  # a field name in an item
])  # fmt: skip
def test_a_lone_surrogate_is_a_422_naming_the_field_and_its_index(edge, path, body, field):
    """On every endpoint, whatever the field: never a 500 further down (SQLite, JNI, a UTF-8 response)."""
    r = post(edge, body, path=path)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and err["field"] == field, err
    assert err["message"].startswith(f"{field}: ") and "lone UTF-16 surrogate" in err["message"], err


def test_a_lone_surrogate_over_mcp(edge):
    """MCP over HTTP: the SDK refuses the JSON-RPC message itself (a 4xx parse error, not a 500); a tool
    call handed arguments with one (in-process) names the field and index, as the HTTP API does."""
    from pydantic import ValidationError

    from service.api_models import SearchRequest
    from service.fetch import FetchRequest
    from service.mcp_server import _invalid_arguments

    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "search", "arguments": {"queries": [Q, "x\ud800"]}}}  # fmt: skip
    r = post(edge, call, headers={**AUTH, "accept": "application/json, text/event-stream"}, path="/mcp")
    assert r.status_code == 400 and r.json()["error"], r.text
    for model, args, field in ((SearchRequest, {"queries": [Q, Q, Q, "x\ud800"]}, "queries[3]"),
                               (SearchRequest, {"query": Q, "languages": ["\ud800"]}, "languages[0]"),
                               (FetchRequest, {"items": [{"doc_id": "volcano", "query": "\ud800"}]}, "items[0].query")):  # fmt: skip
        with pytest.raises(ValidationError) as exc:
            model.model_validate(args)
        result = _invalid_arguments(exc.value)
        message = result.content[0].text
        assert message.startswith(f"invalid argument {field}: ") and "lone UTF-16 surrogate" in message, message
        assert result.is_error and result.structured_content["error"]["field"] == field


@pytest.mark.parametrize("date", ["2024-02-30", "2023-02-29", "2024-13-01", "2024-00", "0000", "٢٠٢٤", "２０２４-01-01"])
def test_invalid_calendar_dates_are_422(edge, date):
    for name in ("published_after", "published_before"):
        r = post(edge, {"query": Q, name: date})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == name


def test_valid_dates_still_pass(edge):
    r = post(edge, {"query": Q, "published_after": "2024-02-29", "published_before": "2025"})
    assert r.status_code == 200, r.text


def test_method_label_is_bounded(edge):
    for method in ("FOOBAR", "X" * 8000, "BREW"):
        response = raw(edge, f"{method} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert response.startswith(b"HTTP/1.1 405 "), response[:200]
    with edge.client() as c:
        text = c.get("/metrics").text
    methods = set(re.findall(r'drsearch_http_requests_total\{[^}]*method="([^"]*)"', text))
    assert "other" in methods and methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods


@pytest.mark.parametrize("path", ["/v1/search", "/v1/fetch", "/retrieve", "/mcp"])
def test_key_is_checked_before_the_body_is_read(edge, path):
    """The head promises 100 body bytes that never come: the 401 must not wait for them (a server that
    read the body first would answer its body timeout's 408, as the authorised request below gets)."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
    response = raw(edge, head + b'{"query"')
    assert json_error(response, 401)["code"] == "unauthorized"
    assert (b'"jsonrpc"' in response) == (path == "/mcp")  # an MCP client shows a JSON-RPC error's message only
    with_key = head.replace(b"\r\n\r\n", f"\r\nX-API-Key: {KEY}\r\n\r\n".encode(), 1)
    response = raw(edge, with_key + b'{"query"')  # authorised: the server waits for the body, then gives up
    assert json_error(response, 408)["code"] == "request_timeout"


def test_admin_key_checked_before_the_body(edge):
    head = b"POST /v1/admin/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n"
    response = raw(edge, head)
    assert json_error(response, 401)["code"] == "unauthorized"  # not the 408 of waiting for the 50 bytes


def test_slow_request_head_gets_408_and_is_closed(edge):
    response = raw(edge, b"POST /v1/search HTTP/1.1\r\nHost: x\r\n")  # head never finished
    assert json_error(response, 408)["code"] == "request_timeout"  # and closed: raw reads until the server closes


def test_silent_and_idle_connections_are_closed(edge):
    # raw reads until the server closes, and fails past its own 5 s: the server's 0.5 s timeouts close them
    response = raw(edge, b"")  # connects, sends nothing
    assert response == b""
    # one request on a keep-alive connection, then idle
    response = raw(edge, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 ")


def test_broken_framing_is_a_json_400(edge):
    for data in (b"GARBAGE\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
                 b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: \xd9\xa2\r\n\r\n"):  # fmt: skip
        response = raw(edge, data)
        assert json_error(response, 400)["code"] == "bad_request"


@pytest.mark.parametrize("where", ["url", "header"])
def test_a_request_head_over_the_limit_is_a_json_431_saying_so(edge, where):
    """A URL (e.g. the search page's, with long queries) or a header over the limit: 431, not 'malformed'."""
    long = "q=" + "x" * 300_000  # more than one read of the socket, as the limit is checked between reads
    head = (f"GET /?{long} HTTP/1.1\r\nHost: x\r\n\r\n" if where == "url"
            else f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: {long}\r\n\r\n")  # fmt: skip
    response = raw(edge, head.encode())
    err = json_error(response, 431)
    assert err["code"] == "request_head_too_large" and "64 KiB" in err["message"]
    with edge.client() as c:  # the server goes on answering
        assert c.get("/healthz").status_code == 200


def test_index_info_shows_no_absolute_paths(edge, tiny_bm25_root):
    with edge.client() as c:
        info = c.get("/v1/index").json()
        metrics = c.get("/metrics").text
    text = json.dumps(info)
    assert str(tiny_bm25_root.parent) not in text and str(tiny_bm25_root.parent) not in metrics
    strings: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            strings.append(value)

    walk(info)
    assert not [s for s in strings if s.startswith("/")]
    assert info["build_dir"].startswith("builds/") and info["manifest"]["corpus"]["paths"]


def test_empty_api_key_is_a_startup_error(tiny_bm25_root):
    for var in ("DRSEARCH_API_KEY", "DRSEARCH_ADMIN_KEY"):
        proc = drsearch("serve", "--index", tiny_bm25_root, "--port", "0", env={var: ""}, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert var in line and "empty" in line, line


def _request_counts(srv: LiveServer) -> dict[tuple[str, str, str], float]:
    """`drsearch_http_requests_total` as {(endpoint, method, status): count}."""
    with srv.client() as c:
        text = c.get("/metrics").text
    pattern = r'^drsearch_http_requests_total\{endpoint="([^"]*)",method="([^"]*)",status="([^"]*)"\} (\S+)$'
    return {m[:3]: float(m[3]) for m in re.findall(pattern, text, re.M)}


def test_request_metrics_have_the_real_status_and_the_route_template(edge):
    """Every answer is counted under the status it really had and its route template, also the ones the
    middleware answers before any route runs (401, 413, 415), on the app's own routes and on those of an
    included router (`/retrieve`); unknown paths share one label."""
    before = _request_counts(edge)
    with edge.client() as c:
        assert c.post("/v1/search", json={"query": Q, "k": 1}, headers=AUTH).status_code == 200
        assert c.post("/v1/search", json={"query": Q, "k": 0}, headers=AUTH).status_code == 422
        assert c.post("/v1/search", json={"query": Q}).status_code == 401  # refused before routing
        assert c.post("/v1/search", content=b"x" * (1 << 21), headers={**AUTH, "content-type": "application/json"}).status_code == 413
        assert c.get("/v1/documents/no-such-doc", headers=AUTH).status_code == 404
        assert c.post("/retrieve", json={"queries": [Q]}).status_code == 401
        assert c.post("/retrieve", content=b"{}", headers={**AUTH, "content-type": "text/plain"}).status_code == 415
        for i in range(5):
            assert c.get(f"/random-{i}/{'x' * i}").status_code == 404
    after = _request_counts(edge)
    grew = {labels: n - before.get(labels, 0.0) for labels, n in after.items() if n != before.get(labels, 0.0)}
    grew.pop(("/metrics", "GET", "200"), None)
    assert grew == {
        ("/v1/search", "POST", "200"): 1.0, ("/v1/search", "POST", "422"): 1.0, ("/v1/search", "POST", "401"): 1.0,
        ("/v1/search", "POST", "413"): 1.0, ("/v1/documents/{doc_id:path}", "GET", "404"): 1.0,
        ("/retrieve", "POST", "401"): 1.0, ("/retrieve", "POST", "415"): 1.0, ("unmatched", "GET", "404"): 5.0,
    }, grew


def test_mcp_clients_are_told_why_a_request_was_refused(edge):
    """The SDK shows the message of a JSON-RPC error body; for the API's own error shape it showed
    "Server returned an error response", so a missing key or an oversized call went unexplained."""
    import asyncio

    from mcp import Client

    async def list_tools(headers: dict) -> None:
        import httpx2  # the SDK's HTTP client
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        if not headers:  # as docs/API.md shows it
            async with Client(f"{edge.base_url}/mcp") as client:
                await client.list_tools()
        async with httpx2.AsyncClient(headers=headers) as http, streamable_http_client(f"{edge.base_url}/mcp", http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()

    for headers in ({}, {"X-API-Key": "wrong"}):
        with pytest.raises(Exception) as refused:
            asyncio.run(list_tools(headers))
        assert "missing or wrong X-API-Key" in repr(refused.value), repr(refused.value)
    too_big = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "search", "arguments": {"queries": ["wing " * 4000] * 64}}}  # fmt: skip
    r = post(edge, too_big, headers={**AUTH, "accept": "application/json, text/event-stream"}, path="/mcp")
    assert r.status_code == 413 and api_error(r.json())["code"] == "payload_too_large", r.text
    assert r.json()["error"]["code"] == -32600 and "request body exceeds" in r.json()["error"]["message"]
