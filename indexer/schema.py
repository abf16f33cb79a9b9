"""The contract every component shares: a document and the passages cut from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source document as read from a corpus (or produced by the crawler)."""

    doc_id: str
    text: str
    title: str = ""
    url: str | None = None
    domain: str | None = None
    published: str | None = None  # ISO date (YYYY-MM-DD or full ISO timestamp)
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
