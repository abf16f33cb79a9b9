"""What the HTTP clients agents use see: clients that half-close after their request, request bodies
under a content coding, HEAD requests, paths with a trailing slash. A real server on 127.0.0.1 over
a tiny BM25 index."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.service.conftest import LiveServer, start_server
from tests.service.test_api import metric
from tests.service.test_api_edges import json_error, raw

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

Q = "lava from a volcano"


@pytest.fixture(scope="module")
def srv(tiny_bm25_root) -> Iterator[LiveServer]:
    server = start_server(index=tiny_bm25_root, threads=2)
    yield server
    server.stop()


def search_request(body: dict, headers: str = "") -> bytes:
    data = json.dumps(body).encode()
    return (f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data  # fmt: skip


def half_closed(srv: LiveServer, data: bytes) -> bytes:
    """Send `data`, close the sending side (shutdown(SHUT_WR), as `nc -N` does), read until the server closes."""
    host, port = srv.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_a_client_that_half_closes_after_its_request_gets_the_answer(srv):
    for i in range(3):  # distinct queries: each one searched (on a thread), none answered from the cache
        response = half_closed(srv, search_request({"query": f"{Q} {i}", "k": 2}))
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nconnection: close" in head.lower(), response[:300]
        assert json.loads(body)["results"][0]["query"] == f"{Q} {i}"


def test_a_client_that_half_closes_mid_body_is_not_waited_for(srv):
    data = search_request({"query": Q})
    assert half_closed(srv, data[:-5]) == b""  # closed at once, nothing to answer
    with srv.client() as c:
        assert c.get("/healthz").status_code == 200


def test_a_request_framed_both_by_length_and_by_chunks_is_the_connections_last(srv):
    """RFC 9112 6.1: h11 reads the body by its chunks, but a proxy in front may have read it by its
    Content-Length and take what follows for another request; the server answers and closes."""
    body = json.dumps({"query": Q, "k": 1}).encode()
    data = (b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")  # fmt: skip
    response = raw(srv, data + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # read until the server closes
    head, _, rest = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nconnection: close" in head.lower(), response[:300]
    assert json.loads(rest)["results"][0]["query"] == Q  # one answer: the request after it was not served


@pytest.mark.parametrize("target", ["http://{host}/healthz", "HTTP://{host}/v1/documents/volcano?x=1", "https://{host}"])
def test_a_request_target_in_absolute_form_is_served_as_its_path(srv, target):
    """RFC 9112 3.2.2: a server must take `GET http://host/path` (the form clients send to a proxy)."""
    host = srv.base_url.removeprefix("http://")
    target = target.format(host=host)
    response = raw(srv, f"GET {target} HTTP/1.1\r\nHost: elsewhere\r\nConnection: close\r\n\r\n".encode())
    path = "/" + target.split("://", 1)[1].partition("/")[2]
    with srv.client() as c:
        expected = c.get(path)
    assert response.startswith(f"HTTP/1.1 {expected.status_code} ".encode()), response[:300]
    assert response.partition(b"\r\n\r\n")[2] == expected.content


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_a_compressed_request_body_is_a_415_naming_the_coding(srv, encoding):
    """Not a misleading 'not valid JSON' (gzip's bytes are not UTF-8), nor a body read as if plain."""
    plain = json.dumps({"query": Q}).encode()
    content = gzip.compress(plain) if encoding == "gzip" else plain
    with srv.client() as c:
        r = c.post("/v1/search", content=content, headers={"content-type": "application/json", "content-encoding": encoding})
        assert r.status_code == 415, r.text
        err = r.json()["error"]
        assert err["code"] == "unsupported_media_type" and err["field"] is None
        assert "content-encoding" in err["message"] and encoding.split(",")[0] in err["message"], err
        assert r.headers["accept-encoding"] == "identity"  # RFC 7694: the codings the server reads
        assert c.post("/v1/search", json={"query": Q}).status_code == 200  # the connection goes on


def test_an_identity_content_encoding_is_read(srv):
    with srv.client() as c:
        r = c.post("/v1/search", json={"query": Q}, headers={"content-encoding": "identity"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/index", "/v1/tool-schema", "/", "/v1/documents/volcano",
                                  "/v1/passages/volcano%230"])  # fmt: skip
def test_head_is_answered_as_get_without_the_body(srv, path):
    """Uptime checks, `curl -I` and link checkers send HEAD; every GET route must take it (RFC 9110)."""
    with srv.client() as c:
        got = c.get(path)
        head = c.head(path)
        assert got.status_code == 200, got.text
        assert head.status_code == 200 and head.content == b"", head
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == got.headers["content-type"]
        assert c.get("/healthz").json() == {"status": "ok"}  # the connection goes on after the bodiless answer


def test_head_of_an_unknown_document_or_a_post_route_keeps_its_error_status(srv):
    with srv.client() as c:
        assert c.head("/v1/documents/no-such-doc").status_code == 404
        r = c.head("/v1/search")
        assert r.status_code == 405 and r.headers["allow"] == "POST"


@pytest.mark.parametrize(("method", "path"), [("POST", "/healthz"), ("OPTIONS", "/v1/documents/volcano"), ("DELETE", "/")])
def test_a_405_on_a_get_route_lists_head_among_the_methods_it_takes(srv, method, path):
    """HEAD is answered on every GET route, so `Allow` names it with GET."""
    with srv.client() as c:
        r = c.request(method, path)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed", r.text
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == ["GET", "HEAD"], r.headers


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/search/"), ("GET", "/healthz/"), ("GET", "/v1/index//"),
                                              ("HEAD", "/readyz/")])  # fmt: skip
