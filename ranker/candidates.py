"""Fused hybrid candidates held as arrays: a `Hit` is built only for a candidate a caller takes.

The lean form of `fusion.convex` for the serving default (two legs, min-max convex fusion): the legs
hand over each query's candidates as arrays instead of a `Hit` per candidate, the fused scores, leg
scores and ranks are numpy arrays, and `Candidates[i]` builds the `Hit` that `fusion.convex` would
have put at position i, field for field (tests/ranker/test_candidates.py holds the two to the same
output).

Candidates are keyed by integers: the passages' positions in the build's columns when the legs give
them (`convex_positions`: the FAISS leg returns positions, the Lucene leg too where the build has its
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

    __slots__ = ("keys", "positions", "score", "id_of", "_bm25", "_dense", "_bm25_rank", "_dense_rank")

    def __init__(self, keys: np.ndarray, score: np.ndarray, bm25: np.ndarray, dense: np.ndarray,
                 bm25_rank: np.ndarray, dense_rank: np.ndarray, id_of: Callable[[int], str], *,
                 positional: bool):  # fmt: skip
        self.keys, self.score, self.id_of = keys, score, id_of
        self.positions = keys if positional else None
        self._bm25, self._dense = bm25.tolist(), dense.tolist()
        self._bm25_rank, self._dense_rank = bm25_rank.tolist(), dense_rank.tolist()

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        pid, score = self.passage_id(i), float(self.score[i])
        bm25, dense, bm25_rank, dense_rank = self._bm25[i], self._dense[i], self._bm25_rank[i], self._dense_rank[i]
        # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank, dense_rank)
        return Hit(pid, doc_id_of(pid), score, i + 1, None if bm25 != bm25 else bm25, None if dense != dense else dense,
                   score, None, bm25_rank or None, dense_rank or None)  # fmt: skip

    def passage_id(self, i: int) -> str:
        return self.id_of(int(self.keys[i]))

    @property
    def ids(self) -> list[str]:
        """Every candidate's passage id, best first (read one by one: for callers that need them all)."""
        return [self.id_of(k) for k in self.keys.tolist()]

    @property
    def has_lexical(self) -> bool:
        """Whether any candidate has a (non-zero) BM25 score, as `any(h.bm25 for h in hits)`."""
        return any(s == s and s != 0 for s in self._bm25)


def convex_arrays(lexical: LegRun, dense: LegRun, weights: Sequence[float]) -> Candidates:
    """`fusion.convex([lexical hits, dense hits], weights, norm="minmax")` on the legs' raw lists
    (passage ids and scores): each distinct id gets an integer key, then `convex_keyed`."""
    key_of: dict[str, int] = {}
    keyed = [(np.fromiter((key_of.setdefault(p, len(key_of)) for p in ids), dtype=np.int64, count=len(ids)), scores)
             for ids, scores in (lexical, dense)]  # fmt: skip
    names = list(key_of)
    return convex_keyed(keyed[0], keyed[1], weights, names.__getitem__, positional=False)


def convex_positions(lexical: KeyedRun, dense: KeyedRun, weights: Sequence[float], id_of: Callable[[int], str]) -> Candidates:
    """`convex_arrays` for runs of column positions (all known) and scores; `id_of` reads a position's id."""
    return convex_keyed(lexical, dense, weights, id_of, positional=True)


def convex_keyed(lexical: KeyedRun, dense: KeyedRun, weights: Sequence[float], id_of: Callable[[int], str], *,
                 positional: bool) -> Candidates:  # fmt: skip
    """`fusion.convex` over runs keyed by integers (one key per passage).

    Same order and scores: a passage's first position in each run counts; each run's scores are
    min-max normalised over those (all equal: 1.0), a missing passage contributes 0, the weighted sum
    is the fused score; ties go to the best position in any run, then the passage id."""
    firsts = [np.unique(np.asarray(keys, dtype=np.int64), return_index=True) for keys, _ in (lexical, dense)]
    union = np.union1d(firsts[0][0], firsts[1][0])
    n = len(union)
    parts = np.zeros((2, n))
    leg_score = np.full((2, n), np.nan)
    leg_rank = np.zeros((2, n), dtype=np.int64)
    best = np.full(n, np.iinfo(np.int64).max)
    for row, ((keys, first), (_, scores), w) in enumerate(zip(firsts, (lexical, dense), weights)):
        if not len(keys):
            continue  # an empty run contributes nothing
        cols = np.searchsorted(union, keys)
        s = np.asarray(scores, dtype=np.float64)[first]
        lo, hi = float(s.min()), float(s.max())
        normed = np.ones(len(s)) if hi - lo <= 0.0 else (s - lo) / (hi - lo)
        parts[row, cols] = np.multiply(float(w), normed)
        leg_score[row, cols] = s
        leg_rank[row, cols] = first + 1
        best[cols] = np.minimum(best[cols], first + 1)
    fused = parts.sum(axis=0)
    perm = np.lexsort((best, -fused))  # last key first
    perm = ties_by_id(perm, [-fused, best], lambda j: id_of(int(union[j])))
    return Candidates(union[perm], fused[perm], leg_score[0, perm], leg_score[1, perm], leg_rank[0, perm],
                      leg_rank[1, perm], id_of, positional=positional)  # fmt: skip


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
