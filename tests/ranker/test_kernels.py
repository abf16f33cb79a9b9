"""The compiled fusion and authority order (`ranker.kernels`) rank exactly as the numpy forms: on
synthetic runs with ties, windows, repeats and non-finite scores, and through `SearchPipeline.rank`
on SciFact, one search at a time (the only searches they serve)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from ranker import kernels
from ranker.candidates import _convex_one
from ranker.pipeline import _PRIOR_BY_TIER, MIN_SPAN_OF_SCALE, TextCollapse, _reranked

DATA_QUERIES = 120


@pytest.fixture(scope="module")
def compiled():
    was = kernels.active()
    assert kernels.enable()
    yield kernels.active()
    if was is None:
        kernels.disable()


def _numpy(fn, *args, **kwargs):
    """`fn` run with the kernels off (the numpy forms), then on again."""
    saved = kernels.active()
    kernels.disable()
    try:
        return fn(*args, **kwargs)
    finally:
        kernels._compiled = saved


def _runs(rng, n_lex, n_den, pool, ties):
    def run(n):
        keys = rng.choice(pool, n, replace=False).astype(np.int64)
        raw = rng.integers(0, 3, n).astype(np.float32) if ties else rng.standard_normal(n).astype(np.float32)
        return keys, np.sort(raw)[::-1].copy()

    return run(n_lex), run(n_den)


def test_compiled_convex_fusion_equals_numpy_on_runs_narrower_than_the_span_floor(compiled):
    rng = np.random.default_rng(7)
    for _ in range(50):
        n_lex, n_den = rng.integers(1, 12, 2).tolist()
        lex = (rng.choice(40, n_lex, replace=False).astype(np.int64), np.sort(9.0 + rng.uniform(0, 0.5, n_lex))[::-1].copy())
        den = (rng.choice(40, n_den, replace=False).astype(np.int64), np.sort(0.8 + rng.uniform(0, 0.05, n_den))[::-1].copy())
        id_of = lambda position: f"d{position}#0"  # noqa: E731
        got = _convex_one(lex, den, [0.5, 0.5], id_of, positional=True)
        expected = _numpy(_convex_one, lex, den, [0.5, 0.5], id_of, positional=True)
        for a, b in zip(_fields(got), _fields(expected)):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _fields(candidates):
    return [candidates.keys, candidates.score, candidates._bm25, candidates._dense, candidates._bm25_rank,
            candidates._dense_rank]  # fmt: skip


@pytest.mark.parametrize("window", [None, 0, 3, 500])
@pytest.mark.parametrize("seed", range(30))
def test_compiled_convex_fusion_equals_numpy_bit_for_bit(compiled, seed, window):
    rng = np.random.default_rng(seed)
    sizes = [(1, 0), (0, 1), (1, 1), (40, 40)][seed] if seed < 4 else rng.integers(0, 40, 2).tolist()
    lexical, dense = _runs(rng, *sizes, pool=60, ties=seed % 2 == 0)
    w = float(rng.uniform(0, 1))
    id_of = lambda position: f"d{position}#0"  # noqa: E731
    got = _convex_one(lexical, dense, [1 - w, w], id_of, positional=True, window=window)
    expected = _numpy(_convex_one, lexical, dense, [1 - w, w], id_of, positional=True, window=window)
    for a, b in zip(_fields(got), _fields(expected)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert got.has_lexical == expected.has_lexical


def test_compiled_fusion_hands_back_what_it_does_not_take(compiled):
    """A run naming a passage twice, or a non-finite score: not fused by the kernel (ok False), so the
    numpy form's result stands."""
    keys, scores = np.array([3, 1, 3], dtype=np.int64), np.array([3.0, 2.0, 1.0])
    assert not compiled.convex_one(keys, scores, keys[:0], scores[:0], 0.5, 0.5, -1)[0]
    for bad in (np.nan, np.inf):
        assert not compiled.convex_one(keys[:2], np.array([bad, 1.0]), keys[:0], scores[:0], 0.5, 0.5, -1)[0]
    # Past the window a score is never read: a NaN there is taken.
    assert compiled.convex_one(keys[:2], np.array([1.0, np.nan]), keys[:0], scores[:0], 0.5, 0.5, 1)[0]
    id_of = str
    repeated = _convex_one((keys, scores), (keys[:0], scores[:0]), [0.5, 0.5], id_of, positional=True)
    assert repeated is None  # the batch computation handles repeats, as without the kernels


def _columns(ids: list[str]):
    raw = [i.encode("utf-8") for i in ids]
    offsets = np.array([0, *np.cumsum([len(r) for r in raw])], dtype=np.int64)
    id_bytes = np.frombuffer(b"".join(raw), dtype=np.uint8)
    id_bytes.flags.writeable = offsets.flags.writeable = False
    return id_bytes, offsets


