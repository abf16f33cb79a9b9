"""Output budgets for agent tools: text trimmed to a character budget at whole words, and a total
budget shared by the hits of a response (filled in rank order, round-robin over the queries)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from indexer.chunker import WORD

ELLIPSIS = "…"


def trim_words(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters after a whole word, "…" marking the cut (the
    marker counts). Words are the chunker's: runs of non-space, each CJK character alone and Thai, Lao,
    Khmer or Myanmar characters in threes, so Chinese, Japanese and Thai text is cut between characters
    (a mark stays with its letter). A first word longer than the budget gives ""."""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(ELLIPSIS)
    cut = 0
    for word in WORD.finditer(text):  # lazily: stops at the first word that does not fit
        if word.end() > room:
            break
        cut = word.end()
    return text[:cut] + ELLIPSIS if cut else ""


def _trim_hit(hit: dict[str, Any], budget: int) -> int:
    """Trim the hit's snippet, then its text, within `budget` characters in all; returns what they use."""
    used = 0
    for key in ("snippet", "text"):
        if hit.get(key):
            hit[key] = trim_words(hit[key], max(0, budget - used))
            used += len(hit[key])
    return used


def _hit_chars(hit: dict[str, Any]) -> int:
    return len(hit.get("snippet") or "") + len(hit.get("text") or "")


def apply_budgets(results: Iterable[dict[str, Any]], *, per_hit: int | None, total: int | None) -> dict[str, int]:
    """Trim each result's hits in place (`snippet`, `text`): at most `per_hit` characters each, at most
    `total` for the whole response. Hits left with no text are dropped. Returns the accounting."""
    results = list(results)
    dropped = 0
    if per_hit is not None:
        for r in results:
            for h in r["hits"]:
                for key in ("snippet", "text"):
                    if h.get(key):
                        h[key] = trim_words(h[key], per_hit)
            dropped += _drop_emptied(r)
    if total is None:
        used = sum(_hit_chars(h) for r in results for h in r["hits"])
        return {"used_chars": used, "dropped_hits": dropped}
    left = total
    depth = max((len(r["hits"]) for r in results), default=0)
    for rank in range(depth):  # round-robin: every query's first hit before any second hit
        for r in results:
            if rank < len(r["hits"]):
                left -= _trim_hit(r["hits"][rank], left)
    for r in results:
        dropped += _drop_emptied(r)
    return {"used_chars": total - left, "dropped_hits": dropped}


def _drop_emptied(result: dict[str, Any]) -> int:
    """Drop the hits that a budget left with neither snippet nor text; returns how many."""
    kept = [h for h in result["hits"] if h.get("snippet") or h.get("text")]
    dropped = len(result["hits"]) - len(kept)
    result["hits"] = kept
    return dropped
