"""The server's logs as an operator reads them: an error logged on the server names the request it
came from (the id of its access log line and of the client's `X-Request-ID`). Real server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from tests.service.conftest import LiveServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server(tiny_bm25_root) -> Iterator[LiveServer]:
    srv = start_server(index=tiny_bm25_root, threads=2, warmup=False)
    yield srv
    srv.stop()


@pytest.fixture
def logs() -> Iterator[Collect]:
    handler = Collect()
    loggers = [logging.getLogger(name) for name in ("drsearch.access", "drsearch.service")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def access_line(logs: Collect, request_id: str) -> dict:
    """The access log line of `request_id` (the server logs it from its own thread, maybe just after answering)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for rec in list(logs.records):
            if rec.name == "drsearch.access" and json.loads(rec.getMessage())["request_id"] == request_id:
                return json.loads(rec.getMessage())
        time.sleep(0.01)
    raise AssertionError(f"no access log line for {request_id}")


def test_a_server_error_is_logged_with_its_request_id(server, logs):
    snap = server.app.state.svc.index.current

    def fails(doc_id):
        raise RuntimeError("simulated bug")

    snap.pipeline.document = fails
    try:
        with server.client() as c:
            r = c.get("/v1/documents/volcano", headers={"X-Request-ID": "trace-500"})
    finally:
        del snap.pipeline.document
    assert r.status_code == 500 and r.headers["x-request-id"] == "trace-500"
    assert access_line(logs, "trace-500")["status"] == 500
    (error,) = [rec for rec in logs.records if rec.name == "drsearch.service" and rec.levelno == logging.ERROR]
    assert "trace-500" in error.getMessage() and "simulated bug" in str(error.exc_info[1])


def test_a_request_cancelled_by_the_drain_timeout_gets_a_json_503_and_no_traceback(tiny_bm25_root, logs):
    """A request still running when the drain after SIGTERM runs out (here one whose body never
    arrives) is answered 503 in the API's error shape and logged as such, not as a 500 with a traceback."""
    import socket

    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(logs)
    srv = start_server(index=tiny_bm25_root, threads=2, warmup=False, drain_timeout_s=1)
    try:
        host, port = srv.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            # a percent-encoded newline in the path decoded into the warning and forged a log line of its own
            sock.sendall(b"POST /v1/search%0A2026-12-07%20CRITICAL%20forged HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\nX-Request-ID: drained-1\r\n\r\n{\"query\":")  # fmt: skip
            time.sleep(0.3)  # the request is in the app, reading its body
            srv.stop()
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    finally:
        uvicorn_log.removeHandler(logs)
        srv.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), answer
    assert b"x-request-id: drained-1" in head.lower()
    assert json.loads(body)["error"]["code"] == "unavailable"
    assert access_line(logs, "drained-1")["status"] == 503
    assert not [rec for rec in logs.records if rec.exc_info], [rec.getMessage() for rec in logs.records if rec.exc_info]
    (warning,) = [rec.getMessage() for rec in logs.records if "drain timeout" in rec.getMessage()]
    assert "\n" not in warning and "/v1/search\\n2026-12-07 CRITICAL forged" in warning


@pytest.mark.parametrize(("sent", "kept"), [
    (b"trace-1.a_b", True), (b"x" * 64, True), (b"x" * 65, False), (b"a b", False),
    (b"req\xe9id", False), (b"id\xb2", False), (b"\xaa", False),  # Latin-1 letters: sent back as other (UTF-8) bytes
])  # fmt: skip
def test_a_request_id_is_kept_only_when_it_can_come_back_byte_for_byte(sent, kept):
    from service.middleware import _request_id

    got = _request_id({"headers": [(b"x-request-id", sent)]})
    assert (got == sent.decode("latin-1")) is kept and got.isascii() and len(got) <= 64


def test_the_manifest_shown_to_clients_names_files_not_paths():
    from service.index_state import public_manifest

    shown = public_manifest({"corpus": {"paths": ["/data/my docs/corpus.jsonl"]}, "counts": {"bad_lines": [
        "/data/my docs/corpus.jsonl:21: field 'published' is not an ISO date (...): '01/12/2024'"]}})  # fmt: skip
    assert shown == {"corpus": {"paths": ["corpus.jsonl"]}, "counts": {"bad_lines": [
        "corpus.jsonl:21: field 'published' is not an ISO date (...): '01/12/2024'"]}}  # was cut at its last /: "2024'"


def test_a_refused_admin_reload_is_logged(tiny_bm25_root, tmp_path, logs):
    """The watcher logs a build it refuses; an admin reload of one is logged the same way, with its request id."""
    import shutil

    from indexer import layout
    from tests.service.conftest import ADMIN_KEY, new_version

    root = tmp_path / "index"
    shutil.copytree(tiny_bm25_root, root, symlinks=True)
    srv = start_server(index=root, admin_key=ADMIN_KEY, threads=2, warmup=False)
    try:
        new_version(root)
        (layout.resolve_build(root) / layout.MANIFEST).write_text("{not json", encoding="utf-8")
        with srv.client() as c:
            r = c.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": "reload-1"})
    finally:
        srv.stop()
    assert r.status_code == 409 and r.json()["error"]["code"] == "index_invalid"
    warnings = [rec.getMessage() for rec in logs.records if rec.name == "drsearch.service" and rec.levelno == logging.WARNING]
    assert any("refused" in line and "manifest" in line and "reload-1" in line for line in warnings), warnings


def test_access_time_is_one_reading_in_utc_to_the_millisecond():
    from service.middleware import access_time

    assert access_time(1764979199.9996) == "2025-12-05T23:59:59.999Z"  # the last millisecond of a day stays in it
    assert access_time(1764979200.0) == "2025-12-06T00:00:00.000Z"
    assert access_time(0.042) == "1970-01-01T00:00:00.042Z"


def test_a_refused_mcp_host_or_origin_header_is_not_logged(server, logs):
    """The MCP SDK logged the refused header's value (a 3,000-character Host header in full), bare and
    without a request id; the refusal is in the access log, which names no header."""
    sdk = Collect()
    logging.getLogger("mcp").addHandler(sdk)
    try:
        with server.client() as c:
            r = c.post("/mcp", headers={"Origin": "http://attacker.example/SECRET-ORIGIN", "X-Request-ID": "mcp-origin",
                                        "Accept": "application/json, text/event-stream"},
                       json={"jsonrpc": "2.0", "id": 1, "method": "ping"})  # fmt: skip
    finally:
        logging.getLogger("mcp").removeHandler(sdk)
    assert r.status_code == 403, r.text
    assert access_line(logs, "mcp-origin")["status"] == 403
    assert not [rec.getMessage() for rec in sdk.records if "SECRET-ORIGIN" in rec.getMessage()]
