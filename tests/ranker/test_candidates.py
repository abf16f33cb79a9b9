"""The lean hybrid path (`ranker.candidates`) ranks exactly as `fusion.convex` over a `Hit` per
candidate: on synthetic runs with every edge case, and through `SearchPipeline.rank` on SciFact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.hit import Hit
from indexer.schema import doc_id_of
from ranker import fusion
from ranker.candidates import _convex_one, convex_arrays, convex_positions_many, ties_by_id


def _hits(ids, scores, leg):
    if leg == "bm25":
        return [Hit(p, doc_id_of(p), s, r, s, None, None, None, r) for r, (p, s) in enumerate(zip(ids, scores), 1)]
    return [Hit(p, doc_id_of(p), s, r, None, s, None, None, None, r) for r, (p, s) in enumerate(zip(ids, scores), 1)]


def _run(rng, n, pool, ties, repeats=True):
    ids = [f"d{int(i)}#0" for i in rng.choice(pool, n, replace=repeats)]  # repeats within a run on purpose
    raw = rng.integers(0, 4, n).astype(float) if ties else rng.standard_normal(n).astype(np.float32)
    return ids, sorted(raw.tolist(), reverse=True)


@pytest.mark.parametrize("seed", range(40))
def test_convex_arrays_equals_convex_hit_for_hit(seed):
    rng = np.random.default_rng(seed)
    n_lex, n_dense = [(0, 0), (1, 0), (0, 1), (1, 1)][seed] if seed < 4 else rng.integers(0, 30, 2).tolist()
    ties = seed % 3 == 0
    lexical = _run(rng, n_lex, 25, ties)
    dense = _run(rng, n_dense, 25, ties)
    w = float(rng.uniform(0, 1))
    expected = fusion.convex([_hits(*lexical, "bm25"), _hits(*dense, "dense")], weights=[1 - w, w])
    got = convex_arrays(lexical, dense, [1 - w, w])
    assert len(got) == len(expected)
    assert list(got) == expected
    assert got.has_lexical == any(h.bm25 for h in expected)


@pytest.mark.parametrize("repeats", [True, False], ids=["repeats", "each-once"])
@pytest.mark.parametrize("seed", range(40))
def test_convex_positions_equals_convex_hit_for_hit(seed, repeats):
    """Keyed by column positions (the FAISS leg's, the Lucene leg's ids looked up): ties still go by
    passage id, whose string order is not the positions' order ("d10#0" < "d2#0"). Runs that name
    each passage once, as the legs' do, take a single search's shorter computation."""
    rng = np.random.default_rng(1000 + seed)
    n_lex, n_dense = [(0, 0), (1, 0), (0, 1), (1, 1)][seed] if seed < 4 else rng.integers(0, 26, 2).tolist()
    ties = seed % 2 == 0
    lexical, dense = _run(rng, n_lex, 25, ties, repeats), _run(rng, n_dense, 25, ties, repeats)
    position_of = lambda pid: int(pid[1:].split("#")[0])  # noqa: E731
    id_of = lambda position: f"d{position}#0"  # noqa: E731
    w = float(rng.uniform(0, 1))
    expected = fusion.convex([_hits(*lexical, "bm25"), _hits(*dense, "dense")], weights=[1 - w, w])
    (got,) = convex_positions_many([(np.array([position_of(p) for p in lexical[0]], dtype=np.int64), lexical[1])],
                                   [(np.array([position_of(p) for p in dense[0]], dtype=np.int64), np.asarray(dense[1], dtype=np.float32))],
                                   [1 - w, w], id_of)  # fmt: skip
    assert list(got) == expected
    assert [got.ids[j] for j in got.order] == [h.passage_id for h in expected]
    assert [got.positions[j] for j in got.order] == [position_of(h.passage_id) for h in expected]


@pytest.mark.parametrize("seed", range(30))
def test_with_a_window_the_arrays_fuse_as_convex_hit_for_hit(seed):
    """Only each run's first `window` positions score (`fusion.convex(..., window=)`), in the batch
    computation (runs with repeats), in a single query's shorter one and keyed by ids."""
    rng = np.random.default_rng(2000 + seed)
    repeats = seed % 2 == 0
    lexical, dense = (_run(rng, int(n), 25, seed % 3 == 0, repeats) for n in rng.integers(0, 26, 2))
    window = int(rng.integers(1, 20))
    w = float(rng.uniform(0, 1))
    expected = fusion.convex([_hits(*lexical, "bm25"), _hits(*dense, "dense")], weights=[1 - w, w], window=window)
    position_of = lambda pid: int(pid[1:].split("#")[0])  # noqa: E731
    (keyed,) = convex_positions_many([(np.array([position_of(p) for p in lexical[0]], dtype=np.int64), lexical[1])],
                                     [(np.array([position_of(p) for p in dense[0]], dtype=np.int64), dense[1])],
                                     [1 - w, w], lambda position: f"d{position}#0", window)  # fmt: skip
    assert list(keyed) == expected
    assert list(convex_arrays(lexical, dense, [1 - w, w], window)) == expected


