"""`query_cache`: an LRU cache of a function of a query text, bounded in memory as well as in entries.

A query may be 10,000 characters long (40 KB as a Python string once it holds one character outside
the BMP), and what is computed from it (its stems, a regex of them) as much again. A plain
`lru_cache(maxsize=4096)` keyed by the query held ~240 MB per serving worker after a few thousand
distinct long queries (agents send paragraphs), for as long as the process ran. Queries up to
`SHORT_QUERY_CHARS` are cached as before; longer ones in a cache of their own of `long_entries`,
which is enough for the calls that repeat within a request (once per hit, once per batch pass).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

SHORT_QUERY_CHARS = 256
LONG_ENTRIES = 128


def query_cache(maxsize: int, long_entries: int = LONG_ENTRIES) -> Callable[[F], F]:
    """As `functools.lru_cache(maxsize)` for a function whose first argument is a query text, with
    queries longer than `SHORT_QUERY_CHARS` kept in a separate LRU of `long_entries` entries."""

    def wrap(fn: F) -> F:
        short, long = functools.lru_cache(maxsize)(fn), functools.lru_cache(long_entries)(fn)

        @functools.wraps(fn)
        def call(query: str, *args: Any, **kwargs: Any) -> Any:
            return (short if len(query) <= SHORT_QUERY_CHARS else long)(query, *args, **kwargs)

        def cache_clear() -> None:
            short.cache_clear()
            long.cache_clear()

        call.cache_clear = cache_clear  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap
