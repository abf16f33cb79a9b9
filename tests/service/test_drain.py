"""Draining on shutdown: a connection the server accepts as it begins to shut down is not left open.

uvicorn asks the connections it holds to close when it shuts down, but one accepted in the same
event-loop turn is set up a turn later, after that round, and kept its keep-alive: a client
reusing it kept the worker draining for as long as it sent requests (`serve --workers 2` hung on
SIGTERM under load). A real uvicorn server with the service's protocol, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvicorn

from service.http_protocol import GuardedH11Protocol

pytestmark = pytest.mark.timeout(60)


async def ok_app(scope, receive, send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def keep_asking(sock: socket.socket, answers: list[bytes], until: float) -> str:
    """Send requests on one keep-alive connection until the server closes it or `until` passes."""
    sock.settimeout(2)
    try:
        while time.monotonic() < until:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b"ok"):
                chunk = sock.recv(4096)
                if not chunk:
                    return "closed by the server"
                answer += chunk
            answers.append(answer)
        return "still open"
    except ConnectionResetError:  # closed with the next request unread
        return "closed by the server"
    except OSError as exc:
        return f"failed: {exc!r}"
    finally:
        sock.close()


def test_a_connection_accepted_as_shutdown_begins_is_closed_after_its_request():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    answers: list[bytes] = []
    ended: list[str] = []

    async def scenario() -> float:
        config = uvicorn.Config(ok_app, http=GuardedH11Protocol, lifespan="off", log_level="warning",
                                timeout_keep_alive=5)  # fmt: skip
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        client = socket.create_connection(listener.getsockname())  # queued by the kernel, not accepted yet
        server.should_exit = True
        # Hold the loop: the accept and the server's shutdown tick become ready in the same turn, so the
        # connection is set up after the server asked the connections it had to close.
        time.sleep(0.3)
        asking = threading.Thread(target=lambda: ended.append(keep_asking(client, answers, time.monotonic() + 15)))
        asking.start()
        began = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(serving), 8)
        except asyncio.TimeoutError:
            pass  # still draining: asserted below
        finally:
            drained_s = time.monotonic() - began
            asking.join(20)
            await serving
        return drained_s

    drained_s = asyncio.run(scenario())
    assert len(answers) == 1 and answers[0].startswith(b"HTTP/1.1 200"), answers[-1:]  # its request answered
    assert ended == ["closed by the server"]  # and not kept alive
    assert drained_s < 8


def test_requests_still_running_after_the_drain_timeout_are_cancelled(tmp_path):
    """`serve`'s uvicorn options bound the drain: a request that would run on is cancelled."""
    from service.server import uvicorn_options
    from service.settings import ServiceSettings

    running = asyncio.Event()

    async def slow_app(scope, receive, send) -> None:
        running.set()
        await asyncio.sleep(120)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    options = uvicorn_options(ServiceSettings(index=tmp_path, drain_timeout_s=1))

    async def scenario() -> float:
        server = uvicorn.Server(uvicorn.Config(slow_app, lifespan="off", log_level="critical", **options))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        client = socket.create_connection(listener.getsockname())
        client.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        await asyncio.wait_for(running.wait(), 10)
        server.should_exit = True
        began = time.monotonic()
        await asyncio.wait_for(serving, 30)
        client.close()
        return time.monotonic() - began

    assert asyncio.run(scenario()) < 10  # 1 s of drain, then cancelled (not the request's 120 s)