@pytest.mark.parametrize("seed", range(20))
def test_runs_narrower_than_the_span_floor_fuse_alike_on_every_path(seed):
    rng = np.random.default_rng(500 + seed)
    lexical = ([f"d{i}#0" for i in rng.choice(30, 6, replace=False)], sorted((9.0 + rng.uniform(0, 0.4, 6)).tolist(), reverse=True))
    dense = ([f"d{i}#0" for i in rng.choice(30, 5, replace=False)], sorted((0.8 + rng.uniform(0, 0.05, 5)).tolist(), reverse=True))
    expected = fusion.convex([_hits(*lexical, "bm25"), _hits(*dense, "dense")], weights=[0.5, 0.5])
    assert list(convex_arrays(lexical, dense, [0.5, 0.5])) == expected
    position_of = lambda pid: int(pid[1:].split("#")[0])  # noqa: E731
    keyed_lex = (np.array([position_of(p) for p in lexical[0]], dtype=np.int64), lexical[1])
    keyed_den = (np.array([position_of(p) for p in dense[0]], dtype=np.int64), dense[1])
    id_of = lambda position: f"d{position}#0"  # noqa: E731
    (keyed,) = convex_positions_many([keyed_lex], [keyed_den], [0.5, 0.5], id_of)  # a single query's computation
    assert list(keyed) == expected
    # ... and the batch's, beside a query of ordinary (wide) runs
    wide = (np.array([1, 2, 3], dtype=np.int64), [9.0, 4.0, 1.0])
    batch = convex_positions_many([keyed_lex, wide], [keyed_den, wide], [0.5, 0.5], id_of)
    assert list(batch[0]) == expected


def test_a_near_tie_in_one_leg_stays_a_near_tie_after_fusion():
    """A page and its mirror, scored one float ulp apart by BM25 (Anserini orders ties by id that way) and
    alike by the dense leg: min-max over the two stretched the ulp to the whole range, half the fused score,
    and the mirror on an unlisted site ranked above the original on a listed one, the authority prior
    (0.05) unable to close it; with copies shown once, the listed one was not shown at all."""
    bm25 = _hits(["a-blog#0", "z-fed#0"], [9.092200279, 9.092199326], "bm25")
    dense = _hits(["a-blog#0", "z-fed#0", "filler#0"], [0.8124627, 0.8124627, 0.41], "dense")
    fused = {h.passage_id: h.fused for h in fusion.convex([bm25, dense], weights=[0.5, 0.5])}
    assert abs(fused["a-blog#0"] - fused["z-fed#0"]) < 1e-6 < 0.05
    assert fusion.normalize_scores([3.0, 3.0]) == [1.0, 1.0] and fusion.normalize_scores([10.0, 9.5]) == [1.0, 0.5]


def test_a_single_query_takes_the_short_computation_unless_a_run_repeats_a_passage():
    id_of = lambda position: f"d{position}#0"  # noqa: E731
    lexical = (np.array([4, 2, 9], dtype=np.int64), np.array([3.0, 2.0, 1.0]))
    dense = (np.array([9, 5], dtype=np.int64), np.array([0.9, 0.5], dtype=np.float32))
    once = _convex_one(lexical, dense, [0.5, 0.5], id_of, positional=True)
    assert once is not None and sorted(once.positions.tolist()) == [2, 4, 5, 9]
    for runs in (((np.array([4, 2, 4], dtype=np.int64), lexical[1]), dense),
                 (lexical, (np.array([9, 9], dtype=np.int64), dense[1]))):  # fmt: skip
        assert _convex_one(*runs, [0.5, 0.5], id_of, positional=True) is None
        (general,) = convex_positions_many([runs[0]], [runs[1]], [0.5, 0.5], id_of)  # the batch computation
        assert sorted(general.positions.tolist()) == sorted(set(runs[0][0].tolist()) | set(runs[1][0].tolist()))


