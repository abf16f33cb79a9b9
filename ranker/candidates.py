"""Fused hybrid candidates held as arrays: a `Hit` is built only for a candidate a caller takes.

The lean form of `fusion.convex` for the serving default (two legs, min-max convex fusion): the legs
hand over each query's candidates as arrays instead of a `Hit` per candidate, the fused scores, leg
scores and ranks are numpy arrays, and `Candidates[i]` builds the `Hit` that `fusion.convex` would
have put at position i, field for field (tests/ranker/test_candidates.py holds the two to the same
output).

Candidates are keyed by integers: the passages' positions in the build's columns when the legs give
them (`convex_positions_many`: the FAISS leg returns positions, the Lucene leg too where the build has its
doc-position map, else its ids are looked up once),
so the union, the order and the authority prior are integer array work and a passage id is read
only for a hit that is built or for a tie that the id must break.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from backends.hit import Hit
from indexer.schema import doc_id_of

LegRun = tuple[Sequence[str], Sequence[float]]  # one leg's (passage ids, scores), best first
KeyedRun = tuple[np.ndarray, Sequence[float]]  # one leg's (integer keys, scores), best first


class Candidates(Sequence[Hit]):
    """Fused candidates best first; leg scores are NaN and leg ranks 0 where a leg missed a passage.

    `keys` are the candidates' integer keys, `positions` the same keys when they are column positions
    (None otherwise), `id_of(key)` a key's passage id."""

    __slots__ = ("keys", "positions", "score", "id_of", "has_lexical", "_bm25", "_dense", "_bm25_rank", "_dense_rank")

    def __init__(self, keys: np.ndarray, score: np.ndarray, bm25: np.ndarray, dense: np.ndarray,
                 bm25_rank: np.ndarray, dense_rank: np.ndarray, id_of: Callable[[int], str], *,
                 positional: bool, has_lexical: bool):  # fmt: skip
        self.keys, self.score, self.id_of = keys, score, id_of
        self.positions = keys if positional else None
        # Whether any candidate has a (non-zero) BM25 score, as `any(h.bm25 for h in hits)`.
        self.has_lexical = has_lexical
        self._bm25, self._dense, self._bm25_rank, self._dense_rank = bm25, dense, bm25_rank, dense_rank

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self.hit(i, i + 1, float(self.score[i]), None)

    def hit(self, i: int, rank: int, score: float, authority: float | None) -> Hit:
        """Candidate i's `Hit` at `rank` with this final `score` and authority prior."""
        pid = self.passage_id(i)
        bm25, dense = float(self._bm25[i]), float(self._dense[i])
        bm25_rank, dense_rank = int(self._bm25_rank[i]), int(self._dense_rank[i])
        # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank, dense_rank)
        return Hit(pid, doc_id_of(pid), score, rank, None if bm25 != bm25 else bm25, None if dense != dense else dense,
                   float(self.score[i]), authority, bm25_rank or None, dense_rank or None)  # fmt: skip

    def passage_id(self, i: int) -> str:
        return self.id_of(int(self.keys[i]))

    @property
    def ids(self) -> list[str]:
        """Every candidate's passage id, best first (read one by one: for callers that need them all)."""
        return [self.id_of(k) for k in self.keys.tolist()]


def convex_arrays(lexical: LegRun, dense: LegRun, weights: Sequence[float]) -> Candidates:
    """`fusion.convex([lexical hits, dense hits], weights, norm="minmax")` on the legs' raw lists
    (passage ids and scores): each distinct id gets an integer key, then `convex_keyed`."""
    key_of: dict[str, int] = {}
    keyed = [(np.fromiter((key_of.setdefault(p, len(key_of)) for p in ids), dtype=np.int64, count=len(ids)), scores)
             for ids, scores in (lexical, dense)]  # fmt: skip
    names = list(key_of)
    return convex_keyed(keyed[0], keyed[1], weights, names.__getitem__, positional=False)


