"""HTTP errors of the API: every error body is `{"error": {"code", "message", "field"}}`.

Library exceptions (typed, in `indexer.errors`) are mapped to status codes here, at the edge.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.errors import ECHO_CHARS, BackendUnavailable, ConfigError, DrsearchError, IndexFormatError, QueryError, echo
from ranker.budget import DeadlineExceeded
from ranker.query import surrogate_at, surrogate_problem

log = logging.getLogger("drsearch.service")

STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 408: "request_timeout", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests", 499: "client_closed_request",
    500: "internal_error", 503: "unavailable", 504: "deadline_exceeded",
}  # fmt: skip


# Validation errors about the body as a whole: absent, or not an object (e.g. sent as a form).
_WHOLE_BODY_ERRORS = ("missing", "model_attributes_type", "dict_type")
_FASTAPI_BODY_UNPARSED = "There was an error parsing the body"  # fastapi.routing's message


def problem_message(error: dict[str, Any]) -> str:
    """One pydantic error's message as the API, the CLI and the MCP tools show it."""
    return length_message(error) or str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def length_message(error: dict[str, Any]) -> str | None:
    """A length check's message in the API's words: characters for text, items for a JSON list
    (pydantic says "Tuple" or "Value ... items" for the API's lists and text fields)."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind not in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return None
    unit = "character" if isinstance(error.get("input"), str) else "item"
    if kind.endswith("too_short"):
        bound = ctx.get("min_length")
        if unit == "character" and bound == 1:
            return "must not be empty"
        return f"must have at least {bound} {unit}{'s' * (bound != 1)}, not {ctx.get('actual_length', 0)}"
    bound, actual = ctx.get("max_length"), ctx.get("actual_length")
    return f"must have at most {bound} {unit}s" + (f", not {actual}" if actual is not None else "")


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON: `application/json` or a `+json` type (`application/vnd.x+json`),
    in any case, parameters such as `; charset=utf-8` allowed. `text/json` or a missing type is not."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > len("+json")))


def invalid_json(reason: str) -> JSONResponse:
    """The 400 for a body that is not JSON the API can read; `reason` says where and why, on one line."""
    return error_json(400, "invalid_json", f"request body is not valid JSON: {reason}", None)


def not_utf8_encoding(body: bytes) -> str | None:
    """Why a JSON body is refused for its encoding: UTF-16 or UTF-32 (with a byte order mark, or found by
    the zero bytes around its first ASCII characters, RFC 4627), which `json.loads` would decode by
    guesswork; else None. JSON exchanged over HTTP is UTF-8 (RFC 8259)."""
    encoding = json.detect_encoding(body)
    if encoding.startswith("utf-8"):
        return None
    name = encoding.upper().replace("-LE", " little-endian").replace("-BE", " big-endian")
    return f"the body is {name} text; send JSON encoded as UTF-8"


def json_problem(body: bytes) -> str:
    """Where and why `body` is not JSON `json.loads` reads: one line (position and reason)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: byte 0x{body[exc.start]:02x} at byte {exc.start} ({exc.reason})"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return _reason_at(f"line {exc.lineno} column {exc.colno} (char {exc.pos})", exc.msg)
    except RecursionError:
        return "nested deeper than the parser allows"
    except ValueError as exc:  # an integer literal past sys.get_int_max_str_digits() (4300 by default)
        limit = sys.get_int_max_str_digits()
        if "integer string conversion" not in str(exc):
            return str(exc).splitlines()[0][:200]
        found = re.search(rf"[0-9]{{{limit + 1},}}", text)
        where = _position(text, found.start()) + ": " if found else ""
        return f"{where}an integer literal of more than {limit} digits (Python's int conversion limit)"
    return "unreadable"


def _reason_at(where: str, reason: str) -> str:
    """`where: reason`, or `reason where` for json's reasons that end in "at" ("Unterminated string starting at")."""
    return f"{reason} {where}" if reason.endswith(" at") else f"{where}: {reason}"


def _position(text: str, pos: int) -> str:
    """`pos` (a character offset) as json's JSONDecodeError gives it: line, column and offset."""
    line, column = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
    return f"line {line} column {column} (char {pos})"


def unsupported_media_type(content_type: str | None) -> JSONResponse:
    """The 415 for a body sent under another content type than JSON (one line, naming what was sent)."""
    got = echo(content_type) if content_type else "no content-type"
    return error_json(415, "unsupported_media_type", "the request body must be JSON, sent with content-type: "
                      f"application/json or a +json type (got {got})", None)  # fmt: skip


