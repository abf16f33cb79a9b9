"""ASGI middleware: request ids, body size limit (413), uncompressed JSON bodies only (415), HEAD answered as GET,
JSON access logs, request metrics, last-resort 500; and startup failures caused by bad configuration reported as one line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.routing import Match

from indexer.errors import DrsearchError, echo
from service.auth import early_auth_error
from service.errors import (
    STATUS_CODES, as_jsonrpc_errors, content_coding, error_json, invalid_json, is_json_media_type, not_utf8_encoding, unsupported_content_coding,
    unsupported_media_type,
)  # fmt: skip
from service.metrics import Metrics

access_log = logging.getLogger("drsearch.access")
log = logging.getLogger("drsearch.service")


CLIENT_CLOSED = 499  # logged (as nginx does) when the client went away before sending its whole body
# The metrics' `method` label takes only these; anything else is "other" (a label per random token would grow /metrics forever).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class _BodyTimeout(Exception):
    pass


# `/retrieve` takes 128 times /v1/search's queries in one call (a training step's searches): its bodies
# may be this many times the cap.
RETRIEVE_BODY_FACTOR = 8

_ERROR_CODE = re.compile(rb'^\{"error":\{"code":"([a-z_]{1,40})"')


def _error_code(body: bytes) -> str | None:
    """The `code` of an error body in the API's shape (`service.errors.error_json` writes it first), else None."""
    found = _ERROR_CODE.match(body[:80])
    return found[1].decode() if found else None


class RequestMiddleware:
    """Request ids, body size limit (413), JSON bodies only (415), JSON access logs, request metrics, and the last-resort 500."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_body_bytes: int, metrics: Metrics, *,
                 body_timeout_s: float = 30.0, api_key: str | None = None, admin_key: str | None = None):  # fmt: skip
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s
        self.api_key, self.admin_key = api_key, admin_key

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        app_scope = _without_trailing_slash(scope)
        if scope.get("method") == "HEAD":  # GET without the body (RFC 9110), which the server leaves out (its
            app_scope = {**app_scope, "method": "GET"}  # scope still says HEAD); FastAPI routes take only the methods they declare
        state = scope.setdefault("state", {})
        request_id = _request_id(scope)
        state.update(request_id=request_id, n_queries=None, mode=None, cache=None)
        status = {"code": 0, "error": None}
        if app_scope.get("path") == "/mcp":
            send = as_jsonrpc_errors(send)

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                headers = _allow_with_head(message["headers"]) if message["status"] == 405 else message["headers"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            elif status["code"] >= 400 and status["error"] is None:  # the metric's label: the API's own code
                status["error"] = _error_code(message.get("body", b""))
            await send(message)

        self.metrics.inflight.inc()
        try:
            denied = early_auth_error(app_scope.get("path", ""), _header(scope, b"x-api-key"), self.api_key, self.admin_key)
            if denied is not None:  # before the body is read: no buffering or parsing for unauthenticated clients
                await error_json(denied.status_code, denied.code, denied.message, denied.field,
                                 headers={"connection": "close"})(scope, receive, send_wrapper)  # its body stays unread
                return
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                if coding := content_coding(_header(scope, b"content-encoding")):  # refused before its body is read
                    await unsupported_content_coding(coding)(scope, receive, send_wrapper)
                    return
                body = await self._read_body(scope, receive, self._body_cap(app_scope))
                content_type = _header(scope, b"content-type")
                if body and not is_json_media_type(content_type):  # a bodiless POST (admin reload) needs no type
                    await unsupported_media_type(content_type)(scope, receive, send_wrapper)
                    return
                if body and (wrong := not_utf8_encoding(body)):
                    await invalid_json(wrong)(scope, receive, send_wrapper)
                    return
                state["body"] = body  # for the message of a body the JSON parser refuses (service.errors)
                receive = _replay(body, receive)
            await self.app(app_scope, receive, send_wrapper)
        except _ClientGone:  # nobody to answer: skip the work, record it
            status["code"] = CLIENT_CLOSED
        except _BodyTimeout:
            if status["code"] == 0:
                message = f"request body not received within {self.body_timeout_s:g} s"
                await error_json(408, "request_timeout", message, headers={"connection": "close"})(scope, receive, send_wrapper)
        except _TooLarge:
            if status["code"] == 0:
                await error_json(413, "payload_too_large", f"request body exceeds {self._body_cap(app_scope)} bytes")(
                    scope, receive, send_wrapper
                )
        except asyncio.CancelledError:  # only uvicorn cancels a request: still running when the drain after SIGTERM ran out
            if status["code"] != 0:
                raise
            # the path echoed: a percent-encoded newline decodes into it, and forged a log line of its own
            log.warning("shutdown: %s %s (request_id %s) still running after the drain timeout, answered 503",
                        scope.get("method"), echo(scope.get("path") or ""), request_id)  # fmt: skip
            await error_json(503, "unavailable", "the server shut down before this request finished; retry",
                             headers={"connection": "close"})(scope, receive, send_wrapper)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - last resort: JSON 500, logged, never a traceback to the client
            log.error("unhandled error on %s %s (request_id %s)", scope.get("method"), echo(scope.get("path") or ""), request_id,
                      exc_info=exc)  # fmt: skip
            if status["code"] == 0:
                await error_json(500, "internal_error", "internal server error")(scope, receive, send_wrapper)
            else:
                raise
        finally:
            self.metrics.inflight.dec()
            self._record(scope, app_scope, state, status["code"] or 500, started, status["error"])

    def _body_cap(self, app_scope) -> int:
        return self.max_body_bytes * (RETRIEVE_BODY_FACTOR if app_scope.get("path") == "/retrieve" else 1)

    async def _read_body(self, scope, receive, cap: int) -> bytes:
        length = _header(scope, b"content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > cap:
            raise _TooLarge
        chunks, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s  # the whole body, not per chunk (trickling)
        while more:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimeout from None
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _TooLarge
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _record(self, scope, app_scope, state: dict, status: int, started: float, error_code: str | None = None) -> None:
        elapsed = time.perf_counter() - started
        endpoint = _route_template(app_scope)
        m = self.metrics
        method = scope.get("method", "")
        m.requests.labels(endpoint, method if method in KNOWN_METHODS else "other", str(status)).inc()
        m.latency.labels(endpoint, state.get("mode") or "").observe(elapsed)
        if status >= 400:
            m.errors.labels(endpoint, str(status), error_code or STATUS_CODES.get(status, "http_error")).inc()
        access_log.info(json.dumps({
            "ts": access_time(time.time()),
            "request_id": state.get("request_id"), "method": (scope.get("method") or "")[:32], "path": (scope.get("path") or "")[:2048],
            "status": status, "ms": round(elapsed * 1000.0, 3), "n_queries": state.get("n_queries"),
            "mode": state.get("mode"), "cache": state.get("cache"),
        }, ensure_ascii=False))  # fmt: skip


def access_time(epoch_s: float) -> str:
    """An access log line's `ts`: UTC to the millisecond, from one clock reading (seconds and
    milliseconds read apart could straddle a second and date a line a second early)."""
    seconds, ms = divmod(int(epoch_s * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


class StartupErrorMiddleware:
    """A startup that fails on bad configuration (a DrsearchError: no index, a malformed authority list)
    is reported as one line, not as the traceback Starlette hands the server to log."""

    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message) -> None:
            # Starlette sends "startup.failed" from inside its `except` block, so the error is still current here.
            exc = sys.exc_info()[1]
            if message["type"] == "lifespan.startup.failed" and isinstance(exc, DrsearchError):
                message = {**message, "message": f"drsearch: cannot serve: {exc}"}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _route_template(scope) -> str:
    """The metrics' `endpoint` label: the route template (`/v1/documents/{doc_id:path}`), never the raw path,
    so clients cannot grow /metrics with random paths (those share `unmatched`). A request answered here
    before routing (401, 408, 413, 415, 499) is matched against the app's routes for its template."""
    route = scope.get("route")
    if route is None and (router := getattr(scope.get("app"), "router", None)) is not None:
        partial = None
        for candidate in _leaf_routes(router.routes):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
            if match is Match.PARTIAL and partial is None:
                partial = candidate  # the path matches, the method does not (as the router answers 405)
        route = route or partial
    return getattr(route, "path", None) or "unmatched"


