"""Fusion of ranked lists: pure functions over lists of `Hit` (no retriever, no I/O).

Both functions merge per passage: the merged `Hit` keeps every leg score/rank (`bm25`, `dense`,
`bm25_rank`, `dense_rank`, `authority`) found in any run (the first run that has a value wins),
sets `fused` and `score` to the fused score and renumbers `rank` 1..n.

Ordering is deterministic: fused score descending, then the best (smallest) position the passage
had in any run, then `passage_id` ascending. A passage's position in a run is its 1-based place in
the list (not its `rank` field), so runs that were filtered without renumbering still fuse correctly;
a passage repeated within one run counts once, at its first position.

`window`: only a run's first `window` positions score (a passage further down counts as missing
from that run, though it stays a candidate), so a deeper run appends candidates without moving the
scores of those found within the window: pages of one ranking asked with more depth stay in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ranker.hit import Hit

Norm = Literal["minmax", "zscore", "none"]
_LEG_FIELDS = ("bm25", "dense", "authority", "bm25_rank", "dense_rank")


# Fields merged across runs, by position in `Hit` (a NamedTuple; indexing beats getattr per hit).
_MERGED = tuple(Hit._fields.index(f) for f in _LEG_FIELDS)
_SCORE, _RANK, _FUSED = (Hit._fields.index(f) for f in ("score", "rank", "fused"))


def _collect(runs: Sequence[Sequence[Hit]]) -> tuple[dict[str, list], list[dict[str, int]]]:
    """Per passage, in first-seen order: [merged fields (a Hit as a list), best position]; also
    each run's passage -> first position map."""
    merged: dict[str, list] = {}
    positions: list[dict[str, int]] = []
    for run in runs:
        pos_of: dict[str, int] = {}
        for pos, hit in enumerate(run, 1):
            pid = hit[0]
            if pid in pos_of:
                continue
            pos_of[pid] = pos
            entry = merged.get(pid)
            if entry is None:
                merged[pid] = [list(hit), pos]
                continue
            entry[1] = min(entry[1], pos)
            row = entry[0]
            for f in _MERGED:
                if row[f] is None:
                    row[f] = hit[f]
        positions.append(pos_of)
    return merged, positions


def _sum_parts(parts: np.ndarray) -> np.ndarray:
    """Per passage (column), the exactly rounded sum of its runs' contributions (row order irrelevant)."""
    if len(parts) <= 2:  # a + b is already the correctly rounded sum
        return parts.sum(axis=0) if len(parts) else np.zeros(parts.shape[1])
    return np.array([math.fsum(sorted(col)) for col in parts.T.tolist()])


def _finish(merged: dict[str, list], scores: np.ndarray, limit: int | None) -> list[Hit]:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    entries = list(merged.values())
    best_pos = np.fromiter((e[1] for e in entries), dtype=np.int64, count=len(entries))
    order = np.lexsort((np.array(list(merged), dtype=str), best_pos, -scores)).tolist()  # last key first
    if limit is not None:
        order = order[:limit]
    values = scores.tolist()
    out = []
    for r, j in enumerate(order, 1):
        row = entries[j][0]
        row[_SCORE] = row[_FUSED] = values[j]
        row[_RANK] = r
        out.append(Hit._make(row))
    return out


def rrf(runs: Sequence[Sequence[Hit]], k: int = 60, limit: int | None = None, window: int | None = None) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over runs containing the passage (within `window`) of 1 / (k + position)."""
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    merged, positions = _collect(runs)
    column = {pid: j for j, pid in enumerate(merged)}
    parts = np.zeros((len(runs), len(merged)))
    for row, pos_of in enumerate(positions):
        for pid, pos in pos_of.items():
            if window is None or pos <= window:
                parts[row, column[pid]] = 1.0 / (k + pos)
    return _finish(merged, _sum_parts(parts), limit)


# A run's min-max range is at least this fraction of its largest score's magnitude: over a run of two
# near-equal hits (a page and its mirror, whose BM25 scores Anserini parts by one float ulp to order them
# by id) plain min-max stretched a rounding-sized gap to the whole [0, 1], half the fused score, which no
# authority prior (a few hundredths) could then close. Runs of ordinary size span far more.
MIN_SPAN_OF_SCALE = 0.1


def span_floor(lo, hi):
    """The least range a run whose scores lie in [lo, hi] is normalised over (numbers or arrays of them,
    one run each). A run that spans less is normalised as 1 - (hi - s) / floor: its best hit stays 1, the
    others keep their small distance below. The final ranking's range has the same floor."""
    return MIN_SPAN_OF_SCALE * np.maximum(np.abs(lo), np.abs(hi))