@pytest.mark.parametrize("collapse", [False, True])
@pytest.mark.parametrize("seed", range(30))
def test_compiled_authority_order_equals_numpy_with_ties_by_passage_id(compiled, seed, collapse):
    """Many equal scores: ties go by passage id as strings compare ("d10#0" < "d2#0" < "dé#0"), which
    is not the positions' order; with `collapse`, each text once at its best-ranked copy."""
    rng = np.random.default_rng(500 + seed)
    n_passages = 80
    ids = [f"d{i}#{i % 3}" if i % 7 else f"d\u00e9{i}#0" for i in range(n_passages)]
    id_bytes, offsets = _columns(ids)
    n = int(rng.integers(1, 60))
    positions = rng.choice(n_passages, n, replace=False).astype(np.int64)
    scores = rng.integers(0, 4, n) / 4.0 if seed % 2 else rng.standard_normal(n)
    hosts = rng.integers(0, 9, n_passages).astype(np.int32)  # the host column: a code per passage
    hosts.flags.writeable = False
    host_tiers = rng.integers(0, 4, 9).astype(np.int8)
    tiers = host_tiers[hosts[positions]]
    text_keys = rng.integers(0, 12, n_passages).astype(np.uint64)
    text_keys.flags.writeable = False
    weight = float(rng.choice([0.0, 0.05, 0.5]))
    prior = weight * _PRIOR_BY_TIER[tiers]
    (order,), final = _reranked(scores, scores, prior, [n], lambda j: ids[positions[j]])
    if collapse:
        order = TextCollapse(text_keys)(order, positions)
    ok, got_final, got_prior, got_order = compiled.rerank_positions(
        scores, positions, hosts, host_tiers, _PRIOR_BY_TIER, weight, MIN_SPAN_OF_SCALE, id_bytes, offsets,
        text_keys if collapse else text_keys[:0])  # fmt: skip
    assert ok
    assert got_order.tolist() == order
    assert got_final.tobytes() == final.tobytes() and got_prior.tobytes() == prior.tobytes()


def test_compiled_authority_order_hands_back_non_finite_scores_and_unknown_positions(compiled):
    id_bytes, offsets = _columns(["a#0", "b#0"])
    hosts, host_tiers, positions = np.zeros(2, dtype=np.int32), np.zeros(1, dtype=np.int8), np.array([0, 1], dtype=np.int64)
    no_texts = np.zeros(0, dtype=np.uint64)
    call = lambda scores, at: compiled.rerank_positions(scores, at, hosts, host_tiers, _PRIOR_BY_TIER, 0.05, 0.1, id_bytes,  # noqa: E731
                                                        offsets, no_texts)  # fmt: skip
    assert call(np.array([1.0, 0.5]), positions)[0]
    assert not call(np.array([np.nan, 0.5]), positions)[0]
    assert not call(np.array([np.inf, 0.5]), positions)[0]
    assert not call(np.array([1.0, 0.5]), np.array([0, -1], dtype=np.int64))[0]


def test_compiled_unpacking_of_one_querys_hits_equals_numpy(compiled, monkeypatch):
    """One query's hits as the Lucene helper packs them (its hit count, the doc ids, the scores' bits):
    the same column positions and scores compiled as in numpy. Words that do not hold their count's
    hits, or a doc id outside the map, go to numpy (which refuses the latter)."""
    from types import SimpleNamespace

    from backends.lucene.topk import LuceneTopK

    rng = np.random.default_rng(9)
    doc_positions = rng.permutation(500).astype(np.int32)
    doc_positions.flags.writeable = False  # the build's map is a read-only memory map
    topk = SimpleNamespace(_doc_positions=doc_positions)
    unpack = LuceneTopK._positions_and_scores

    def packed(count: int, docs: np.ndarray, scores: np.ndarray) -> np.ndarray:
        words = np.concatenate(([count], docs, scores.view(np.int32))).astype("<i4")
        return np.frombuffer(words.tobytes(), dtype="<i4")  # read-only, as from the helper's bytes

    for count in (0, 1, 7, 116):
        docs = rng.choice(500, count, replace=False).astype(np.int32)
        scores = np.append(rng.standard_normal(count - 1), -0.0).astype(np.float32) if count else np.zeros(0, np.float32)
        words = packed(count, docs, scores)
        ok, positions, got = compiled.unpack_one(words, doc_positions)
        assert ok and positions.dtype == np.int64 and got.dtype == np.float32
        assert positions.tolist() == doc_positions[docs].tolist() and got.tobytes() == scores.tobytes()
        (numpy_positions, numpy_scores), = _numpy(unpack, topk, words, 1)
        assert positions.tolist() == numpy_positions.tolist() and got.tobytes() == numpy_scores.tobytes()
        calls = []
        monkeypatch.setattr(compiled, "unpack_one", lambda *args, real=compiled.unpack_one: calls.append(1) or real(*args))
        (served_positions, served_scores), = unpack(topk, words, 1)  # the compiled form, where on
        monkeypatch.undo()
        assert calls == [1]
        assert served_positions.tolist() == positions.tolist() and served_scores.tobytes() == got.tobytes()
    docs, scores = np.array([3, 500], dtype=np.int32), np.ones(2, dtype=np.float32)
    assert not compiled.unpack_one(packed(2, docs, scores), doc_positions)[0]  # doc 500: past the map
    with pytest.raises(IndexError):
        unpack(topk, packed(2, docs, scores), 1)
    short = packed(3, docs[:1], scores[:1])  # the words of one hit, said to be 3: numpy's answer, whatever it is
    assert not compiled.unpack_one(short, doc_positions)[0]
    served, numpy_served = unpack(topk, short, 1)[0], _numpy(unpack, topk, short, 1)[0]
    assert served[0].tolist() == numpy_served[0].tolist() and served[1].tobytes() == numpy_served[1].tobytes()


