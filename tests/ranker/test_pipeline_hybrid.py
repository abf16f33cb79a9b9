"""Hybrid paths of SearchPipeline over a tiny real index (Lucene + FAISS + SQLite): each fusion
method, the per-leg depth k0, and query vectors encoded by the caller."""

from __future__ import annotations

import json

import pytest

from indexer.build import build_index
from indexer.settings import BuildSettings
from ranker.pipeline import SearchOptions, SearchPipeline
from tests.text_fixtures import DOCS

QUERIES = ["how do plants make sugar from sunlight", "yeast makes the dough rise", "moon raises the sea level"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hybrid")
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    build_index([corpus], tmp / "idx", BuildSettings(chunk_words=0, quiet=True))
    p = SearchPipeline.open(tmp / "idx")
    yield p
    p.close()


def options(**kw) -> SearchOptions:
    return SearchOptions(**{"k": 5, "mode": "hybrid", "per_doc": 0, "authority_weight": 0.0, **kw})


def test_rrf_scores_are_the_sum_over_legs_of_one_over_60_plus_rank(pipeline):
    for hits in pipeline.rank(QUERIES, options(fusion="rrf")):
        assert hits
        for h in hits:
            expected = sum(1.0 / (60 + r) for r in (h.bm25_rank, h.dense_rank) if r is not None)
            assert h.fused == pytest.approx(expected)
        assert [h.fused for h in hits] == sorted((h.fused for h in hits), reverse=True)


def test_rescore_reorders_bm25_candidates_by_dense_score(pipeline):
    for query, hits in zip(QUERIES, pipeline.rank(QUERIES, options(fusion="rescore"))):
        bm25 = {h.passage_id for h in pipeline.lexical.search([query], 100)[0]}
        assert hits and {h.passage_id for h in hits} <= bm25  # never a passage BM25 did not find
        assert all(h.bm25_rank is not None for h in hits)
        assert [h.dense for h in hits] == sorted((h.dense for h in hits), reverse=True)
    top = pipeline.rank(["yeast makes the dough rise"], options(fusion="rescore", k=1))[0][0]
    assert top.doc_id == "bread"


def test_k0_bounds_each_leg(pipeline):
    for hits in pipeline.rank(QUERIES, options(k=2, k0=3)):
        assert hits
        for h in hits:
            assert all(r is None or r <= 3 for r in (h.bm25_rank, h.dense_rank))
    deep = pipeline.rank(QUERIES, options(k=12, k0=12))
    assert any((h.dense_rank or 0) > 3 for hits in deep for h in hits)  # the bound above is k0's doing


def test_caller_encoded_vectors_give_identical_results(pipeline):
    vectors = pipeline.encode(QUERIES)
    for mode in ("dense", "hybrid"):
        for fusion in ("convex", "rrf", "rescore"):
            opts = options(mode=mode, fusion=fusion)
            assert pipeline.rank(QUERIES, opts, vectors) == pipeline.rank(QUERIES, opts)
    with pytest.raises(ValueError, match="2 query vectors for 3 queries"):
        pipeline.rank(QUERIES, options(), vectors[:2])


def test_the_open_pipeline_and_its_encoder_are_frozen_out_of_the_garbage_collector(pipeline):
    import gc

    pipeline.rank(QUERIES[:1], options())  # loads the query encoder
    tracked = {id(o) for o in gc.get_objects()}  # generations 0-2 only: frozen objects are not walked
    assert gc.get_freeze_count() > 0
    assert id(pipeline) not in tracked and id(pipeline.dense._model) not in tracked
    hits = pipeline.rank(QUERIES[:1], options())[0]
    assert hits and id(hits) in {id(o) for o in gc.get_objects()}  # what a query creates is collected as usual


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Press releases sharing their last paragraph, a report on a tier-1 site and a mirror (BM25 + dense)."""
    from tests.text_fixtures import press_release_docs

    tmp = tmp_path_factory.mktemp("copies")
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in press_release_docs()))
    build_index([corpus], tmp / "idx", BuildSettings(chunk_words=40, quiet=True))
    p = SearchPipeline.open(tmp / "idx")
    yield p
    p.close()


def test_hybrid_lists_show_each_text_once_on_the_lean_path_as_on_the_hit_path(copies):
    """The lean path (candidates as arrays) collapses copies as the `Hit` path does, pages included."""
    from tests.text_fixtures import FUND_QUERY, REPORT_QUERY

    def texts(hits):
        rows = copies.store.passages_by_id([h.passage_id for h in hits])
        return [" ".join(rows[h.passage_id].text.casefold().split()) for h in hits]

    queries = [FUND_QUERY, REPORT_QUERY]
    for opts in (options(k=8), options(k=8, per_doc=1, authority_weight=0.05), options(k=16, page_size=8, k0=6)):
        lean = copies.rank(queries, opts)
        try:
            copies.lean_fusion = False
            plain = copies.rank(queries, opts)
        finally:
            copies.lean_fusion = True
        assert lean == plain
        assert all(len(hits) == opts.k and len(set(texts(hits))) == opts.k for hits in lean), opts
    first = copies.rank(queries, options(k=8))
    assert [hits[:8] for hits in copies.rank(queries, options(k=16, page_size=8))] == first  # page 2 follows page 1
    repeated = copies.rank(queries, options(k=8, dedupe_text=False))
    assert all(len(set(texts(hits))) < 8 for hits in repeated)  # without the collapse: copies
