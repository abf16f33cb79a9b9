"""Long queries on the BM25 leg: keep a bounded number of distinct terms, the most informative ones.

Agents paste whole claims and paragraphs as queries. A bag-of-words Lucene query has one clause per
distinct term, so a paragraph can approach Lucene's clause limit (1,024) and costs a posting-list
walk per term. Above `MAX_BM25_TERMS` distinct terms the query is rewritten to the words whose
terms have the highest IDF (lowest document frequency), each word kept as often as it occurred, so
the analyzer sees the same terms with the same weights as before, just fewer of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MAX_BM25_TERMS = 256  # well below Lucene's default clause limit of 1,024

_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> list[str]:
    return _WORD.findall(query)


def might_exceed(query: str, limit: int = MAX_BM25_TERMS) -> bool:
    """Cheap pre-check: distinct analyzed terms never outnumber distinct words, nor words half the
    characters (each word but the last is followed by a non-word character)."""
    return len(query) > 2 * limit and len({w.lower() for w in words(query)}) > limit


def bound_terms(
    query: str,
    term_of: Callable[[str], str | None],
    doc_freqs: Callable[[Sequence[str]], Sequence[int]],
    limit: int = MAX_BM25_TERMS,
) -> str:
    """`query` reduced to the words of its `limit` rarest distinct terms (unchanged when it has fewer).

    `term_of` maps a word to its index term (None for a stopword); `doc_freqs` gives the index's
    document frequency of each term. Ties (equal df) keep the more frequent query term, then the
    earlier one, so the rewrite is deterministic.
    """
    toks = words(query)
    terms: dict[str, str | None] = {}
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, w in enumerate(toks):
        key = w.lower()
        if key not in terms:
            terms[key] = term_of(key)
        t = terms[key]
        if t is not None:
            counts[t] = counts.get(t, 0) + 1
            first.setdefault(t, i)
    if len(counts) <= limit:
        return query
    distinct = list(counts)
    df = dict(zip(distinct, doc_freqs(distinct)))
    # A term absent from the index (df 0) matches nothing: it goes first.
    kept = set(sorted(distinct, key=lambda t: (df[t] == 0, df[t], -counts[t], first[t]))[:limit])
    return " ".join(w for w in toks if terms[w.lower()] in kept)