def normalize_scores(scores: Sequence[float], norm: Norm = "minmax") -> list[float]:
    """One run's scores normalised.

    minmax: (s - min) / (max - min) in [0, 1], over a range of at least `MIN_SPAN_OF_SCALE` of the
      scores' scale (`span_floor`); when all scores are equal (including a single hit)
      every hit gets 1.0 -- the leg did retrieve them and has no preference among them, so they are
      treated like the run's best rather than like passages the leg did not return (which get 0);
      0.5 would rank a lone retrieved hit below the top hit of every other run for no reason.
    zscore: (s - mean) / population std; all equal -> 0.0 for every hit (all at the mean).
    none: the raw scores.
    """
    xs = [float(s) for s in scores]
    if not xs or norm == "none":
        return xs
    if norm == "minmax":
        lo, hi = min(xs), max(xs)
        floor = float(span_floor(lo, hi))
        if hi - lo < floor:
            return [1.0 - (hi - x) / floor for x in xs]
        if hi - lo <= 0.0:
            return [1.0] * len(xs)
        return [(x - lo) / (hi - lo) for x in xs]
    if norm == "zscore":
        mean = math.fsum(xs) / len(xs)
        var = math.fsum((x - mean) ** 2 for x in xs) / len(xs)
        sd = math.sqrt(var)
        if sd <= 0.0:
            return [0.0] * len(xs)
        return [(x - mean) / sd for x in xs]
    raise ValueError(f"unknown normalisation {norm!r} (minmax, zscore or none)")


def convex(
    runs: Sequence[Sequence[Hit]],
    weights: Sequence[float],
    norm: Norm = "minmax",
    limit: int | None = None,
    window: int | None = None,
) -> list[Hit]:
    """Weighted sum of per-run normalised scores (each run's `score` field), per query.

    A passage missing from a run contributes 0 under "minmax" (the bottom of the normalised range, or
    below it for a run narrower than `span_floor`, also when the run's hits all normalise to 1.0, e.g.
    a single hit) and the run's minimum
    normalised score under "zscore" and "none", where a literal 0 could exceed negative scores of
    hits the leg did return (e.g. negative inner products), rewarding absence. An empty run
    contributes nothing to anyone.
    Weights are used as given (they need not sum to 1); they must be finite and >= 0.
    """
    if len(weights) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(weights)} weights")
    ws = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in ws):
        raise ValueError(f"weights must be finite and >= 0, got {list(weights)}")
    if norm not in ("minmax", "zscore", "none"):
        raise ValueError(f"unknown normalisation {norm!r} (minmax, zscore or none)")
    merged, positions = _collect(runs)
    column = {pid: j for j, pid in enumerate(merged)}
    parts = np.zeros((len(runs), len(merged)))
    for row, (run, pos_of, w) in enumerate(zip(runs, positions, ws)):
        if not pos_of:
            continue  # an empty run contributes nothing (0.0 to every sum)
        firsts = [h for pos, h in enumerate(run[:window], 1) if pos_of[h.passage_id] == pos]  # first occurrence only
        normed = normalize_scores([h.score for h in firsts], norm)
        floor = 0.0 if norm == "minmax" else min(normed)
        parts[row] = w * floor
        parts[row, [column[h.passage_id] for h in firsts]] = np.multiply(w, normed)
    return _finish(merged, _sum_parts(parts), limit)
