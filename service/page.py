"""The search page people use: `GET /` serves a static HTML + vanilla JS + CSS page (no CDN, no build step)
that calls the JSON API from the browser. Open like /healthz, so it loads before a key is typed; its own
calls to the API send the key the user gives."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from indexer.errors import echo
from service.errors import ApiError

router = APIRouter(include_in_schema=False)

_STATIC = files("service") / "static"
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Only the page's own files and API calls: a document's text can never bring in a script, style or image.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> Response:
    suffix = name[name.rfind("."):]
    if "/" in name or suffix not in _MEDIA_TYPES or len(name) > 255 or not (_STATIC / name).is_file():  # 255: no OSError
        raise ApiError(404, "not_found", f"no page asset {echo(name)}", "name")
    return Response((_STATIC / name).read_bytes(), media_type=_MEDIA_TYPES[suffix], headers=_HEADERS)


@router.get("/")
async def page() -> Response:
    """The search page."""
    return _asset("index.html")


@router.get("/ui/meta.json")
async def meta() -> dict[str, Any]:
    """What the page's controls offer and how it highlights query words, from the code that defines them."""
    from ranker.authority import CATEGORIES, TIERS
    from indexer.analysis import SAME_LENGTH_FOLDS, STOP_UNITS
    from ranker.snippets import STOPWORDS

    return {
        "categories": sorted(CATEGORIES), "tiers": list(TIERS), "modes": ["hybrid", "bm25", "dense"],
        "stopwords": sorted(STOPWORDS), "han_stop_units": sorted(STOP_UNITS),
        "folds": {chr(code): folded for code, folded in sorted(SAME_LENGTH_FOLDS.items())},
    }  # fmt: skip


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    """The page's script and stylesheet."""
    return _asset(name)
