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

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from backends.hit import Hit
from indexer.schema import doc_id_of
from ranker import kernels
from ranker.fusion import span_floor

_HITS_AT_ONCE = 16  # hits read from the arrays together (a search usually takes 10)
LegRun = tuple[Sequence[str], Sequence[float]]  # one leg's (passage ids, scores), best first
KeyedRun = tuple[np.ndarray, Sequence[float]]  # one leg's (integer keys, scores), best first


class Candidates(Sequence[Hit]):
    """Fused candidates; leg scores are NaN and leg ranks 0 where a leg missed a passage.

    The arrays (`keys`, `positions`, `score` and the legs') hold the candidates in key order, which
    is all the authority rerank needs (it orders them itself, ties by passage id); `order`, the fused
    order (best first), is computed only when asked for, and indexing or iterating gives the `Hit`s
    in that order. `keys` are the candidates' integer keys, `positions` the same keys when they are
    column positions (None otherwise), `id_of(key)` a key's passage id."""

    __slots__ = ("keys", "positions", "score", "id_of", "has_lexical", "_bm25", "_dense", "_bm25_rank", "_dense_rank",
                 "_order")  # fmt: skip

    def __init__(self, keys: np.ndarray, score: np.ndarray, bm25: np.ndarray, dense: np.ndarray,
                 bm25_rank: np.ndarray, dense_rank: np.ndarray, id_of: Callable[[int], str], *,
                 positional: bool, has_lexical: bool):  # fmt: skip
        self.keys, self.score, self.id_of = keys, score, id_of
        self.positions = keys if positional else None
        # Whether any candidate has a (non-zero) BM25 score, as `any(h.bm25 for h in hits)`.
        self.has_lexical = has_lexical
        self._bm25, self._dense, self._bm25_rank, self._dense_rank = bm25, dense, bm25_rank, dense_rank
        self._order: list[int] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        j = self.order[i]
        return next(self._hits([j], i + 1, [float(self.score[j])], [None]))

    @property
    def order(self) -> list[int]:
        """Array indices best first: by fused score, then the best position in any leg, then passage id."""
        if self._order is None:
            keys = [-self.score, self.nearest]
            self._order = ties_by_id(np.lexsort(keys[::-1]), keys, self.passage_id).tolist()
        return self._order

    @property
    def nearest(self) -> np.ndarray:
        """Each candidate's best (smallest) position in any leg."""
        missed = np.iinfo(np.int64).max
        return np.minimum(np.where(self._bm25_rank > 0, self._bm25_rank, missed),
                          np.where(self._dense_rank > 0, self._dense_rank, missed))  # fmt: skip

    def hits(self, order: list[int], final: np.ndarray, prior: np.ndarray) -> Iterator[Hit]:
        """The candidates' `Hit`s in `order` (array indices), ranked 1.., with their `final` scores and
        authority `prior`s: each built only when taken, the arrays read a few hits at a time."""
        for start in range(0, len(order), _HITS_AT_ONCE):
            at = np.asarray(order[start : start + _HITS_AT_ONCE])  # converted once for its eight reads
            yield from self._hits(at, start + 1, final[at].tolist(), prior[at].tolist())

    def _hits(self, at: Sequence[int], first_rank: int, scores: list[float], authority: list) -> Iterator[Hit]:
        """The `Hit`s of the candidates at array indices `at`, ranked from `first_rank`, with these
        final `scores` and `authority` priors."""
        id_of = self.id_of
        columns = (self.keys[at].tolist(), self._bm25[at].tolist(), self._dense[at].tolist(), self.score[at].tolist(),
                   self._bm25_rank[at].tolist(), self._dense_rank[at].tolist(), scores, authority)  # fmt: skip
        for rank, (key, bm25, dense, fused, bm25_rank, dense_rank, score, prior) in enumerate(zip(*columns), first_rank):
            pid = id_of(key)
            # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank, dense_rank)
            yield Hit(pid, doc_id_of(pid), score, rank, None if bm25 != bm25 else bm25, None if dense != dense else dense,
                      fused, prior, bm25_rank or None, dense_rank or None)  # fmt: skip

    def passage_id(self, j: int) -> str:
        return self.id_of(int(self.keys[j]))

    @property
    def ids(self) -> list[str]:
        """Every candidate's passage id, in array order (read one by one: for callers that need them all)."""
        return [self.id_of(k) for k in self.keys.tolist()]