@pytest.fixture(scope="module")
def scifact(scifact_flat_index, scifact_chunked_index):
    from tests.conftest import data_dir
    from ranker.pipeline import SearchPipeline

    with open(data_dir("scifact") / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh][:DATA_QUERIES]
    pipelines = [SearchPipeline.open(build) for build in (scifact_flat_index, scifact_chunked_index)]
    yield [(p, queries, p.dense.encode(queries)) for p in pipelines]
    for p in pipelines:
        p.close()


@pytest.mark.parametrize(
    "options",
    [{}, {"k": 3, "k0": 7}, {"per_doc": 0, "dedupe_text": False}, {"authority_weight": 0.5, "k": 30},
     {"k": 40, "page_size": 10}, {"exclude_domains": ("example.org",), "max_per_domain": 2}],
    ids=["defaults", "shallow", "no-collapse", "strong-prior", "window", "filtered"],
)  # fmt: skip
def test_single_searches_rank_the_same_compiled_and_in_numpy(compiled, scifact, options, monkeypatch):
    """Each query alone (whole documents, and chunked documents with copies of one text), given its
    vector and encoded inside `rank`: the same hits, field for field, with the kernels as without.
    The kernels must have served the searches they take (the window and filters go to numpy)."""
    from ranker.pipeline import SearchOptions

    calls = {"convex_one": 0, "rerank_positions": 0}
    for name in calls:
        real = getattr(compiled, name)

        def counted(*args, real=real, name=name):
            calls[name] += 1
            return real(*args)

        monkeypatch.setattr(compiled, name, counted)
    opts = SearchOptions(mode="hybrid", **{"k": 10, **options})
    for pipeline, queries, vectors in scifact:
        def ranked():  # each query alone, given its vector, then ten encoded inside `rank`
            return ([pipeline.rank([q], opts, vectors[i : i + 1])[0] for i, q in enumerate(queries)]
                    + [pipeline.rank([q], opts)[0] for q in queries[:10]])  # fmt: skip

        got, expected = ranked(), _numpy(ranked)
        assert [[tuple(h) for h in hits] for hits in got] == [[tuple(h) for h in hits] for hits in expected]
        assert sum(len(hits) for hits in got) >= len(got) * min(opts.k, 10) * 0.9
    searches = 2 * (DATA_QUERIES + 10)
    assert calls["convex_one"] >= searches  # every search's fusion, windowed or not
    taken = "page_size" not in options and "exclude_domains" not in options  # a window, filters: numpy
    assert calls["rerank_positions"] >= searches if taken else calls["rerank_positions"] == 0


def test_enable_without_a_working_numba_keeps_numpy_and_says_so(monkeypatch, caplog):
    def broken():
        raise ImportError("No module named 'numba'")

    saved = kernels.active()
    monkeypatch.setattr(kernels, "_compile", broken)
    kernels.disable()
    try:
        with caplog.at_level(logging.WARNING, logger="drsearch.kernels"):
            assert kernels.enable() is False
        assert kernels.active() is None
        assert "compiled fusion unavailable, numpy kept: No module named 'numba'" in caplog.text
    finally:
        kernels._compiled = saved


def test_a_serving_process_compiles_them_unless_told_not_to(scifact_flat_index, monkeypatch):
    """`open_validated` (serve, mcp) turns the kernels on before its warm-ups;
    DRSEARCH_COMPILED_FUSION=false keeps the numpy forms."""
    from service.validate import open_validated

    saved = kernels.active()
    kernels.disable()
    try:
        monkeypatch.setenv("DRSEARCH_COMPILED_FUSION", "false")
        open_validated(scifact_flat_index).close()
        assert kernels.active() is None
        monkeypatch.delenv("DRSEARCH_COMPILED_FUSION")
        open_validated(scifact_flat_index).close()
        assert kernels.active() is not None
    finally:
        kernels._compiled = saved
