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

import regex

MAX_BM25_TERMS = 256  # well below Lucene's default clause limit of 1,024

_WORD = re.compile(r"\w+", re.UNICODE)
# An emoji (with its skin tone, joiners, a flag's two letters): one term to Lucene, and no \w character.
_PICTOGRAPH = regex.compile(r"(?=[\p{Extended_Pictographic}\p{Regional_Indicator}])\X")


def words(query: str) -> list[str]:
    """The query's words, then its emoji: at least as many distinct ones as it has distinct terms."""
    return _WORD.findall(query) + _PICTOGRAPH.findall(query)


def might_exceed(query: str, limit: int = MAX_BM25_TERMS) -> bool:
    """Cheap pre-check that `query` may have more than `limit` distinct analyzed terms (False: it has not).

    The analyzer cuts at spaces, so the distinct terms are at most the sum, over the distinct pieces
    between spaces, of each piece's terms. An ASCII piece has at most one term per run of word
    characters (`1,000`, `U.S.` and `0.01` are one term of two or three runs), and ASCII text at most
    one per two characters; in other text a term can be one character (hiragana one by one, a word
    with combining marks, which are no word characters, emoji side by side). Counting distinct words
    instead (`\\w+`), a pasted table of 1,100 decimals made of ~110 of them passed unbounded, past
    Lucene's clause limit of 1,024."""
    if query.isascii() and len(query) <= 2 * limit:
        return False
    bound = 0
    for piece in {piece.lower() for piece in query.split()}:
        bound += len(_WORD.findall(piece)) if piece.isascii() else len(piece)
        if bound > limit:
            return True
    return False


def bound_terms(
    query: str,
    terms_of: Callable[[str], Sequence[str]],
    doc_freqs: Callable[[Sequence[str]], Sequence[int]],
    limit: int = MAX_BM25_TERMS,
) -> str:
    """`query` reduced to the words of its `limit` rarest distinct terms (unchanged when it has fewer).
    `terms_of` maps text without spaces to its index terms, as the analyzer reads it (none for a
    stopword; `3.5bn`, `1,000` and `U.S.` are one term each, `COVID-19` two); `doc_freqs` gives the
    index's document frequency of each term. Ties (equal df) keep the more frequent query term, then
    the earlier one, so the rewrite is deterministic.

    The query is cut at spaces, where the analyzer always cuts, so each piece's terms are the terms
    it has inside the whole query. A piece whose terms are only partly kept (`SARS-CoV-2` with `sar`
    kept, `2` not) is replaced by its words (`words`) whose terms are all kept.
    """
    pieces = query.split()
    terms: dict[str, tuple[str, ...]] = {}
    counts: dict[str, int] = {}
    first: dict[str, int] = {}

    def terms_in(text: str) -> tuple[str, ...]:
        key = text.lower()
        if key not in terms:
            terms[key] = tuple(terms_of(key))
        return terms[key]

    for i, piece in enumerate(pieces):
        for t in terms_in(piece):
            counts[t] = counts.get(t, 0) + 1
            first.setdefault(t, i)
    if len(counts) <= limit:
        return query
    distinct = list(counts)
    df = dict(zip(distinct, doc_freqs(distinct)))
    # A term absent from the index (df 0) matches nothing: it goes first.
    kept = set(sorted(distinct, key=lambda t: (df[t] == 0, df[t], -counts[t], first[t]))[:limit])

    def all_kept(text: str) -> bool:
        found = terms_in(text)
        return bool(found) and kept.issuperset(found)

    out: list[str] = []
    for piece in pieces:
        if all_kept(piece):
            out.append(piece)
        elif not kept.isdisjoint(terms_in(piece)):
            out.extend(w for w in words(piece) if all_kept(w))
    return " ".join(out)