def convex_arrays(lexical: LegRun, dense: LegRun, weights: Sequence[float], window: int | None = None) -> Candidates:
    """`fusion.convex([lexical hits, dense hits], weights, norm="minmax", window=window)` on the legs'
    raw lists (passage ids and scores): each distinct id gets an integer key, then `convex_keyed`."""
    key_of: dict[str, int] = {}
    keyed = [(np.fromiter((key_of.setdefault(p, len(key_of)) for p in ids), dtype=np.int64, count=len(ids)), scores)
             for ids, scores in (lexical, dense)]  # fmt: skip
    names = list(key_of)
    return convex_keyed(keyed[0], keyed[1], weights, names.__getitem__, positional=False, window=window)


def convex_positions_many(lexical: Sequence[KeyedRun], dense: Sequence[KeyedRun], weights: Sequence[float],
                          id_of: Callable[[int], str], window: int | None = None) -> list[Candidates]:  # fmt: skip
    """`convex_arrays` of each query's pair of runs of column positions (all known) and scores,
    computed for the whole batch at once; `id_of` reads a position's id."""
    return convex_keyed_many(lexical, dense, weights, id_of, positional=True, window=window)


def convex_keyed(lexical: KeyedRun, dense: KeyedRun, weights: Sequence[float], id_of: Callable[[int], str], *,
                 positional: bool, window: int | None = None) -> Candidates:  # fmt: skip
    """`fusion.convex` over runs keyed by integers (one key per passage).

    Same order and scores: a passage's first position in each run counts; each run's scores are
    min-max normalised over those (all equal: 1.0) within its first `window` positions, a passage
    further down or missing contributes 0, the weighted sum is the fused score; ties go to the best
    position in any run, then the passage id."""
    return convex_keyed_many([lexical], [dense], weights, id_of, positional=positional, window=window)[0]


def convex_keyed_many(lexical: Sequence[KeyedRun], dense: Sequence[KeyedRun], weights: Sequence[float],
                      id_of: Callable[[int], str], *, positional: bool, window: int | None = None) -> list[Candidates]:  # fmt: skip
    """`convex_keyed` of each query's pair of runs (keys >= 0), as array work over the whole batch:
    each (query, key) pair is one integer, query * span + key, and one stable sort of both legs'
    pairs groups each query's candidates, so the unions, min-max normalisations and fused scores are
    a few numpy calls for all queries instead of a few per query. The fused order is left to
    `Candidates.order`: the authority rerank, which ranks them in the end, does not need it."""
    n_queries = len(lexical)
    if n_queries == 1:
        one = _convex_one(lexical[0], dense[0], weights, id_of, positional=positional, window=window)
        if one is not None:
            return [one]
    (lex_keys, lex_scores, lex_counts), (den_keys, den_scores, den_counts) = _flattened(lexical), _flattened(dense)
    counts = np.concatenate((lex_counts, den_counts))  # per (leg, query) run, lexical runs first
    keys, scores = np.concatenate((lex_keys, den_keys)), np.concatenate((lex_scores, den_scores))
    n_lex = len(lex_keys)
    if not len(keys):
        return [_no_candidates(id_of, positional) for _ in range(n_queries)]
    run_starts = np.cumsum(counts) - counts
    place = np.arange(len(keys)) - np.repeat(run_starts, counts)  # position in its run
    span = 1 + int(keys.max())
    pairs = keys if n_queries == 1 else np.repeat(np.tile(np.arange(n_queries), 2), counts) * span + keys
    order = np.argsort(pairs, kind="stable")  # a pair's lexical entries (run order) before its dense ones
    pairs, from_lex = pairs[order], order < n_lex
    new = _starts_of_equal_runs(pairs)
    # The first entry of each leg in each pair counts; a later one (a repeat within a run) does not.
    first = new.copy()
    first[1:] |= from_lex[1:] != from_lex[:-1]
    kept = np.zeros(len(keys), dtype=bool)
    kept[order[first]] = True
    if window is not None:  # further down a run, a passage is a candidate but scores nothing from it
        kept &= place < window
    lo = per_run(np.minimum, np.where(kept, scores, np.inf), counts, run_starts)
    hi = per_run(np.maximum, np.where(kept, scores, -np.inf), counts, run_starts)
    normed = _minmax(scores, lo, hi)
    w = np.where(np.arange(len(keys)) < n_lex, float(weights[0]), float(weights[1]))
    part = np.where(kept, np.multiply(w, normed), 0.0)
    group = np.cumsum(new) - 1  # each sorted entry's candidate
    n = int(group[-1]) + 1
    fused = np.bincount(group, weights=part[order], minlength=n)  # lexical part first, as fusion.convex adds them
    leg_score = np.full((2, n), np.nan)
    leg_rank = np.zeros((2, n), dtype=np.int64)
    for row, leg in enumerate((first & from_lex, first & ~from_lex)):
        at = order[leg]
        leg_score[row, group[leg]] = scores[at]
        leg_rank[row, group[leg]] = place[at] + 1
    query, keys = np.divmod(pairs[new], span)
    bm25 = leg_score[0]
    lexical_hits = np.bincount(query, weights=(bm25 != 0) & (bm25 == bm25), minlength=n_queries) > 0  # NaN: no BM25
    ends = np.cumsum(np.bincount(query, minlength=n_queries)).tolist()
    return [Candidates(keys[a:b], fused[a:b], leg_score[0, a:b], leg_score[1, a:b], leg_rank[0, a:b],
                       leg_rank[1, a:b], id_of, positional=positional, has_lexical=has)
            for a, b, has in zip([0, *ends[:-1]], ends, lexical_hits.tolist())]  # fmt: skip


