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
            sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
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
