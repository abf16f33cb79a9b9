"""Slow and disconnecting clients do not block others, and the in-flight gauge follows requests."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.service.test_api import metric

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

Q = "boundary layer transition on a flat plate at supersonic speed"


def open_post(base_url: str, body: bytes, sent: int) -> socket.socket:
    """A raw connection that has sent a search request's headers and the first `sent` bytes of its body."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    head = (f"POST /v1/search HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    sock.sendall(head + body[:sent])
    return sock


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(status line + headers, body) of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the response headers: {data!r}"
        data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(payload) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the whole response body"
        payload += chunk
    return head, payload


def inflight(client) -> float:
    return metric(client, "drsearch_inflight_requests")


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_slow_and_disconnecting_clients_do_not_block_others(live, client):
    body = json.dumps({"query": Q, "k": 3, "mode": "bm25"}).encode()
    assert wait_for(lambda: inflight(client) == 1)  # only the scrape itself
    stalled = open_post(live.base_url, body, 5)  # then sends nothing
    trickler = open_post(live.base_url, body, 1)
    stop = threading.Event()

    def trickle() -> None:  # one byte every 50 ms, most of the body still to come while others search
        for i in range(1, len(body)):
            if stop.wait(0.05):
                return
            trickler.sendall(body[i : i + 1])

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        dropped = open_post(live.base_url, body, len(body) // 2)
        dropped.close()  # gone mid-body
        assert wait_for(lambda: inflight(client) >= 3)  # the stalled, the trickling and the scrape

        for k in (2, 4, 6):  # other clients are served meanwhile: while the trickling client is still sending
            r = client.post("/v1/search", json={"query": Q, "k": k})
            assert r.status_code == 200 and len(r.json()["results"][0]["hits"]) == k
        assert thread.is_alive(), "the trickling client finished before the others were answered: nothing was shown"
    finally:
        stop.set()
        thread.join(timeout=10)
        stalled.close()
        trickler.close()  # cut short

    assert wait_for(lambda: inflight(client) == 1)  # every abandoned request has ended
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    r = client.post("/v1/search", json={"query": Q, "k": 3})
    assert r.status_code == 200 and len(r.json()["results"][0]["hits"]) == 3
    assert metric(client, "drsearch_http_requests_total", 'endpoint="/v1/search",method="POST",status="499"') >= 3


def test_a_trickled_request_is_answered(live):
    body = json.dumps({"query": Q, "k": 2, "mode": "bm25"}).encode()
    sock = open_post(live.base_url, body, 0)
    with sock:
        for i in range(0, len(body), 8):
            time.sleep(0.02)
            sock.sendall(body[i : i + 8])
        head, payload = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert len(json.loads(payload)["results"][0]["hits"]) == 2
