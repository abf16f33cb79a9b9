"""Fusion: hand-computed RRF and convex examples, ties, empty/single/disjoint runs, equal-score guard."""

from __future__ import annotations

import math

import pytest

from ranker.fusion import convex, normalize_scores, rrf
from ranker.hit import Hit


def bm25_run(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit.of(pid, s, r, bm25=s, bm25_rank=r) for r, (pid, s) in enumerate(pairs, 1)]


def dense_run(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit.of(pid, s, r, dense=s, dense_rank=r) for r, (pid, s) in enumerate(pairs, 1)]


def ids(hits: list[Hit]) -> list[str]:
    return [h.passage_id for h in hits]


# ------------------------------------------------------------------------------------------------ rrf


def test_rrf_hand_computed() -> None:
    bm = bm25_run(("a#0", 12.0), ("b#0", 10.0), ("c#0", 8.0))
    de = dense_run(("c#0", 0.9), ("a#0", 0.8), ("d#0", 0.7))
    out = rrf([bm, de], k=60)
    # a: 1/61 + 1/62 = 0.016393443 + 0.016129032 = 0.032522475
    # c: 1/63 + 1/61 = 0.015873016 + 0.016393443 = 0.032266459
    # b: 1/62        = 0.016129032
    # d: 1/63        = 0.015873016
    assert ids(out) == ["a#0", "c#0", "b#0", "d#0"]
    assert out[0].fused == pytest.approx(1 / 61 + 1 / 62)
    assert out[1].fused == pytest.approx(1 / 63 + 1 / 61)
    assert out[2].fused == pytest.approx(1 / 62)
    assert out[3].fused == pytest.approx(1 / 63)
    assert [h.rank for h in out] == [1, 2, 3, 4]
    assert all(h.score == h.fused for h in out)
    a = out[0]
    assert (a.bm25, a.bm25_rank, a.dense, a.dense_rank) == (12.0, 1, 0.8, 2)
    b = out[2]
    assert (b.bm25, b.bm25_rank, b.dense, b.dense_rank) == (10.0, 2, None, None)
    d = out[3]
    assert (d.bm25, d.dense, d.dense_rank) == (None, 0.7, 3)
    assert a.doc_id == "a"


def test_rrf_tie_breaks_by_best_leg_rank_then_passage_id() -> None:
    # x: 1/(60+1) + 1/(60+3); y: 1/(60+3) + 1/(60+1) -> equal sums; best positions both 1 -> by id.
    bm = bm25_run(("y#0", 3.0), ("m#0", 2.0), ("x#0", 1.0))
    de = dense_run(("x#0", 0.9), ("n#0", 0.8), ("y#0", 0.7))
    out = rrf([bm, de])
    assert out[0].fused == out[1].fused
    assert ids(out)[:2] == ["x#0", "y#0"]
    # m and n: 1/62 each, best position 2 both -> by id
    assert ids(out)[2:] == ["m#0", "n#0"]
    # order of runs does not change the result
    assert ids(rrf([de, bm])) == ids(out)


def test_rrf_best_position_breaks_equal_scores() -> None:
    # k=2: p only in run 1 at position 2 -> 1/4 ; q at position 6 in both runs -> 1/8 + 1/8 = 1/4
    fill = [(f"f{i}#0", 10.0 - i) for i in range(5)]
    r1 = bm25_run(("a#0", 20.0), ("p#0", 19.0), *[(f"g{i}#0", 5.0 - i) for i in range(3)], ("q#0", 0.5))
    r2 = dense_run(*fill, ("q#0", 0.1))
    out = rrf([r1, r2], k=2)
    by = {h.passage_id: h for h in out}
    assert by["p#0"].fused == by["q#0"].fused == pytest.approx(0.25)
    assert ids(out).index("p#0") < ids(out).index("q#0")  # best position 2 < 6


def test_rrf_empty_single_disjoint_limit() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []
    single = bm25_run(("a#0", 3.0), ("b#0", 2.0))
    out = rrf([single, []])
    assert ids(out) == ["a#0", "b#0"] and out[0].fused == pytest.approx(1 / 61)
    disjoint = rrf([bm25_run(("a#0", 3.0), ("b#0", 2.0)), dense_run(("c#0", 0.5), ("d#0", 0.4))])
    # a, c both 1/61 (position 1) -> by id; b, d both 1/62
    assert ids(disjoint) == ["a#0", "c#0", "b#0", "d#0"]
    assert ids(rrf([single, dense_run(("c#0", 0.5))], limit=2)) == ["a#0", "c#0"]
    assert rrf([single], limit=0) == []