def content_coding(content_encoding: str | None) -> str | None:
    """The content coding a request body was sent under when it is not plain (`gzip`, `br`, ...), else None.
    The API reads bodies as sent: a compressed one would otherwise be read as (broken) JSON."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    return next((c for c in codings if c not in ("", "identity")), None)


def unsupported_content_coding(coding: str) -> JSONResponse:
    """The 415 for a compressed body (RFC 7694: `Accept-Encoding` names the codings the server reads)."""
    return error_json(415, "unsupported_media_type", f"the request body must be sent uncompressed (got content-encoding: "
                      f"{echo(coding)}); send the JSON as it is", None, headers={"accept-encoding": "identity"})  # fmt: skip


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a lone surrogate echoed from a request (a field name, a bad value)
    is written as its JSON escape `\\udXXX` instead of failing the UTF-8 encoding with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


class ApiError(StarletteHTTPException):
    """An HTTP error with the API's `{"error": {code, message, field}}` body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code, self.message, self.field = code, message, field


def error_code(exc: DrsearchError) -> tuple[int, str]:
    """The HTTP status and the API's error code for `exc` (the MCP tools name the same codes)."""
    from service.validate import IndexInvalidError

    # In order, the first that fits; a field names the one a kind needs (mode=dense on an index built without it).
    kinds = ((QueryError, None, 400, "invalid_query"), (DeadlineExceeded, None, 504, "deadline_exceeded"),
             (IndexInvalidError, None, 409, "index_invalid"), (IndexFormatError, "mode", 400, "unsupported_by_index"),
             (BackendUnavailable, None, 503, "backend_unavailable"), (IndexFormatError, None, 500, "index_corrupt"),
             (ConfigError, None, 503, "config_error"))  # fmt: skip
    fits = ((status, code) for kind, field, status, code in kinds if isinstance(exc, kind) and field in (None, exc.field))
    return next(fits, (400, "bad_request"))


def error_json(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    return SafeJSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status, headers=headers)