def convex_positions_many(lexical: Sequence[KeyedRun], dense: Sequence[KeyedRun], weights: Sequence[float],
                          id_of: Callable[[int], str]) -> list[Candidates]:  # fmt: skip
    """`convex_arrays` of each query's pair of runs of column positions (all known) and scores,
    computed for the whole batch at once; `id_of` reads a position's id."""
    return convex_keyed_many(lexical, dense, weights, id_of, positional=True)


def convex_keyed(lexical: KeyedRun, dense: KeyedRun, weights: Sequence[float], id_of: Callable[[int], str], *,
                 positional: bool) -> Candidates:  # fmt: skip
    """`fusion.convex` over runs keyed by integers (one key per passage).

    Same order and scores: a passage's first position in each run counts; each run's scores are
    min-max normalised over those (all equal: 1.0), a missing passage contributes 0, the weighted sum
    is the fused score; ties go to the best position in any run, then the passage id."""
    return convex_keyed_many([lexical], [dense], weights, id_of, positional=positional)[0]


def convex_keyed_many(lexical: Sequence[KeyedRun], dense: Sequence[KeyedRun], weights: Sequence[float],
                      id_of: Callable[[int], str], *, positional: bool) -> list[Candidates]:  # fmt: skip
    """`convex_keyed` of each query's pair of runs (keys >= 0), as array work over the whole batch:
    each (query, key) pair is one integer, query * span + key, so the per-query unions, min-max
    normalisations and orders are a few numpy calls for all queries instead of a few per query."""
    n_queries = len(lexical)
    flat = [_flattened(runs) for runs in (lexical, dense)]
    span = 1 + max((int(keys.max()) for keys, _, _ in flat if len(keys)), default=0)
    legs = [_first_hits(keys, scores, counts, span) for keys, scores, counts in flat]
    union = _sorted_unique(np.concatenate((legs[0][0], legs[1][0])))
    n = len(union)
    parts = np.zeros((2, n))
    leg_score = np.full((2, n), np.nan)
    leg_rank = np.zeros((2, n), dtype=np.int64)
    best = np.full(n, np.iinfo(np.int64).max)
    for row, ((pairs, s, first), w) in enumerate(zip(legs, weights)):
        if not len(pairs):
            continue  # empty runs contribute nothing
        cols = np.searchsorted(union, pairs)
        of_query = pairs // span
        lo, hi = per_query(np.minimum, s, of_query), per_query(np.maximum, s, of_query)
        spread = hi - lo
        normed = np.ones(len(s))
        varied = ~(spread <= 0.0)  # a run whose scores are all equal normalises to 1.0
        normed[varied] = (s[varied] - lo[varied]) / spread[varied]
        parts[row, cols] = np.multiply(float(w), normed)
        leg_score[row, cols] = s
        leg_rank[row, cols] = first + 1
        best[cols] = np.minimum(best[cols], first + 1)
    fused = parts.sum(axis=0)
    query, keys = np.divmod(union, span)
    perm = order_by(query, -fused, best)
    perm = ties_by_id(perm, [query, -fused, best], lambda j: id_of(int(keys[j])))
    keys, fused, query = keys[perm], fused[perm], query[perm]
    leg_score, leg_rank = leg_score[:, perm], leg_rank[:, perm]
    bm25 = leg_score[0]
    lexical_hits = np.bincount(query, weights=(bm25 != 0) & (bm25 == bm25), minlength=n_queries) > 0  # NaN: no BM25
    ends = np.cumsum(np.bincount(query, minlength=n_queries)).tolist()
    return [Candidates(keys[a:b], fused[a:b], leg_score[0, a:b], leg_score[1, a:b], leg_rank[0, a:b],
                       leg_rank[1, a:b], id_of, positional=positional, has_lexical=has)
            for a, b, has in zip([0, *ends[:-1]], ends, lexical_hits.tolist())]  # fmt: skip


