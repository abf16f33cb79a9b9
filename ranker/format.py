"""The one JSON shape of a hit, shared by the CLI (--json) and the HTTP service."""

from __future__ import annotations

from typing import Any

from ranker.pipeline import Result
from ranker.snippets import snippet


def authority_dict(entry: Any) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"name": entry.name, "category": entry.category, "tier": entry.tier, "country": entry.country}


def result_dict(result: Result, query: str, *, snippet_chars: int = 240, return_text: bool = False) -> dict[str, Any]:
    hit, p = result.hit, result.passage
    out: dict[str, Any] = {
        "rank": hit.rank,
        "passage_id": hit.passage_id,
        "doc_id": hit.doc_id,
        "title": p.title,
        "url": p.url,
        "domain": p.domain,
        "authority": authority_dict(result.authority),
        "published": p.published,
        "snippet": snippet(p.text, query, snippet_chars),
        "scores": hit.breakdown(),
        "ranks": hit.leg_ranks(),
    }
    if return_text:
        out["text"] = p.text
    return out
