"""Query-biased snippets: the window of a passage with the most query-term matches.

Latin-script words match by 5-character prefix; Chinese matches by the query's character bigrams
(single characters only where a Han run is one character long), the units the index searches.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from indexer.analysis import HAN, units

_HAN_RUN = re.compile(f"[{HAN}]+")
_W = f"[^\\W{HAN}]"  # a word character other than Han (Han is matched by units, not words)
_TOKEN = re.compile(_W + "+")
_BREAK = re.compile(r"[\s。，、；：！？]")  # where a cut reads naturally
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
    alternatives = [f"(?<!{_W})" + re.escape(s) + (_W + "*" if len(s) == 5 else f"(?!{_W})") for s in stems]
    alternatives += [re.escape(u) for u in _han_units(query)]
    if not alternatives:
        return None
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _han_units(query: str) -> list[str]:
    """The query's Chinese bigrams (a one-character run as itself), longest first."""
    found = {u for m in _HAN_RUN.finditer(query) for u in units(m.group(0), "bigram")}
    return sorted(found, key=lambda u: (-len(u), u))


def snippet(text: str, query: str, max_chars: int = 240) -> str:
    """At most ~max_chars of `text` around the densest cluster of query terms, cut at word boundaries."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    matcher = _matcher(query)
    positions = [m.start() for m in matcher.finditer(text)] if matcher else []
    start, first_match = 0, len(text)
    if positions:
        best, best_count, j = positions[0], 0, 0
        for i, pos in enumerate(positions):
            while positions[j] < pos - max_chars * 2 // 3:
                j += 1
            if i - j + 1 > best_count:
                best, best_count = positions[j], i - j + 1
        start, first_match = max(0, best - max_chars // 6), best
    end = min(len(text), start + max_chars)
    start = max(0, end - max_chars)
    if start > 0:
        brk = _BREAK.search(text, start, min(start + 30, first_match))
        start = _cluster_start(text, brk.end() if brk else start)
    if end < len(text):
        brk = None
        for brk in _BREAK.finditer(text, max(start, end - 30), end):
            pass
        if brk:  # before a space, after a closing punctuation mark
            end = brk.start() if brk.group().isspace() else brk.end()
        end = _cluster_start(text, end)
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def _cluster_start(text: str, i: int) -> int:
    """`i` moved back to the start of its character: never between a surrogate pair, before a
    combining mark or variation selector, or inside a zero-width-joiner sequence."""
    while 0 < i < len(text) and (
        "\udc00" <= text[i] <= "\udfff" or unicodedata.combining(text[i]) or text[i] in "\u200d\ufe0e\ufe0f"
        or text[i - 1] == "\u200d"
    ):  # fmt: skip
        i -= 1
    return i
