"""Fusion of ranked lists: pure functions over lists of `Hit` (no retriever, no I/O).

Both functions merge per passage: the merged `Hit` keeps every leg score/rank (`bm25`, `dense`,
`bm25_rank`, `dense_rank`, `authority`) found in any run (the first run that has a value wins),
sets `fused` and `score` to the fused score and renumbers `rank` 1..n.

Ordering is deterministic: fused score descending, then the best (smallest) position the passage
had in any run, then `passage_id` ascending. A passage's position in a run is its 1-based place in
the list (not its `rank` field), so runs that were filtered without renumbering still fuse correctly;
a passage repeated within one run counts once, at its first position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ranker.hit import Hit

Norm = Literal["minmax", "zscore", "none"]
_LEG_FIELDS = ("bm25", "dense", "authority", "bm25_rank", "dense_rank")


@dataclass
class _Acc:
    first: Hit
    best_pos: int
    legs: dict[str, float | int | None] = field(default_factory=dict)
    parts: list[float] = field(default_factory=list)  # per-run contributions (summed in sorted order)


def _collect(runs: Sequence[Sequence[Hit]]) -> tuple[dict[str, _Acc], list[dict[str, int]]]:
    """Merge leg fields per passage; also each run's passage -> first position map."""
    accs: dict[str, _Acc] = {}
    positions: list[dict[str, int]] = []
    for run in runs:
        pos_of: dict[str, int] = {}
        for pos, hit in enumerate(run, 1):
            if hit.passage_id in pos_of:
                continue
            pos_of[hit.passage_id] = pos
            acc = accs.get(hit.passage_id)
            if acc is None:
                acc = accs[hit.passage_id] = _Acc(first=hit, best_pos=pos)
            else:
                acc.best_pos = min(acc.best_pos, pos)
            for f in _LEG_FIELDS:
                if acc.legs.get(f) is None:
                    acc.legs[f] = getattr(hit, f)
        positions.append(pos_of)
    return accs, positions


def _finish(accs: dict[str, _Acc], limit: int | None) -> list[Hit]:
    scored = [(math.fsum(sorted(a.parts)), a) for a in accs.values()]
    scored.sort(key=lambda t: (-t[0], t[1].best_pos, t[1].first.passage_id))
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        scored = scored[:limit]
    legs = _LEG_FIELDS
    # The constructor, not dataclasses.replace: this runs for every candidate of every query.
    return [
        Hit(a.first.passage_id, a.first.doc_id, s, r, fused=s, **{f: a.legs.get(f) for f in legs})
        for r, (s, a) in enumerate(scored, 1)
    ]


def rrf(runs: Sequence[Sequence[Hit]], k: int = 60, limit: int | None = None) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over runs containing the passage of 1 / (k + position)."""
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    accs, positions = _collect(runs)
    for pos_of in positions:
        for pid, pos in pos_of.items():
            accs[pid].parts.append(1.0 / (k + pos))
    return _finish(accs, limit)


def normalize_scores(scores: Sequence[float], norm: Norm = "minmax") -> list[float]:
    """One run's scores normalised.

    minmax: (s - min) / (max - min) in [0, 1]; when all scores are equal (including a single hit)
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
) -> list[Hit]:
    """Weighted sum of per-run normalised scores (each run's `score` field), per query.

    A passage missing from a run contributes 0 under "minmax" (the bottom of the normalised range,
    also when the run's hits all normalise to 1.0, e.g. a single hit) and the run's minimum
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
    accs, positions = _collect(runs)
    for run, pos_of, w in zip(runs, positions, ws):
        if not pos_of:
            continue
        firsts = [h for pos, h in enumerate(run, 1) if pos_of[h.passage_id] == pos]  # first occurrence only
        normed = dict(zip((h.passage_id for h in firsts), normalize_scores([h.score for h in firsts], norm)))
        floor = 0.0 if norm == "minmax" else min(normed.values())
        for pid, acc in accs.items():
            acc.parts.append(w * normed.get(pid, floor))
    return _finish(accs, limit)