def _convex_one(lexical: KeyedRun, dense: KeyedRun, weights: Sequence[float], id_of: Callable[[int], str], *,
                positional: bool, window: int | None = None) -> Candidates | None:  # fmt: skip
    """`convex_keyed_many` of a single query whose runs each name a passage at most once (as Lucene's
    and FAISS's do), in half the array steps, since a single search's latency is mostly per-step
    cost; None where a run repeats a key (the batch computation handles repeats)."""
    (lex_keys, lex_scores), (den_keys, den_scores) = lexical, dense
    n_lex = len(lex_keys)
    if not n_lex + len(den_keys):
        return _no_candidates(id_of, positional)
    compiled = kernels.active()
    if compiled is not None:
        ok, keys, (fused, bm25, dense_scores), (bm25_rank, dense_rank), has_lexical = compiled.convex_one(
            _c(lex_keys, np.int64), _c(lex_scores, np.float64), _c(den_keys, np.int64), _c(den_scores, np.float64),
            float(weights[0]), float(weights[1]), -1 if window is None else window)  # fmt: skip
        if ok:
            return Candidates(keys, fused, bm25, dense_scores, bm25_rank, dense_rank, id_of, positional=positional,
                              has_lexical=has_lexical)  # fmt: skip
    keys = np.concatenate((np.asarray(lex_keys, dtype=np.int64), np.asarray(den_keys, dtype=np.int64)))
    order = np.argsort(keys, kind="stable")  # a passage's lexical entry before its dense one
    ranked = keys[order]
    from_lex = order < n_lex
    new = _starts_of_equal_runs(ranked)
    if (~new[1:] & (from_lex[1:] == from_lex[:-1])).any():  # a run names a passage twice
        return None
    scores = np.concatenate((np.asarray(lex_scores, dtype=np.float64), np.asarray(den_scores, dtype=np.float64)))
    part = np.concatenate((_normalised(scores[:n_lex], weights[0], window), _normalised(scores[n_lex:], weights[1], window)))
    group = np.cumsum(new) - 1  # each sorted entry's candidate
    n = int(group[-1]) + 1
    fused = np.bincount(group, weights=part[order], minlength=n)  # lexical part first, as fusion.convex adds them
    leg_score = np.full((2, n), np.nan)
    leg_rank = np.zeros((2, n), dtype=np.int64)
    for row, (leg, offset) in enumerate(((from_lex, 0), (~from_lex, n_lex))):  # offset: the leg's first entry
        at = order[leg]
        leg_score[row, group[leg]] = scores[at]
        leg_rank[row, group[leg]] = at - offset + 1
    bm25 = leg_score[0]
    return Candidates(ranked[new], fused, bm25, leg_score[1], leg_rank[0], leg_rank[1], id_of, positional=positional,
                      has_lexical=bool(((bm25 != 0) & (bm25 == bm25)).any()))  # fmt: skip


