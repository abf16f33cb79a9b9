"""The contract every component shares: a document and the passages cut from it."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ISO_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")  # YYYY[-MM[-DD]], ASCII digits only (unlike \d)
# An ISO 8601 time of day after the date's T: hh[:mm[:ss[.fff]]] (or without colons), second 60 for a leap
# second as RFC 3339 has it, then Z or an offset hh[:mm[:ss]]. Python's time.fromisoformat took `10:00:00 Z`
# and `10:00:00.Z`, and refused `23:59:60`.
ISO_TIME = re.compile(
    r"(?:[01][0-9]|2[0-3])(?:(:?)[0-5][0-9](?:\1(?:[0-5][0-9]|60)(?:[.,][0-9]+)?)?)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9](?::?[0-5][0-9](?:[.,][0-9]+)?)?)?)?"  # an offset's seconds, as Python took them
)
# Typesetting that splits a word for search: a ligature glyph (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ) is a letter of its own to
# Lucene's tokenizer, so `ﬁnancial` is no `financial`; a soft hyphen stays inside the term
# (`inter\u00adnational`), and text from a PDF often keeps the line break after it (`liveli\u00ad hood`).
_TYPESETTING = re.compile("[\ufb00-\ufb06]|\u00ad\\s*")


def untypeset(text: str) -> str:
    """`text` in Unicode NFC, with ligatures spelled out (their NFKC) and soft hyphens dropped, with the
    blanks after one. NFC: the same word typed with a precomposed letter (`é`, as most pages have it) and
    with a letter and its combining mark (`e` + U+0301, as macOS file names and some PDFs have it) is
    one term to Lucene and one text to the encoder; `café` found no `café` the other way written."""
    if text.isascii():
        return text
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if not _TYPESETTING.search(text):
        return text
    return _TYPESETTING.sub(_spelled_out, text)


def _spelled_out(match: re.Match[str]) -> str:
    mark = match.group()
    return "" if mark[0] == "\u00ad" else unicodedata.normalize("NFKC", mark)


@dataclass(frozen=True)
class Document:
    """One source document as read from a corpus (or produced by the crawler)."""

    doc_id: str
    text: str
    title: str = ""
    url: str | None = None
    domain: str | None = None
    published: str | None = None  # ISO date: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDT<time> (see `published_problem`)
    source: str | None = None
    language: str | None = None  # ISO 639-1 ("en", "zh"); filled by detection at build time when absent
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """A retrievable unit: a run of paragraphs of one document.

    `start`/`end` are character offsets into `Document.text`, so
    `document.text[start:end] == passage.text` always holds.
    """

    passage_id: str  # "<doc_id>#<ordinal>"
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str = ""


def passage_id_for(doc_id: str, ordinal: int) -> str:
    return f"{doc_id}#{ordinal}"


def doc_id_of(passage_id: str) -> str:
    """The document id of a passage id (doc ids may themselves contain '#')."""
    return passage_id.rsplit("#", 1)[0]


def date_prefix_problem(value: str) -> str | None:
    """Why `value` is not a real calendar date (or month, or year) as YYYY[-MM[-DD]], or None when it is."""
    m = ISO_DATE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return f"must be YYYY, YYYY-MM or YYYY-MM-DD with ASCII digits, got {value!r}"
    year, month, day = (int(g) if g else 1 for g in m.groups())
    try:
        dt.date(year, month, day)
    except ValueError as exc:
        return f"is not a calendar date: {value!r} ({exc})"
    return None


def published_problem(value: str) -> str | None:
    """Why `value` is not a `published` date, or None when it is one.

    A date is YYYY, YYYY-MM or YYYY-MM-DD (ASCII digits, on the calendar), the full date optionally
    followed by "T" and an ISO 8601 time ("2023-05-01T10:00:00Z"). Filters compare its leading
    YYYY[-MM[-DD]] as a string, so anything else ("yesterday", "2024-13-45", "99999-01-01",
    "01/05/2023") would fall in arbitrary date ranges."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    date, sep, time = value[:10], value[10:11], value[11:]
    if sep not in ("T", "t"):
        date, sep, time = value, "", ""
    m = ISO_DATE.fullmatch(date)
    if m is None or (sep and m.group(3) is None):
        return f"is not an ISO date (YYYY, YYYY-MM or YYYY-MM-DD, optionally followed by T and a time): {value!r}"
    if problem := date_prefix_problem(date):
        return problem
    if sep and not ISO_TIME.fullmatch(time):
        return f"has a time that is not ISO 8601 after its 'T' (hh:mm:ss, then Z or an offset such as +02:00): {value!r}"
    return None


@lru_cache(maxsize=65536)
def is_published_date(value: str) -> bool:
    """`published_problem(value) is None`, cached: filters ask it per candidate of a query."""
    return published_problem(value) is None
