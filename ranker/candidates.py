"""Fused hybrid candidates held as arrays: a `Hit` is built only for a candidate a caller takes.

The lean form of `fusion.convex` for the serving default (two legs, min-max convex fusion): the legs
hand over (passage ids, scores) lists (`search_raw`, `search_vectors_raw`) instead of a `Hit` per
candidate, the fused scores, leg scores and ranks are numpy arrays, and `Candidates[i]` builds the
`Hit` that `fusion.convex` would have put at position i, field for field (tests/ranker/
test_candidates.py holds the two to the same output).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backends.hit import Hit
from indexer.schema import doc_id_of

LegRun = tuple[Sequence[str], Sequence[float]]  # one leg's (passage ids, scores), best first


class Candidates(Sequence[Hit]):
    """Fused candidates best first; leg scores are NaN and leg ranks 0 where a leg missed a passage."""

    __slots__ = ("ids", "score", "_bm25", "_dense", "_bm25_rank", "_dense_rank")

    def __init__(self, ids: list[str], score: np.ndarray, bm25: np.ndarray, dense: np.ndarray,
                 bm25_rank: np.ndarray, dense_rank: np.ndarray):  # fmt: skip
        self.ids, self.score = ids, score
        self._bm25, self._dense = bm25.tolist(), dense.tolist()
        self._bm25_rank, self._dense_rank = bm25_rank.tolist(), dense_rank.tolist()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        pid, score = self.ids[i], float(self.score[i])
        bm25, dense, bm25_rank, dense_rank = self._bm25[i], self._dense[i], self._bm25_rank[i], self._dense_rank[i]
        # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank, dense_rank)
        return Hit(pid, doc_id_of(pid), score, i + 1, None if bm25 != bm25 else bm25, None if dense != dense else dense,
                   score, None, bm25_rank or None, dense_rank or None)  # fmt: skip

    @property
    def has_lexical(self) -> bool:
        """Whether any candidate has a (non-zero) BM25 score, as `any(h.bm25 for h in hits)`."""
        return any(s == s and s != 0 for s in self._bm25)


def convex_arrays(lexical: LegRun, dense: LegRun, weights: Sequence[float]) -> Candidates:
    """`fusion.convex([lexical hits, dense hits], weights, norm="minmax")` on the legs' raw lists.

    Same order and scores: a passage's first position in each run counts; each run's scores are
    min-max normalised over those (all equal: 1.0), a missing passage contributes 0, the weighted sum
    is the fused score; ties go to the best position in any run, then the passage id."""
    order: dict[str, int] = {}
    firsts: list[dict[str, int]] = []
    for ids, _ in (lexical, dense):
        first: dict[str, int] = {}
        for pos, pid in enumerate(ids):
            if pid not in first:
                first[pid] = pos
        firsts.append(first)
        for pid in first:
            order.setdefault(pid, len(order))
    n = len(order)
    parts = np.zeros((2, n))
    leg_score = np.full((2, n), np.nan)
    leg_rank = np.zeros((2, n), dtype=np.int64)
    best = np.full(n, np.iinfo(np.int64).max)
    for row, ((_, scores), first, w) in enumerate(zip((lexical, dense), firsts, weights)):
        if not first:
            continue  # an empty run contributes nothing
        pos = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        cols = np.fromiter((order[p] for p in first), dtype=np.int64, count=len(first))
        s = np.asarray(scores, dtype=np.float64)[pos]
        lo, hi = float(s.min()), float(s.max())
        normed = np.ones(len(s)) if hi - lo <= 0.0 else (s - lo) / (hi - lo)
        parts[row, cols] = np.multiply(float(w), normed)
        leg_score[row, cols] = s
        leg_rank[row, cols] = pos + 1
        best[cols] = np.minimum(best[cols], pos + 1)
    fused = parts.sum(axis=0)
    ids = list(order)
    perm = np.lexsort((np.array(ids, dtype=str), best, -fused))  # last key first
    return Candidates([ids[j] for j in perm.tolist()], fused[perm], leg_score[0, perm], leg_score[1, perm],
                      leg_rank[0, perm], leg_rank[1, perm])  # fmt: skip