def test_a_batch_fuses_as_each_query_alone():
    """`convex_positions_many` (one array computation for all queries) gives each query what it
    gives that query alone: runs empty, tied, with repeats, keys shared across queries."""
    rng = np.random.default_rng(7)
    id_of = lambda position: f"d{position}#0"  # noqa: E731
    lexical, dense = [], []
    for q in range(60):
        n_lex, n_dense = [(0, 0), (3, 0), (0, 3)][q] if q < 3 else rng.integers(0, 40, 2).tolist()
        for runs, n, dtype in ((lexical, n_lex, np.float64), (dense, n_dense, np.float32)):
            keys = rng.integers(0, 30 if q % 2 else 3000, n)
            raw = rng.integers(0, 3, n).astype(float) if q % 3 == 0 else rng.standard_normal(n)
            runs.append((keys.astype(np.int64), np.sort(raw)[::-1].astype(dtype)))
    weights = [0.4, 0.6]
    together = convex_positions_many(lexical, dense, weights, id_of)
    assert len(together) == 60 and len(together[0]) == 0
    for got, lex, den in zip(together, lexical, dense):
        (alone,) = convex_positions_many([lex], [den], weights, id_of)
        assert list(got) == list(alone) and got.positions.tolist() == alone.positions.tolist()
        assert got.has_lexical == alone.has_lexical


def test_ties_by_id_orders_each_tied_run_by_id():
    ids = ["b", "a", "d", "c", "e"]
    order = np.array([4, 0, 1, 2, 3])
    key = np.array([1.0, 1.0, 1.0, 0.5, 0.5])  # indices 0-2 tie, 3-4 tie (as ranked by `order`)
    assert ties_by_id(order, [key[order.argsort()]], ids.__getitem__).tolist() == [1, 0, 4, 3, 2]
    assert ties_by_id(np.array([2, 0, 1]), [np.array([0.0, 1.0, 2.0])], ids.__getitem__).tolist() == [2, 0, 1]


@pytest.fixture(scope="module")
def scifact(scifact_flat_index):
    from ranker.pipeline import SearchPipeline
    from tests.conftest import DATA

    pipeline = SearchPipeline.open(scifact_flat_index)
    with open(DATA / "scifact" / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh][:200]
    yield pipeline, queries, pipeline.dense.encode(queries)
    pipeline.close()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"k": 3, "k0": 7},
        {"per_doc": 0, "authority_weight": 0.0},
        {"exclude_domains": ("example.org",), "max_per_domain": 2},
    ],
    ids=["defaults", "shallow", "no-prior", "filtered"],
)
def test_pipeline_ranks_the_same_with_and_without_the_lean_path(scifact, options):
    from ranker.pipeline import SearchOptions

    pipeline, queries, vectors = scifact
    opts = SearchOptions(mode="hybrid", **{"k": 10, **options})
    lean = pipeline.rank(queries, opts, vectors)
    try:
        pipeline.lean_fusion = False
        plain = pipeline.rank(queries, opts, vectors)
    finally:
        pipeline.lean_fusion = True
    assert [list(h) for h in lean] == [list(h) for h in plain]
    assert sum(len(h) for h in lean) >= len(queries)


@pytest.mark.parametrize("options", [{"mode": "hybrid"}, {"mode": "bm25"}, {"mode": "dense"}, {"mode": "hybrid", "fusion": "rrf"},
                                     {"mode": "hybrid", "fusion": "rescore"}, {"mode": "hybrid", "k0": 12, "authority_weight": 0.5},
                                     {"mode": "hybrid", "exclude_domains": ("example.org",), "max_per_domain": 2}],
                         ids=["hybrid", "bm25", "dense", "rrf", "rescore", "k0-12", "filtered"])  # fmt: skip
def test_a_page_further_down_keeps_the_first_pages_order(scifact, options):
    """Page 4 of 10 (offset 30) ranks k=40 with page_size 10, whose per-document collapse and filters
    search deeper than k=10's: its first 10 must be k=10's, or pages would repeat and skip hits."""
    from ranker.pipeline import SearchOptions

    pipeline, queries, vectors = scifact
    queries, vectors = queries[:60], vectors[:60]
    for page in (10, 11, 33):
        first = pipeline.rank(queries, SearchOptions(k=page, **options), vectors)
        deeper = pipeline.rank(queries, SearchOptions(k=page + 30, page_size=page, **options), vectors)
        assert [[h.passage_id for h in hits] for hits in first] == [[h.passage_id for h in hits[:page]] for hits in deeper]
        assert sum(len(hits) for hits in deeper) > (page + 20) * len(queries)


