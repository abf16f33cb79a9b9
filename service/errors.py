"""HTTP errors of the API: every error body is `{"error": {"code", "message", "field"}}`.

Library exceptions (typed, in `indexer.errors`) are mapped to status codes here, at the edge.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.errors import BackendUnavailable, ConfigError, DrsearchError, IndexFormatError, QueryError

log = logging.getLogger("drsearch.service")

STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests", 499: "client_closed_request", 500: "internal_error", 503: "unavailable",
}  # fmt: skip


class ApiError(StarletteHTTPException):
    """An HTTP error with the API's `{"error": {code, message, field}}` body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(status_code=status, detail=message)
        self.code, self.message, self.field = code, message, field


def error_json(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        loc = list(first.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):  # where, not which field
            loc = loc[1:]
        field = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".") or None
        if first.get("type") == "json_invalid":
            return error_json(400, "invalid_json", f"request body is not valid JSON: {first.get('msg', '')}", None)
        if field is None and request.url.path == "/v1/search" and first.get("type") == "value_error":
            field = "queries"
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        return error_json(422, "invalid_request", f"{field}: {msg}{more}" if field else msg + more, field)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiError):
            return error_json(exc.status_code, exc.code, exc.message, exc.field)
        code = STATUS_CODES.get(exc.status_code, "http_error")
        return error_json(exc.status_code, code, str(exc.detail), None, headers=getattr(exc, "headers", None))

    @app.exception_handler(DrsearchError)
    async def on_drsearch_error(request: Request, exc: DrsearchError) -> JSONResponse:
        if isinstance(exc, QueryError):
            return error_json(400, "invalid_query", exc.message, exc.field)
        if isinstance(exc, IndexFormatError):  # e.g. mode=dense on an index built without the dense leg
            return error_json(400, "unsupported_by_index", exc.message, exc.field)
        if isinstance(exc, BackendUnavailable):  # the cluster is down or refused: retry later, not a bad request
            log.error("search backend unavailable on %s: %s", request.url.path, exc)
            return error_json(503, "backend_unavailable", str(exc), exc.field)
        if isinstance(exc, ConfigError):
            log.error("configuration error while serving %s: %s", request.url.path, exc)
            return error_json(503, "config_error", exc.message, exc.field)
        return error_json(400, "bad_request", exc.message, exc.field)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_json(500, "internal_error", "internal server error", None)
