"""API keys: checked from the request head, before any body byte is read or parsed.

`early_auth_error` runs in the ASGI middleware (an unauthenticated client cannot make the server
buffer or parse a body); the FastAPI dependencies repeat the check per route and document the header.
They are `async def`: FastAPI runs a plain `def` dependency on a worker thread, one thread hand-off
per request for a string comparison.
"""

from __future__ import annotations

import hmac

from fastapi import Header, Request

from service.errors import ApiError

# Paths that need DRSEARCH_API_KEY when it is set: these exactly, and everything under the prefixes.
SEARCH_PATHS = frozenset({"/v1/search", "/v1/fetch", "/retrieve", "/mcp"})
SEARCH_PREFIXES = ("/v1/documents/", "/v1/passages/", "/mcp/")
ADMIN_PREFIX = "/v1/admin/"


def key_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def check_api_key(given: str | None, expected: str | None) -> None:
    if expected and not key_matches(given, expected):
        raise ApiError(401, "unauthorized", "missing or wrong X-API-Key", "X-API-Key")


def check_admin_key(given: str | None, expected: str | None) -> None:
    if not expected:
        raise ApiError(403, "admin_disabled", "admin endpoints are disabled (DRSEARCH_ADMIN_KEY is not set)")
    if not key_matches(given, expected):
        raise ApiError(401, "unauthorized", "missing or wrong X-API-Key", "X-API-Key")


def early_auth_error(path: str, given: str | None, api_key: str | None, admin_key: str | None) -> ApiError | None:
    """The error a request for `path` gets from its X-API-Key alone (None: allowed or not a guarded path)."""
    try:
        if path.startswith(ADMIN_PREFIX):
            check_admin_key(given, admin_key)
        elif path in SEARCH_PATHS or path.startswith(SEARCH_PREFIXES):
            check_api_key(given, api_key)
    except ApiError as exc:
        return exc
    return None


async def require_api_key(request: Request, x_api_key: str | None = Header(None, description="Required when the server sets DRSEARCH_API_KEY")) -> None:
    check_api_key(x_api_key, request.app.state.svc.settings.api_key)


async def require_admin_key(request: Request, x_api_key: str | None = Header(None, description="Must equal DRSEARCH_ADMIN_KEY")) -> None:
    check_admin_key(x_api_key, request.app.state.svc.settings.admin_key)