@pytest.mark.parametrize("options", [{"mode": "hybrid"}, {"mode": "hybrid", "fusion": "rescore"}, {"mode": "dense", "k0": 20}],
                         ids=["hybrid", "rescore", "dense-k0-20"])  # fmt: skip
def test_pages_past_the_scoring_depth_neither_repeat_nor_skip_a_hit(scifact, options):
    """The API and CLI page with k = offset + page and `page_size` = page: pages of 10 down to rank
    150 (past k0, where candidates rank by leg position) are the 150-long list, cut in tens."""
    from ranker.pipeline import SearchOptions

    pipeline, queries, vectors = scifact
    queries, vectors = queries[:30], vectors[:30]
    whole = pipeline.rank(queries, SearchOptions(k=150, page_size=10, **options), vectors)
    pages: list[list[str]] = [[] for _ in queries]
    for offset in range(0, 150, 10):
        for page, hits in zip(pages, pipeline.rank(queries, SearchOptions(k=offset + 10, page_size=10, **options), vectors)):
            page += [h.passage_id for h in hits[offset:]]
    assert pages == [[h.passage_id for h in hits] for hits in whole]
    # every list past k0 (rescore's are the BM25 leg's matches: 119 for one query of the subset)
    assert all(len(page) > 100 for page in pages) and sum(len(page) == 150 for page in pages) >= 25


@pytest.mark.parametrize("size", [1, 7])
def test_queries_rank_the_same_with_their_bm25_leg_run_during_encoding(scifact, monkeypatch, size):
    """Queries that the pipeline encodes itself have their BM25 leg run beside the encoding
    (`search_positions_later`), started by the encoder (`on_idle`: at once for one query, when a
    thread runs out of runs for a batch) before the leg's result is asked for; their hits are
    those of the same queries ranked with their vectors given."""
    from ranker.pipeline import SearchOptions

    pipeline, queries, vectors = scifact
    if pipeline.lexical.search_positions_later(queries[:1], 10) is None:
        pytest.skip("the index's BM25 leg runs on one thread: nothing to overlap")
    events: list[str] = []
    later = pipeline.lexical.search_positions_later

    def watched(*args):
        pending = later(*args)
        start, result = pending.start, pending.result
        pending.start = lambda: events.append("start") or start()
        pending.result = lambda: events.append("result") or result()
        return pending

    monkeypatch.setattr(pipeline.lexical, "search_positions_later", watched)
    opts = SearchOptions(mode="hybrid", k=10)
    for i in range(0, 140, size * 10):
        events.clear()
        together = pipeline.rank(queries[i : i + size], opts)
        assert events[:2] == ["start", "result"]  # started by the encoder, not by asking for the result
        assert together == pipeline.rank(queries[i : i + size], opts, vectors[i : i + size])


def test_a_batch_reranks_as_each_query_alone_ties_included(scifact):
    """`_authority_rerank_many` (one computation for the batch; a tie's passage id found by
    bisection over the queries' starts) ranks each query as `_authority_rerank` ranks its hits."""
    pipeline, _, _ = scifact
    columns = pipeline.sources.columns
    rng = np.random.default_rng(11)
    lexical, dense = [], []
    for q in range(12):
        n_lex, n_dense = (0, 0) if q in (0, 5) else rng.integers(1, 40, 2).tolist()  # empty lists among them
        for runs, n in ((lexical, n_lex), (dense, n_dense)):
            keys = rng.choice(min(len(columns), 3000), n, replace=False).astype(np.int64)
            runs.append((keys, np.sort(rng.integers(0, 3, n).astype(float))[::-1]))  # scores tie often
    lists = convex_positions_many(lexical, dense, [0.5, 0.5], columns.passage_id)
    together = pipeline._authority_rerank_many(lists, 0.3)
    assert sum(len(c) for c in lists) > 100
    for got, candidates in zip(together, lists):
        alone = pipeline._authority_rerank(list(candidates), 0.3, fused_by_score=True)
        (single,) = pipeline._authority_rerank_many([candidates], 0.3)  # a single search's shorter computation
        assert list(got) == list(alone) == list(single)