def _flattened(runs: Sequence[KeyedRun]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One leg's runs as (all keys, all scores as float64, each run's length)."""
    if len(runs) == 1:  # a single search: nothing to join
        keys, scores = runs[0]
        return np.asarray(keys, dtype=np.int64), np.asarray(scores, dtype=np.float64), np.array([len(keys)])
    counts = np.fromiter((len(keys) for keys, _ in runs), dtype=np.int64, count=len(runs))
    if not counts.sum():
        return np.zeros(0, dtype=np.int64), np.zeros(0), counts
    keys = np.concatenate([np.asarray(keys, dtype=np.int64) for keys, _ in runs])
    return keys, np.concatenate([np.asarray(scores, dtype=np.float64) for _, scores in runs]), counts


def _first_hits(keys: np.ndarray, scores: np.ndarray, counts: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A leg's flattened runs as (query * span + key, score, position in its run) for each passage's
    first appearance in its query's run, sorted by query then key."""
    if len(counts) == 1:
        pairs, place = keys, np.arange(len(keys))
    else:
        query = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        place = np.arange(len(keys)) - np.repeat(np.cumsum(counts) - counts, counts)
        pairs = query * span + keys
    order = np.argsort(pairs, kind="stable")  # equal pairs keep their run order: the first comes first
    pairs = pairs[order]
    firsts = _starts_of_equal_runs(pairs)
    first = order[firsts]
    return pairs[firsts], scores[first], place[first]


def order_by(*keys: np.ndarray) -> np.ndarray:
    """Indices sorted by `keys` (first key most significant; entries equal in all keys in no set
    order), as `np.lexsort(keys[::-1])` but with one integer sort instead of a stable sort per key:
    each key becomes an order-preserving integer (a float key its dense rank), packed into one
    int64 where they fit."""
    if len(keys[0]) < 2048:  # lexsort's stable sorts cost little on short arrays; ranking would cost more
        return np.lexsort(keys[::-1])
    packed, bits = np.zeros(len(keys[0]), dtype=np.int64), 0
    for key in keys:
        if key.dtype.kind in "iu":
            rank = key.astype(np.int64) - (int(key.min()) if len(key) else 0)
        else:
            ordered = np.argsort(key)
            rank = np.empty(len(key), dtype=np.int64)
            rank[ordered] = np.cumsum(_starts_of_equal_runs(key[ordered])) - 1
        width = max(1, int(rank.max(initial=0)).bit_length())
        bits += width
        if bits > 63:
            return np.lexsort(keys[::-1])
        packed = (packed << width) | rank
    return np.argsort(packed)


def _starts_of_equal_runs(values: np.ndarray) -> np.ndarray:
    """Mask of the entries of sorted `values` that differ from the one before."""
    return np.concatenate(([True], values[1:] != values[:-1])) if len(values) else np.zeros(0, dtype=bool)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)`, by sorting: several times faster than numpy 2's hashing for ints."""
    values = np.sort(values)
    return values[_starts_of_equal_runs(values)]


def per_query(reduce: np.ufunc, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`reduce` (np.minimum, np.maximum) of `values` over each query's entries (`query` sorted),
    repeated to each entry."""
    if not len(values) or query[0] == query[-1]:  # one query (a single search): no segments
        return np.full(len(values), reduce.reduce(values) if len(values) else 0.0)
    starts = np.flatnonzero(_starts_of_equal_runs(query))
    return np.repeat(reduce.reduceat(values, starts), np.diff(np.append(starts, len(values))))


def ties_by_id(order: np.ndarray, keys: Sequence[np.ndarray], id_of: Callable[[int], str]) -> np.ndarray:
    """`order` (indices sorted by `keys`, first key most significant) with each run of indices equal in
    every key put in passage-id order: what a sort with the id as the last key gives, reading ids only
    for the tied indices (usually none, or a few at the bottom of the list)."""
    if len(order) < 2:
        return order
    same = np.ones(len(order) - 1, dtype=bool)
    for key in keys:
        ranked = key[order]
        same &= ranked[1:] == ranked[:-1]
    if not same.any():
        return order
    order = order.copy()
    edges = np.flatnonzero(np.diff(np.concatenate(([False], same, [False])).astype(np.int8)))
    for start, end in zip(edges[::2].tolist(), (edges[1::2] + 1).tolist()):  # runs [start, end) of equal keys
        order[start:end] = sorted(order[start:end].tolist(), key=id_of)
    return order
