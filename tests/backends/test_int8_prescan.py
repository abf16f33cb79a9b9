"""The int8 prescan of a small exact index (backends/faiss/prescan.py): a single query's top k from it
must be the full scan's, score for score and in the same order, ties at the cut included."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from backends.faiss import prescan as prescan_module  # noqa: E402
from backends.faiss.prescan import Int8Prescan, query_levels  # noqa: E402
from backends.faiss.prescan_kernels import NARROW_LEVELS, WIDE_LEVELS  # noqa: E402
from backends.faiss.searcher import FaissSearcher, batch_invariant_search  # noqa: E402
from bench.flat_split import flat_dense_folder  # noqa: E402

KS = (1, 10, 50, 100, 333, 750)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _flat(x: np.ndarray, q: np.ndarray) -> tuple[faiss.IndexFlatIP, np.ndarray, np.ndarray]:
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index, x, q.astype(np.float32)


@pytest.fixture(scope="module")
def tied() -> tuple[faiss.IndexFlatIP, np.ndarray, np.ndarray]:
    """3,001 vectors (not a multiple of four: the full scan's last one alone) drawn from 400 distinct
    ones, so that equal scores straddle every cut; one of them copied 60 times, the last positions
    among them, so that its tie runs past k + TIE_MARGIN. Queries on and near it, and anywhere."""
    rng = np.random.default_rng(11)
    distinct = _unit(rng.standard_normal((400, 48)))
    x = distinct[rng.integers(0, 400, 3001)]
    x[100::50] = x[7]
    x[-1] = x[-2] = x[7]
    return _flat(x, np.vstack([x[7], x[7] + 0.001, _unit(rng.standard_normal((30, 48)))]))


@pytest.fixture(scope="module")
def close() -> tuple[faiss.IndexFlatIP, np.ndarray, np.ndarray]:
    """2,003 vectors, 1,500 of them around one direction at every distance: near the top their scores
    differ by less than the int8 scores' error, so the approximate order is not the exact one there
    and only the bound finds the top k."""
    rng = np.random.default_rng(3)
    centre = _unit(rng.standard_normal((1, 48)))[0]
    spread = rng.uniform(0.01, 0.6, (1500, 1)) * _unit(rng.standard_normal((1500, 48)))
    x = np.vstack([_unit(centre + spread), _unit(rng.standard_normal((503, 48)))])
    return _flat(x, np.vstack([_unit(centre[None] + 0.01 * rng.standard_normal((20, 48))), _unit(rng.standard_normal((4, 48)))]))


def _canonical(index, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every vector's FAISS score, ordered best first, equal scores by position, cut at k."""
    scores, found = index.search(q[None], index.ntotal)
    by_position = np.empty(index.ntotal, dtype=np.float32)
    by_position[found[0]] = scores[0]
    order = np.lexsort((np.arange(index.ntotal), -by_position))[:k]
    return by_position[order], order


# The query codes' ranges this CPU sums exactly: the narrow one everywhere, the wide one where found so.
LEVELS = sorted({NARROW_LEVELS, query_levels(48)})


@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("collection", ["tied", "close"])
def test_the_prescan_gives_the_full_scans_top_k_with_ties_at_every_cut(collection, levels, request) -> None:
    index, x, q = request.getfixturevalue(collection)
    prescan = Int8Prescan.over(x) if levels == query_levels(48) else Int8Prescan(x, levels)
    assert prescan is not None and prescan.levels == levels
    declined = 0
    for k in KS:
        batch = batch_invariant_search(index, q, k)
        for i, query in enumerate(q):
            expected = _canonical(index, query, k)
            got = prescan.search(query, k)
            if got is None:  # more candidates than it re-scores: the full scan's turn
                assert k > 50, (k, i)
                declined += 1
            else:
                assert got[0].shape == got[1].shape == (1, k)
                assert got[1][0].tolist() == expected[1].tolist(), (k, i)
                assert got[0][0].tobytes() == expected[0].tobytes(), (k, i)
            # ... which the full scan (alone, in a batch) gives too
            alone = batch_invariant_search(index, q[i : i + 1], k)
            for scores, found in ((alone[0][0], alone[1][0]), (batch[0][i], batch[1][i])):
                assert found.tolist() == expected[1].tolist() and scores.tobytes() == expected[0].tobytes(), (k, i)
    assert declined <= len(q) * len(KS) // 3


@pytest.mark.parametrize("levels", LEVELS)
def test_every_approximate_score_is_within_its_bound_and_the_bound_is_tight(tied, levels) -> None:
    """|FAISS's score - the int8 score| <= the bound for every vector, also for queries along a
    vector's own rounding error (where the bound is nearly reached), and the bound leaves few
    candidates: fewer with the wide query codes, whose rounding error is half the narrow ones'."""
    index, x, q = tied
    prescan = Int8Prescan(x, levels)
    kernels = prescan._kernels
    codes = np.zeros((1, x.shape[1]), dtype=np.uint8)
    residuals = x[:40] - np.rint(x[:40] / prescan.scale[:40, None]) * prescan.scale[:40, None]
    for query in np.vstack([q, _unit(residuals)]):
        scale, q_error, q_norm = kernels.quantize_query(query, levels, codes)
        dots = prescan._session.run(None, {"codes": codes})[0][0].astype(np.float64)
        approx = dots * (scale * prescan.scale)
        bound = q_norm * prescan.error + q_error * prescan.recon_norm
        scores, found = index.search(query[None], index.ntotal)
        exact = np.empty(index.ntotal)
        exact[found[0]] = scores[0]
        assert (np.abs(exact - approx) <= bound).all()
        assert np.median(bound) < (0.03 if levels == NARROW_LEVELS else 0.02)
    for query in q:
        scale, q_error, q_norm = kernels.quantize_query(query, levels, codes)
        approx = prescan._session.run(None, {"codes": codes})[0][0] * (scale * prescan.scale)
        bound = q_norm * prescan.error + q_error * prescan.recon_norm
        assert (approx + bound >= np.sort(approx - bound)[-10]).sum() < index.ntotal // 4


@pytest.mark.parametrize("levels", LEVELS)
def test_the_integer_products_are_exact_on_extreme_codes(levels) -> None:
    """The GEMV's int32 dot products equal numpy's on vectors whose codes are mostly +-127 side by
    side, for queries at the ends of the codes' range: the narrow range (stored 0..128) on every CPU,
    the wide one (0..254) where `query_levels` found this CPU's sums exact."""
    rng = np.random.default_rng(2)
    x = np.where(rng.random((257, 64)) < 0.5, 1.0, -1.0).astype(np.float32) * rng.uniform(0.5, 1.0, (257, 64)).astype(np.float32)
    x[:, ::2] = np.sign(x[:, ::2])  # every other code +-127
    prescan = Int8Prescan(x, levels)
    kernels = prescan._kernels
    vector_codes = np.clip(np.rint(x / prescan.scale[:, None]), -127, 127).astype(np.int64)
    codes = np.zeros((1, 64), dtype=np.uint8)
    for query in (np.ones(64, dtype=np.float32), -np.ones(64, dtype=np.float32), x[3], rng.standard_normal(64).astype(np.float32)):
        kernels.quantize_query(query, levels, codes)
        assert codes.max() <= 2 * levels
        dots = prescan._session.run(None, {"codes": codes})[0][0]
        assert dots.tolist() == (vector_codes @ (codes[0].astype(np.int64) - int(levels))).tolist()


def test_the_narrow_query_codes_are_kept_where_the_integer_sums_saturate(monkeypatch) -> None:
    """On a CPU without VNNI, ONNX Runtime adds uint8 x int8 products in pairs in int16 with
    saturation (vpmaddubsw). Emulated here (this CPU sums exactly), `query_levels` keeps 64."""
    real = prescan_module._integer_gemv

    class Saturating:
        def __init__(self, codes_t: np.ndarray, zero_point: float):
            self.codes_t, self.zero_point = codes_t.astype(np.int64), int(zero_point)

        def run(self, _outputs, feed):
            a = feed["codes"].astype(np.int64)[0]
            products = a[:, None] * self.codes_t
            pairs = np.clip(products[0::2] + products[1::2], -32768, 32767)
            return [(pairs.sum(axis=0) - self.zero_point * self.codes_t.sum(axis=0))[None]]

    assert query_levels.__wrapped__(48) == query_levels(48)
    if query_levels(48) == WIDE_LEVELS:  # the emulation agrees with the real GEMV where nothing saturates
        codes_t = np.random.default_rng(5).integers(-127, 128, (48, 9)).astype(np.int8)
        feed = {"codes": np.random.default_rng(6).integers(0, 129, (1, 48)).astype(np.uint8)}
        assert Saturating(codes_t, 64).run(None, feed)[0].tolist() == real(codes_t, 64).run(None, feed)[0].tolist()
    monkeypatch.setattr(prescan_module, "_integer_gemv", Saturating)
    assert query_levels.__wrapped__(48) == NARROW_LEVELS


def test_what_the_prescan_does_not_take_goes_back_to_the_full_scan(tied, monkeypatch, caplog) -> None:
    index, x, q = tied
    prescan = Int8Prescan.over(x)
    assert prescan.search(np.full(x.shape[1], np.nan, dtype=np.float32), 10) is None
    assert prescan.search(q[0], 0) is None and prescan.search(q[0], index.ntotal + 1) is None
    with pytest.raises(ValueError, match="query has shape"):
        prescan.search(np.zeros(x.shape[1] + 1, dtype=np.float32), 10)
    monkeypatch.setattr(prescan_module, "MAX_CANDIDATES", 40)  # buffers made from now on
    cramped = Int8Prescan(x)
    assert cramped.search(q[5], 100) is None and cramped.search(q[5], 5) is not None
    bad = x.copy()
    bad[3, 0] = np.inf
    with caplog.at_level(logging.WARNING, logger="drsearch.prescan"):
        assert Int8Prescan.over(bad) is None
    assert "int8 prescan unavailable, full scans kept: the vectors are not all finite" in caplog.text


def test_threads_searching_at_once_each_get_the_right_top_k(tied) -> None:
    index, x, q = tied
    prescan = Int8Prescan.over(x)
    expected = [_canonical(index, query, 100)[1].tolist() for query in q]
    wrong: list[int] = []

    def run(offset: int) -> None:
        for r in range(20):
            i = (offset + r) % len(q)
            got = prescan.search(q[i], 100)
            if got is None or got[1][0].tolist() != expected[i]:
                wrong.append(i)

    threads = [threading.Thread(target=run, args=(t * 7,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_the_searcher_takes_it_for_single_queries_only_on_a_small_exact_ip_index(tmp_path: Path, tied, monkeypatch) -> None:
    index, x, q = tied
    searcher = FaissSearcher(tmp_path / "flat", flat_dense_folder(tmp_path / "flat", index))
    expected = searcher.search_vectors_positions(q, 100)  # a batch: the full scan
    assert searcher.enable_prescan() is True
    served = []
    real = Int8Prescan.search
    monkeypatch.setattr(Int8Prescan, "search", lambda self, query, k: served.append(k) or real(self, query, k))
    for i in range(len(q)):
        (positions, scores), = searcher.search_vectors_positions(q[i : i + 1], 100)
        assert positions.tolist() == expected[i][0].tolist() and scores.tobytes() == expected[i][1].tobytes()
    assert served == [100] * len(q)
    searcher.search_vectors_positions(q[:2], 100)  # a batch
    searcher.search_vectors_positions(q[:1], 1000)  # too deep to pay: 4k > n
    assert len(served) == len(q)
    searcher.close()
    assert searcher._prescan is None
    others = {"l2": faiss.IndexFlatL2(48), "hnsw": faiss.IndexHNSWFlat(48, 8, faiss.METRIC_INNER_PRODUCT)}
    for name, other in others.items():
        other.add(x)
        assert FaissSearcher(tmp_path / name, flat_dense_folder(tmp_path / name, other)).enable_prescan() is False, name


def test_a_serving_process_scans_int8_first_unless_told_not_to(scifact_flat_index, monkeypatch) -> None:
    """`open_validated` (serve, mcp) builds the prescan before its warm-ups; DRSEARCH_INT8_PRESCAN=false
    keeps the full scan. Hybrid single searches rank the same either way."""
    from ranker.pipeline import SearchOptions
    from service.validate import open_validated

    queries = ["vitamin d deficiency and bone density", "0-dimensional biomaterials lack inductive properties",
               "antibiotic resistance in hospital infections", "the role of microRNA in cancer"]  # fmt: skip
    monkeypatch.setenv("DRSEARCH_INT8_PRESCAN", "false")
    plain = open_validated(scifact_flat_index)
    assert plain.dense._prescan is None
    monkeypatch.delenv("DRSEARCH_INT8_PRESCAN")
    served = open_validated(scifact_flat_index)
    try:
        assert served.dense._prescan is not None
        for k in (10, 50):
            options = SearchOptions(k=k, mode="hybrid")
            for query in queries:
                assert [tuple(h) for h in served.rank([query], options)[0]] == [tuple(h) for h in plain.rank([query], options)[0]]
            options = SearchOptions(k=k, mode="dense")
            assert served.rank(queries[:1], options)[0] == plain.rank(queries[:1], options)[0]
    finally:
        plain.close()
        served.close()
