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
