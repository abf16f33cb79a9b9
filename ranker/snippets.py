"""Query-biased snippets: the window of a passage with the most query-term matches."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with what which who how".split()
)


def _stems(query: str) -> set[str]:
    # A 5-character prefix is a cheap, language-agnostic stand-in for stemming.
    return {t.lower()[:5] for t in _TOKEN.findall(query) if t.lower() not in _STOP}


def snippet(text: str, query: str, max_chars: int = 240) -> str:
    """At most ~max_chars of `text` around the densest cluster of query terms, cut at word boundaries."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    stems = _stems(query)
    positions = [m.start() for m in _TOKEN.finditer(text) if m.group().lower()[:5] in stems]
    start = 0
    if positions:
        best, best_count, j = positions[0], 0, 0
        for i, pos in enumerate(positions):
            while positions[j] < pos - max_chars * 2 // 3:
                j += 1
            if i - j + 1 > best_count:
                best, best_count = positions[j], i - j + 1
        start = max(0, best - max_chars // 6)
    end = min(len(text), start + max_chars)
    start = max(0, end - max_chars)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > end - 30 else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")
