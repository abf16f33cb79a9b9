"""The one JSON shape of a hit, shared by the CLI (--json) and the HTTP service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ranker.pipeline import Result
from ranker.snippets import snippets


def authority_dict(entry: Any) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"name": entry.name, "category": entry.category, "tier": entry.tier, "country": entry.country}


def result_dicts(rows: Sequence[tuple[Result, str]], *, snippet_chars: int = 240,
                 return_text: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Each (result, query) as the hit's JSON shape, their snippets made together (`snippets`: in one
    JVM call where the embedded backend's JVM runs)."""
    made = snippets([(r.passage.text, query) for r, query in rows], snippet_chars)
    return [_as_dict(r, s, return_text) for (r, _), s in zip(rows, made)]


def _as_dict(result: Result, snippet_text: str, return_text: bool) -> dict[str, Any]:
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
        "snippet": snippet_text,
        "scores": hit.breakdown(),
        "ranks": hit.leg_ranks(),
    }
    if return_text:
        out["text"] = p.text
    return out
