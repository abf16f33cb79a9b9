"""Output budgets for agent tools: text trimmed to a character budget at whole words, and a total
budget shared by the hits of a response (filled in rank order, round-robin over the queries)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ELLIPSIS = "…"


def trim_words(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters at a word boundary, "…" marking the cut
    (the marker counts). Never cuts inside a word: a first word longer than the budget gives ""."""
    if len(text) <= max_chars:
        return text
    if max_chars <= len(ELLIPSIS):
        return ""
    head = text[: max_chars - len(ELLIPSIS) + 1]
    cut = head.rfind(" ")
    if cut <= 0:
        return ""
    return head[:cut].rstrip() + ELLIPSIS


def _hit_chars(hit: dict[str, Any]) -> int:
    return len(hit.get("snippet") or "") + len(hit.get("text") or "")


def apply_budgets(results: Iterable[dict[str, Any]], *, per_hit: int | None, total: int | None) -> dict[str, int]:
    """Trim each result's hits in place (`snippet`, `text`): at most `per_hit` characters each, at most
    `total` for the whole response. Hits left with no text are dropped. Returns the accounting."""
    results = list(results)
    for r in results:
        for h in r["hits"]:
            if per_hit is not None:
                for key in ("snippet", "text"):
                    if h.get(key):
                        h[key] = trim_words(h[key], per_hit)
    dropped = 0
    used = 0
    if total is not None:
        left = total
        depth = max((len(r["hits"]) for r in results), default=0)
        keep: list[list[dict[str, Any]]] = [[] for _ in results]
        for rank in range(depth):  # round-robin: every query's first hit before any second hit
            for qi, r in enumerate(results):
                if rank >= len(r["hits"]):
                    continue
                h = r["hits"][rank]
                for key in ("snippet", "text"):
                    if h.get(key):
                        h[key] = trim_words(h[key], max(0, left))
                        left -= len(h[key])
                if h.get("snippet") or h.get("text"):
                    keep[qi].append(h)
                else:
                    dropped += 1
        for r, kept in zip(results, keep):
            r["hits"] = kept
        used = total - left
    else:
        used = sum(_hit_chars(h) for r in results for h in r["hits"])
    return {"used_chars": used, "dropped_hits": dropped}
