"""uvicorn's h11 protocol with a request-head timeout and the API's JSON error shape for broken framing.

uvicorn times out idle keep-alive connections but not a client that sends a request head slowly
(or never finishes it), and answers malformed HTTP with a plain-text 400. `GuardedH11Protocol`
closes a connection whose head is incomplete `header_timeout_s` after its first byte (or after
the connection opened), with a JSON 408 when some of the head arrived, and writes its 400 for a
malformed request (431 for a head over the size limit) as `{"error": {...}}`. A client that half-closes
after its request still gets the answer, and one still sending when its connection is closed (a 401
before its body was read) can read the answer before the close; an answer after which the connection
closes says `Connection: close`. Request heads are read as RFC 9112 asks of an origin server (a
request framed both by length and by chunks is the connection's last; an absolute-form target is
served as its path). Selected with uvicorn's `http=` option (see `server.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_ENV = "DRSEARCH_SERVE_HEADER_TIMEOUT_S"
LINGER_S = 2.0  # how long the rest of an over-long head is read and dropped after the 431


def _server_draining() -> bool:
    """Whether the uvicorn server of this process has begun to shut down: while it serves, its
    `handle_exit` is the SIGTERM handler, and `should_exit` is set from the first signal on."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return isinstance(server, uvicorn.Server) and server.should_exit


def _json_error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()


class GuardedH11Protocol(H11Protocol):
    # Class-level so uvicorn's worker processes (which build the protocol themselves) see it: set from the env.
    header_timeout_s: float = float(os.environ.get(HEADER_TIMEOUT_ENV, "10"))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._socket_transport = transport
        self.transport = _LingeringTransport(transport, self)  # type: ignore[assignment]  # what uvicorn closes
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._status_hint = 400
        self._lingering = False
        # Accepted in the event-loop turn the server began shutting down in, this connection is set up
        # after uvicorn asked the open ones to close: it would keep its keep-alive, and a client reusing
        # it would hold the draining worker for as long as it sends. Its first request is its last.
        self._last_request = _server_draining()
        self._arm_head_timer()
        self.conn.next_event = self._next_event_keeping_the_status_hint(self.conn.next_event)
        self.conn.send = self._send_saying_close(self.conn.send)

    def _next_event_keeping_the_status_hint(self, next_event):  # type: ignore[no-untyped-def]
        """h11's next_event, remembering the status its protocol errors suggest (431 for a head over
        the size limit), which uvicorn drops before it calls `send_400_response`, and with each request
        head read as RFC 9112 asks (`_as_origin_server_reads`)."""

        def next_event_kept():  # type: ignore[no-untyped-def]
            try:
                event = next_event()
            except h11.RemoteProtocolError as exc:
                self._status_hint = exc.error_status_hint
                raise
            return self._as_origin_server_reads(event) if isinstance(event, h11.Request) else event

        return next_event_kept

    def _as_origin_server_reads(self, request: h11.Request) -> h11.Request:
        """RFC 9112: a request with both `Content-Length` and `Transfer-Encoding` (h11 reads its body
        by the latter) is the connection's last, since a proxy in front may have framed it by the other
        and be about to send a smuggled request after it (section 6.1); a request target in absolute
        form (`GET http://host/path`, as sent to proxies) is served as its path, the host taken from it
        instead of the Host header (section 3.2.2)."""
        names = {name for name, _ in request.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            self._last_request = True
        scheme, sep, rest = request.target.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https") or rest[:1] in (b"", b"/", b"?"):
            return request
        end = next((i for i, byte in enumerate(rest) if byte in b"/?"), len(rest))
        authority, target = rest[:end], rest[end:]
        target = target if target.startswith(b"/") else b"/" + target
        headers = [(name, authority if name == b"host" else value) for name, value in request.headers]
        return h11.Request(method=request.method, target=target, headers=headers, http_version=request.http_version)

    def _send_saying_close(self, send):  # type: ignore[no-untyped-def]
        """h11's send, a response head saying `Connection: close` when the connection closes after it (the
        server shuts down, the client half-closed, the draining worker's last request): uvicorn closes it
        without a word, and a keep-alive client would send its next request into the closing connection."""

        def send_kept(event):  # type: ignore[no-untyped-def]
            if isinstance(event, h11.Response) and self.cycle is not None and not self.cycle.keep_alive:
                if not any(name.lower() == b"connection" for name, _ in event.headers):
                    event = h11.Response(status_code=event.status_code, reason=event.reason, http_version=event.http_version,
                                         headers=[*event.headers, (b"connection", b"close")])  # fmt: skip
            return send(event)

        return send_kept

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # answered with 431: the rest of the head is read and dropped
            return
        if self.conn.their_state is h11.IDLE:  # (part of) a request head
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._arm_head_timer()
        super().data_received(data)
        if self._last_request and self.cycle is not None:
            self.cycle.keep_alive = False
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        self._disarm_head_timer()
        self._head_bytes = 0
        super().on_response_complete()

    def eof_received(self) -> bool | None:
        """The client closed its sending side (shutdown(SHUT_WR) after its request, as `nc -N` does). A
        request it sent whole is still answered, and the connection closes after that answer; uvicorn's
        own returns None, which closes at once, and the answer being worked on is lost."""
        if self.cycle is not None and not self.cycle.response_complete and self.conn.their_state is h11.DONE:
            self.cycle.keep_alive = False
            return True  # keep the sending side open
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE or self.cycle is not None and not self.cycle.response_complete:
            return
        if self._head_bytes:
            message = f"request head not received within {self.header_timeout_s:g} s"
            self._send_json(408, "Request Timeout", _json_error(408, "request_timeout", message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self._status_hint == 431:
            limit = (self.config.h11_max_incomplete_event_size or h11.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE) // 1024
            message = f"request head too large: the request line and headers exceed {limit} KiB (a URL or a header too long)"
            self._send_json(431, "Request Header Fields Too Large", _json_error(431, "request_head_too_large", message))
            self._close_lingering()
            return
        self._send_json(400, "Bad Request", _json_error(400, "bad_request", f"malformed HTTP request: {msg}"))
        self.transport.close()

    def _close_lingering(self) -> None:
        """Close after the answer while the client may still be sending its head or body: closed at once, the
        unread bytes would make the kernel reset the connection, and the client might never read the
        answer. The write side ends now; what still arrives is dropped, for at most LINGER_S."""
        self._disarm_head_timer()
        self._lingering = True
        try:
            if self._socket_transport.can_write_eof():
                self._socket_transport.write_eof()
        except OSError:  # the client reset the connection already (ENOTCONN): nothing left to linger for
            self._socket_transport.close()
            return
        self.flow.resume_reading()  # paused while a body nobody read piled up
        self.loop.call_later(LINGER_S, self._socket_transport.close)

    def _send_json(self, status: int, reason: str, body: bytes) -> None:
        """A complete response written straight to the transport (h11's state may not allow one any more)."""
        head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n").encode()  # fmt: skip
        self.transport.write(head + body)


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: closing it while the client is still sending its
    request body (answered before it was read: 401, 408) closes lingering, as after a 431, so that the
    client, still sending, reads the answer instead of a reset."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedH11Protocol):
        self._transport, self._protocol = transport, protocol

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._transport, name)

    def close(self) -> None:
        if self._protocol.conn.their_state is h11.SEND_BODY and not self._transport.is_closing():
            self._protocol._close_lingering()
        else:
            self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing() or self._protocol._lingering