def test_a_path_with_a_trailing_slash_is_answered_as_the_path_without_it(srv, method, path):
    """Not a bodiless 307 to an address built from the Host header: clients that do not follow redirects
    (httpx, curl, urllib for a POST) got an empty body, and one behind a TLS proxy a redirect to http://."""
    with srv.client() as c:
        r = c.request(method, path, json={"query": Q} if method == "POST" else None, headers={"host": "proxy.example"})
        expected = c.request(method, path.rstrip("/"), json={"query": Q} if method == "POST" else None)
    assert r.status_code == 200 and "location" not in r.headers, r
    if method == "POST":  # took_ms differs
        assert r.json()["results"] == expected.json()["results"]
    else:
        assert r.headers["content-length"] == expected.headers["content-length"]


def test_an_unknown_path_is_a_404_naming_it(srv):
    with srv.client() as c:
        for path in ("/v2/search", "/v2/search/"):
            r = c.get(path)
            assert r.status_code == 404 and repr(path) in r.json()["error"]["message"], r.text
        r = c.get("/v1/documents/volcano/")  # a document id may end in a slash: not another document's
        assert r.status_code == 404 and "'volcano/'" in r.json()["error"]["message"], r.text
    err = json_error(raw(srv, b"GET //healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 404)
    assert "'//healthz'" in err["message"], err


def test_head_and_trailing_slash_requests_are_counted_under_their_route(srv):
    labels = 'endpoint="/readyz",method="HEAD",status="200"'
    with srv.client() as c:
        before = metric(c, "drsearch_http_requests_total", labels)
        assert c.head("/readyz/").status_code == 200
        assert metric(c, "drsearch_http_requests_total", labels) == before + 1


@pytest.fixture(scope="module")
def keyed(tiny_bm25_root) -> Iterator[LiveServer]:
    server = start_server(index=tiny_bm25_root, threads=2, api_key="http-clients-key")
    yield server
    server.stop()


def test_a_refused_request_whose_body_is_still_arriving_gets_its_answer(keyed):
    """The 401 is sent before the body is read and closes the connection. Closed with the body still
    arriving, the kernel resets the connection, and a client still sending (urllib, for a body near
    1 MiB) saw 'Broken pipe' or 'Connection reset', never the 401: what arrives is read and dropped first."""
    body = b'{"query": "' + b"x" * (8 << 20) + b'"}'
    head = (f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    host, port = keyed.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert json_error(out, 401)["code"] == "unauthorized"


def test_refused_urllib_posts_get_the_401_and_the_server_logs_no_error(keyed):
    """urllib sends head and body in one write, near 1 MiB here, and drops the connection once it has
    read the 401's head. The server closing its side must not fail (it raised ENOTCONN, logged with
    a traceback as an 'unhandled error')."""
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "drsearch.service")]
    for logger in loggers:
        logger.addHandler(handler)
    body = json.dumps({"query": "x" * 900_000}).encode()
    try:
        for _ in range(10):
            request = urllib.request.Request(keyed.base_url + "/v1/search", data=body, headers={"content-type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 401
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert not errors, [record.getMessage() for record in errors]


def test_an_answer_after_which_the_server_closes_says_connection_close(tiny_bm25_root):
    """A request in flight when shutdown begins gets its answer and then the connection is closed: the
    answer must say so, or a keep-alive client (a connection pool) sends its next request into a closing
    connection and, for a POST, gets an error rather than a retry on a new one."""
    server = start_server(index=tiny_bm25_root, threads=2)
    try:
        host, port = server.base_url.removeprefix("http://").split(":")
        data = search_request({"query": Q})
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(data[:-3])  # in flight: the body still incomplete
            server.server.should_exit = True
            deadline = time.monotonic() + 10  # the listener closes in the step that shuts the open connections down
            while time.monotonic() < deadline:
                try:
                    socket.create_connection((host, int(port)), timeout=1).close()
                except ConnectionRefusedError:
                    break
                time.sleep(0.02)
            sock.sendall(data[-3:])
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
        head = out.partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 200 ") and b"\r\nconnection: close" in head, out[:400]
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/v1/search/", "/v1/fetch//"])
def test_the_key_is_checked_before_the_body_under_a_trailing_slash_too(keyed, path):
    """The head promises 100 body bytes that never come: the 401 must not wait for them."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode()
    assert json_error(raw(keyed, head + b'{"query"'), 401)["code"] == "unauthorized"