def test_rrf_refuses_a_negative_k_or_limit() -> None:
    run = bm25_run(("a#0", 3.0), ("b#0", 2.0))
    with pytest.raises(ValueError):
        rrf([run], k=-5)  # would score 1/(k + position) < 0: an order no caller meant
    with pytest.raises(ValueError):
        rrf([run], limit=-1)  # not a silent order[:-1] that drops the last hit
    assert ids(rrf([run], k=0)) == ["a#0", "b#0"]  # 0 is allowed


def test_rrf_duplicate_in_run_counts_once() -> None:
    run = bm25_run(("a#0", 3.0), ("a#0", 2.0), ("b#0", 1.0))
    out = rrf([run], k=60)
    assert ids(out) == ["a#0", "b#0"]
    assert out[0].fused == pytest.approx(1 / 61)
    assert out[1].fused == pytest.approx(1 / 63)  # position in the list, not renumbered


# --------------------------------------------------------------------------------------------- convex


def test_convex_minmax_hand_computed() -> None:
    bm = bm25_run(("a#0", 10.0), ("b#0", 6.0), ("c#0", 2.0))
    de = dense_run(("c#0", 0.9), ("d#0", 0.5), ("a#0", 0.4))
    out = convex([bm, de], weights=[0.5, 0.5])
    # bm25 minmax over [10, 6, 2]: a=1.0, b=0.5, c=0.0 ; d missing -> 0 (run minimum)
    # dense minmax over [0.9, 0.5, 0.4]: c=1.0, d=0.2, a=0.0 ; b missing -> 0
    # a = .5*1.0 + .5*0.0 = 0.50 ; c = .5*0 + .5*1 = 0.50 ; b = .5*.5 + 0 = 0.25 ; d = 0 + .5*.2 = 0.10
    # a, c tie at 0.5, both best position 1 -> by id
    assert ids(out) == ["a#0", "c#0", "b#0", "d#0"]
    assert [h.fused for h in out] == pytest.approx([0.5, 0.5, 0.25, 0.1])
    assert [h.rank for h in out] == [1, 2, 3, 4]
    a = out[0]
    assert (a.bm25, a.bm25_rank, a.dense, a.dense_rank, a.score) == (10.0, 1, 0.4, 3, a.fused)


def test_convex_weights_and_limit() -> None:
    bm = bm25_run(("a#0", 10.0), ("b#0", 0.0))
    de = dense_run(("b#0", 1.0), ("a#0", 0.0))
    # weights .3/.7: a = .3*1 + .7*0 = .3 ; b = .3*0 + .7*1 = .7
    out = convex([bm, de], [0.3, 0.7], limit=1)
    assert ids(out) == ["b#0"] and out[0].fused == pytest.approx(0.7)


def test_convex_equal_scores_guard_and_single_hit() -> None:
    assert normalize_scores([3.0, 3.0, 3.0]) == [1.0, 1.0, 1.0]
    assert normalize_scores([5.0]) == [1.0]
    assert normalize_scores([2.0, 2.0], "zscore") == [0.0, 0.0]
    bm = bm25_run(("a#0", 7.0))  # one hit: minmax guard -> 1.0
    de = dense_run(("b#0", 0.9), ("a#0", 0.1))  # b = 1.0, a = 0.0
    out = convex([bm, de], [0.6, 0.4])
    # a lone BM25 match keeps its lead over a passage BM25 did not retrieve (missing -> 0, not 1.0):
    # a = .6*1.0 + .4*0.0 = 0.6 ; b = .6*0.0 + .4*1.0 = 0.4
    assert ids(out) == ["a#0", "b#0"]
    assert [h.fused for h in out] == pytest.approx([0.6, 0.4])


