"""Query text checks shared by every entry point. Query text is always plain text."""

from __future__ import annotations

import regex

from backends.base import check_k  # noqa: F401  (re-exported: the one k check)
from indexer.errors import QueryError
from indexer.schema import untypeset

MAX_QUERY_CHARS = 10_000  # the API's default cap (a setting); the library itself has none
# Lucene's tokenizer keeps emoji and other pictographs (🚀, ❤️, ™) as terms of their own.
_PICTOGRAPH = regex.compile(r"\p{Extended_Pictographic}")


class CleanQuery(str):
    """Query text that `clean_query` accepted: the pipeline does not check it again."""

    __slots__ = ()


def clean_query(query: object, *, field: str = "query", max_chars: int | None = None) -> CleanQuery:
    """The query stripped of surrounding whitespace, read as documents are (`untypeset`: a query pasted
    from a PDF has its ligatures spelled out and soft hyphens dropped), or QueryError saying what is wrong.

    `max_chars` is the caller's cap (None: no cap; long queries are bounded per leg instead)."""
    if not isinstance(query, str):
        raise QueryError("query must be a string", field=field)
    text = query.strip()
    if not text:
        raise QueryError("query is empty", field=field)
    if (at := surrogate_at(text)) is not None:
        raise QueryError(f"query contains a lone UTF-16 surrogate at character {at} (not valid Unicode text)", field=field)
    check_length(text, max_chars, field=field)
    if not has_words(text):
        raise QueryError("query has no searchable terms (only punctuation or symbols)", field=field)
    return CleanQuery(untypeset(text))


def termless_error(field: str) -> QueryError:
    """The error for a query the lexical analyzer leaves without a term to search."""
    return QueryError("query has no searchable terms (only stopwords, operators or symbols)", field=field)


def has_words(text: str) -> bool:
    """Whether `text` has a letter, digit or pictograph (an emoji): without one (empty, punctuation or
    other symbols only) there is nothing to search."""
    return any(ch.isalnum() for ch in text) or _PICTOGRAPH.search(text) is not None


def as_listed(exc: QueryError) -> QueryError:
    """`exc` naming `queries[0]` where the pipeline named a lone query `query`: for a request that sent
    its one query in a list (the field the client knows)."""
    if exc.field == "query":
        exc.field = "queries[0]"
    return exc


def check_length(text: str, max_chars: int | None, *, field: str = "query") -> None:
    """QueryError when `text` is longer than the caller's cap (None: no cap)."""
    if max_chars is not None and len(text) > max_chars:
        raise QueryError(f"query is longer than {max_chars} characters ({len(text)})", field=field)


def surrogate_problem(text: str) -> str | None:
    """What a request's text field says of a lone surrogate in it (`surrogate_at`), or None."""
    at = surrogate_at(text)
    return None if at is None else f"contains a lone UTF-16 surrogate at character {at}; send valid Unicode text"


def surrogate_at(text: str) -> int | None:
    """Index of the first lone surrogate in `text` (JSON "\\ud800" decodes to one; it cannot be UTF-8 encoded), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None
