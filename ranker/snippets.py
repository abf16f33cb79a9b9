"""Query-biased snippets: the window of a passage with the most query-term matches."""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Public: the search page highlights words the way snippets pick them.
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with what which who how".split()
)


def _stems(query: str) -> set[str]:
    # A 5-character prefix is a cheap, language-agnostic stand-in for stemming.
    return {t.lower()[:5] for t in _TOKEN.findall(query) if t.lower() not in STOPWORDS}


@lru_cache(maxsize=1024)
def _matcher(query: str) -> re.Pattern[str] | None:
    """Finds the words whose 5-character prefix is a query stem: a shorter stem is a whole word, a
    5-character one starts the word. One regex scan instead of a Python test per word."""
    stems = sorted(_stems(query))
    if not stems:
        return None
    alternatives = [re.escape(s) + (r"\w*" if len(s) == 5 else r"(?!\w)") for s in stems]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + ")", re.IGNORECASE)


def snippet(text: str, query: str, max_chars: int = 240) -> str:
    """At most ~max_chars of `text` around the densest cluster of query terms, cut at word boundaries."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    matcher = _matcher(query)
    positions = [m.start() for m in matcher.finditer(text)] if matcher else []
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