def test_convex_zscore_and_none_missing_gets_run_minimum() -> None:
    # none: raw scores; dense run has negative inner products
    bm = bm25_run(("a#0", 2.0))
    de = dense_run(("a#0", -0.1), ("b#0", -0.3))
    out = convex([bm, de], [1.0, 1.0], norm="none")
    # a = 2.0 + -0.1 = 1.9 ; b = (missing in bm25 -> bm25 min 2.0) + -0.3 = 1.7
    assert ids(out) == ["a#0", "b#0"]
    assert [h.fused for h in out] == pytest.approx([1.9, 1.7])
    # zscore of [3, 1]: mean 2, population sd 1 -> [1, -1]
    out = convex([bm25_run(("a#0", 3.0), ("b#0", 1.0)), dense_run(("c#0", 5.0))], [1.0, 1.0], norm="zscore")
    # a = 1 + 0 (dense single hit -> 0, missing -> min 0) ; c = (-1 missing bm25 -> min) + 0 = -1 ; b = -1 + 0
    by = {h.passage_id: h.fused for h in out}
    assert by == pytest.approx({"a#0": 1.0, "b#0": -1.0, "c#0": -1.0})
    assert ids(out) == ["a#0", "c#0", "b#0"]  # b and c tie at -1; c best position 1 < b's 2


def test_convex_empty_and_errors() -> None:
    assert convex([], []) == []
    assert convex([[], []], [0.5, 0.5]) == []
    out = convex([bm25_run(("a#0", 1.0), ("b#0", 0.0)), []], [0.5, 0.5])
    assert [h.fused for h in out] == pytest.approx([0.5, 0.0])
    with pytest.raises(ValueError):
        convex([[]], [0.5, 0.5])
    with pytest.raises(ValueError):
        convex([[]], [-1.0])
    with pytest.raises(ValueError):
        convex([[]], [math.nan])
    with pytest.raises(ValueError):
        convex([[]], [1.0], norm="softmax")  # type: ignore[arg-type]


def test_convex_accepts_a_zero_weight_and_refuses_a_negative_limit() -> None:
    """Settings allow dense_weight 0 or 1: a leg weighted 0 fuses to nothing, it is not an error."""
    bm = bm25_run(("a#0", 10.0), ("b#0", 6.0), ("c#0", 2.0))
    de = dense_run(("c#0", 0.9), ("b#0", 0.5), ("a#0", 0.1))
    out = convex([bm, de], [1.0, 0.0])
    assert ids(out) == ["a#0", "b#0", "c#0"]
    assert [h.fused for h in out] == pytest.approx([1.0, 0.5, 0.0])
    assert ids(convex([bm, de], [0.0, 1.0])) == ["c#0", "b#0", "a#0"]
    with pytest.raises(ValueError):
        convex([bm, de], [0.5, 0.5], limit=-1)


# --------------------------------------------------------------------------------------------- window
def _deep_runs(depth: int) -> tuple[list[Hit], list[Hit]]:
    """A BM25 and a dense run `depth` long, each the first `depth` of one fixed longer list."""
    bm = bm25_run(*[(f"p{i}#0", 30.0 - i * 0.5) for i in range(60)])
    de = dense_run(*[(f"p{(i * 7) % 61}#0", 0.9 - i * 0.01) for i in range(60)])
    return bm[:depth], de[:depth]


@pytest.mark.parametrize("fuse", [lambda runs, **kw: convex(runs, [0.5, 0.5], **kw), lambda runs, **kw: rrf(runs, **kw)],
                         ids=["convex", "rrf"])  # fmt: skip
def test_with_a_window_a_deeper_run_keeps_every_score_found_within_it(fuse) -> None:
    window = 20
    shallow = {h.passage_id: h.score for h in fuse(_deep_runs(window), window=window)}
    deep = {h.passage_id: h.score for h in fuse(_deep_runs(50), window=window)}
    assert set(shallow) < set(deep)
    assert {p: deep[p] for p in shallow} == shallow  # same scores, so the same order among them
    assert all(s == 0.0 for p, s in deep.items() if p not in shallow)  # found deeper only: scores nothing
    unbounded = {h.passage_id: h.score for h in fuse(_deep_runs(50))}
    assert {p: unbounded[p] for p in shallow} != shallow  # without the window, depth moves the scores
    assert fuse(_deep_runs(window), window=window) == fuse(_deep_runs(window))  # runs within it: no change