def rewriting_error_bodies(send: Any, rewrite: Callable[[int, bytes], bytes]) -> Any:
    """`send` with the body of each error response (status >= 400) held until whole and passed through
    `rewrite(status, body)`, its content-length set to match."""
    held: list[Any] = []

    async def send_rewritten(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            held.append(message)
            return
        if not held:
            await send(message)
            return
        held.append(message)
        if message.get("more_body"):
            return
        start, *parts = held
        held.clear()
        body = rewrite(start["status"], b"".join(part.get("body", b"") for part in parts))
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return send_rewritten


def as_jsonrpc_errors(send: Any) -> Any:
    """`send` with the API's error bodies rewritten as JSON-RPC errors (`id` null, the same status; the
    API's `code` and `field` in `data`), for `/mcp`: an MCP client shows a JSON-RPC error's message, and
    for any other body a stand-in ("Server returned an error response"), so a missing key or a body
    over the cap went unexplained."""

    def as_jsonrpc(status: int, body: bytes) -> bytes:
        try:
            answer = json.loads(body)
            error = answer["error"]
            code, message = error["code"], str(error["message"])
        except (ValueError, KeyError, TypeError):
            return body
        if "jsonrpc" in answer or not isinstance(code, str):  # the SDK's own JSON-RPC error: as it came
            return body
        rpc = -32700 if code == "invalid_json" else -32603 if status >= 500 else -32600
        return json.dumps({"jsonrpc": "2.0", "id": None, "error": {
            "code": rpc, "message": message, "data": {"code": code, "field": error.get("field")}}}).encode()  # fmt: skip

    return rewriting_error_bodies(send, as_jsonrpc)


def field_path(loc: Any) -> str | None:
    """A validation error's location as the field path the API names (`queries[3]`, `items[0].url`)."""
    return "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".") or None


def lone_surrogate(body: Any, loc: tuple = ()) -> tuple[str | None, str] | None:
    """Where the first lone UTF-16 surrogate in a parsed JSON body is (the field path, None for a key
    of the body itself) and the message that says so, or None. pydantic refuses such a string in a
    field name or a field whose type is not ours with "unable to parse raw data" and, for a name, no
    location; the API says what and where, as for its own string fields."""
    if isinstance(body, str):
        problem = surrogate_problem(body)
        return None if problem is None else (field_path(loc), problem)
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else ()
    for key, value in items:
        if isinstance(key, str) and (at := surrogate_at(key)) is not None:
            return field_path(loc), (f"a field name ({echo(key)}) contains a lone UTF-16 surrogate at character {at}; "
                                     "send valid Unicode text")  # fmt: skip
        if found := lone_surrogate(value, (*loc, key)):
            return found
    return None


def shown_field(field: str) -> str:
    """A field path as a message shows it: as it is, unless a client's unknown key made it long or
    unprintable, then quoted and cut as any echoed client text (`indexer.errors.echo`)."""
    return field if len(field) <= ECHO_CHARS and field.isprintable() else echo(field)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        loc = list(first.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):  # where, not which field
            loc = loc[1:]
        field = field_path(loc)
        if first.get("type") == "json_invalid":  # loc: ("body", char offset), the reason in ctx
            doc, pos = exc.body if isinstance(exc.body, str) else "", first.get("loc", (None, 0))[-1]
            where = _position(doc, pos) if isinstance(pos, int) and pos <= len(doc) else "position unknown"
            return invalid_json(_reason_at(where, (first.get("ctx") or {}).get("error", "malformed")))
        if field is None and first.get("type") in _WHOLE_BODY_ERRORS:  # the body itself, not one of its fields
            content_type = request.headers.get("content-type")
            if not is_json_media_type(content_type):
                return unsupported_media_type(content_type)
            if first.get("type") == "missing":
                return error_json(422, "invalid_request", "the request body is empty: send a JSON object", None)
        if first.get("type") == "string_unicode" and (found := lone_surrogate(exc.body)):
            field, msg = found
            return error_json(422, "invalid_request", f"{shown_field(field)}: {msg}" if field else msg, field)
        if field is None and request.url.path == "/v1/search" and first.get("type") == "value_error":
            field = "queries"
        msg = problem_message(first)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        shown = f"{shown_field(field)}: {msg}{more}" if field else msg + more
        if field is not None and len(field) > ECHO_CHARS:  # an unknown key of any length: named, cut
            field = field[:ECHO_CHARS] + "…"
        return error_json(422, "invalid_request", shown, field)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiError):
            return error_json(exc.status_code, exc.code, exc.message, exc.field, headers=exc.headers)
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_UNPARSED:  # json.loads raised other than JSONDecodeError
            body = request.scope.get("state", {}).get("body")  # kept by the middleware
            reason = json_problem(body) if isinstance(body, bytes) else "not UTF-8 text, nested too deep, or an over-long number"
            return invalid_json(reason)
        if exc.status_code == 404 and exc.detail == "Not Found":  # the router's: no route has this path
            return error_json(404, "not_found", f"no endpoint at {echo(request.scope.get('path', ''))} (see /openapi.json)", None)
        code = STATUS_CODES.get(exc.status_code, "http_error")
        return error_json(exc.status_code, code, str(exc.detail), None, headers=getattr(exc, "headers", None))

    @app.exception_handler(DrsearchError)
    async def on_drsearch_error(request: Request, exc: DrsearchError) -> JSONResponse:
        status, code = error_code(exc)
        if code == "index_invalid":  # a reload refused: the served build is unchanged
            return error_json(status, code, f"build refused, still serving the loaded one: {exc}", None)
        if code == "backend_unavailable":  # the cluster is down or refused: retry later, not a bad request
            log.error("search backend unavailable on %s (request_id %s): %s", request.url.path, _request_id(request), exc)
            return error_json(status, code, str(exc), exc.field)
        if code == "index_corrupt":  # the served files went bad after validation: our fault, not the caller's
            return _index_corrupt(request, str(exc))
        if code == "config_error":  # e.g. an authority list a reload read: its file:line, and what still serves
            log.error("configuration error while serving %s (request_id %s): %s", request.url.path, _request_id(request), exc)
            refused = "reload refused, still serving the loaded build and list: " if request.url.path == "/v1/admin/reload" else ""
            return error_json(status, code, refused + str(exc), exc.field)
        return error_json(status, code, exc.message, exc.field)

    @app.exception_handler(sqlite3.DatabaseError)
    async def on_store_error(request: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        return _index_corrupt(request, f"store: {type(exc).__name__}: {exc}")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s (request_id %s)", request.method, request.url.path, _request_id(request), exc_info=exc)
        return error_json(500, "internal_error", "internal server error", None)


def _request_id(request: Request) -> str | None:
    """The id the middleware gave the request (its access log line's, the `X-Request-ID` answered)."""
    return request.scope.get("state", {}).get("request_id")


_reported_faults: set[str] = set()


def _index_corrupt(request: Request, fault: str) -> JSONResponse:
    """500 `index_corrupt`; each distinct fault (it names the file) is logged once, not per request."""
    if fault not in _reported_faults:
        _reported_faults.add(fault)
        log.error("index data fault while serving %s (request_id %s): %s", request.url.path, _request_id(request), fault)
    return error_json(500, "index_corrupt", "the served index has a data fault; the operator has been told (see the server log)")