def _c(values, dtype) -> np.ndarray:
    """`values` as a C-ordered array of `dtype` (what the compiled kernels were compiled for)."""
    return np.ascontiguousarray(values, dtype=dtype)


def _normalised(scores: np.ndarray, weight: float, window: int | None = None) -> np.ndarray:
    """`weight` x one run's scores min-max normalised (all equal: 1.0), as `convex_keyed_many` does:
    over its first `window` scores, the rest 0."""
    if not len(scores):
        return scores
    if window is not None and len(scores) > window:
        return np.concatenate((_normalised(scores[:window], weight), np.zeros(len(scores) - window)))
    lo = np.minimum.reduce(scores)  # the ufunc itself: ndarray.min's Python wrapper costs as much on ~100 numbers
    hi = np.maximum.reduce(scores)
    spread, floor = hi - lo, float(span_floor(lo, hi))
    if spread < floor:
        return np.multiply(float(weight), 1.0 - (hi - scores) / floor)
    return np.multiply(float(weight), (scores - lo) / spread if not spread <= 0.0 else np.ones(len(scores)))


def _minmax(scores: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """`fusion.normalize_scores` ("minmax") of each score against its own run's `lo` and `hi`: over at
    least `span_floor` of the run's scale; a run whose scores are all equal normalises to 1.0."""
    with np.errstate(invalid="ignore"):  # infinite scores: nan, as plain min-max gave
        spread = hi - lo
        floor = span_floor(lo, hi)
        narrow = spread < floor
    normed = np.ones(len(scores))
    varied = ~(spread <= 0.0) & ~narrow
    normed[varied] = (scores[varied] - lo[varied]) / spread[varied]
    normed[narrow] = 1.0 - (hi[narrow] - scores[narrow]) / floor[narrow]
    return normed


def _no_candidates(id_of: Callable[[int], str], positional: bool) -> Candidates:
    none, nan = np.zeros(0, dtype=np.int64), np.zeros(0)
    return Candidates(none, nan, nan, nan, none, none, id_of, positional=positional, has_lexical=False)


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


def per_run(reduce: np.ufunc, values: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`reduce` (np.minimum, np.maximum) of `values` over each run (`counts` long, from `starts`),
    repeated to each of its entries."""
    full = counts > 0
    if full.sum() == 1:
        return np.full(len(values), reduce.reduce(values))
    return np.repeat(reduce.reduceat(values, starts[full]), counts[full])


def _starts_of_equal_runs(values: np.ndarray) -> np.ndarray:
    """Mask of the entries of sorted `values` that differ from the one before."""
    return np.concatenate(([True], values[1:] != values[:-1])) if len(values) else np.zeros(0, dtype=bool)


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


def first_copies(order: list[int], text_keys: np.ndarray) -> list[int]:
    """`order` (indices, best first) without each index whose text key an index before it has: every
    text once, at its best-ranked copy (`text_keys[i]`: candidate i's `indexer.columns.text_hash`).
    A few array steps; the order is returned as it is when no two candidates share a text."""
    if len(order) < 2:
        return order
    ranked = text_keys[order]
    firsts = np.unique(ranked, return_index=True)[1]  # where each key occurs first in the order
    if len(firsts) == len(ranked):
        return order
    kept = np.zeros(len(ranked), dtype=bool)
    kept[firsts] = True
    return np.asarray(order)[kept].tolist()