def _allow_with_head(headers):
    """A 405's `Allow` with HEAD after GET: this middleware answers HEAD on every GET route, which the
    routes themselves do not declare."""
    fixed = []
    for key, value in headers:
        if key.lower() == b"allow" and b"GET" in (methods := [m.strip() for m in value.split(b",")]) and b"HEAD" not in methods:
            value = b", ".join([*methods, b"HEAD"])
        fixed.append((key, value))
    return fixed


def _leaf_routes(routes):
    """The routes a request can end in. FastAPI keeps an included router (`/retrieve`, the search page) behind
    one entry that has no path of its own; its routes are in its `original_router`, and the one a request ends
    in is what FastAPI puts in `scope["route"]`."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        else:
            yield route


def _without_trailing_slash(scope):
    """`scope` with its path's trailing slashes dropped when only the path without them has a route
    (`/v1/search/` is `/v1/search`, `/mcp/` is `/mcp`): answered in place. Starlette would redirect, and
    a bodiless 307 is lost on clients that do not follow redirects (httpx, curl, urllib for a POST), its
    Location built from the Host header (http:// behind a TLS proxy). A document id may end in a slash:
    a path some route takes as it is stays as it is."""
    path = scope.get("path", "")
    meant = path.rstrip("/")
    router = getattr(scope.get("app"), "router", None)
    if not meant or meant == path or router is None:
        return scope
    if any(route.matches(scope)[0] is not Match.NONE for route in router.routes):
        return scope
    moved = {**scope, "path": meant, "raw_path": scope.get("raw_path", b"").rstrip(b"/")}
    return moved if any(route.matches(moved)[0] is not Match.NONE for route in router.routes) else scope


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _request_id(scope) -> str:
    given = _header(scope, b"x-request-id")
    # ASCII only: the header is read as Latin-1 and sent back as UTF-8, so `é` or `²` came back as other bytes
    if given and len(given) <= 64 and given.isascii() and all(c.isalnum() or c in "-_." for c in given):
        return given
    return uuid.uuid4().hex


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
