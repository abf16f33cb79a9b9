"""Source filters pushed into the retrievers (Lucene filter clause, FAISS id restriction).

Over a small build of the synthetic scale corpus (the `scale_index` fixture), filtered results
must equal an exhaustive ranking filtered afterwards, and come from one retrieval per leg at the
serving depth (no deepening).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.scale_corpus import FIVE_DOC_DOMAIN


@pytest.fixture(scope="module")
def pipe(scale_index):
    from ranker.pipeline import SearchPipeline

    p = SearchPipeline.open(scale_index)
    yield p
    p.close()


class Spy:
    """Wraps a real retriever method and records the depth asked and the hits returned."""

    def __init__(self, obj, name):
        self.calls: list[tuple[int, int]] = []
        real = getattr(obj, name)

        def wrapper(queries, k, filters=None):
            out = real(queries, k, filters)
            self.calls.append((k, max((len(r[0] if isinstance(r, tuple) else r) for r in out), default=0)))  # raw: (ids or positions, scores)
            return out

        setattr(obj, name, wrapper)
        self._undo = lambda: delattr(obj, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._undo()


def _five_docs(pipe) -> set[str]:
    pos = np.flatnonzero(pipe.sources.host_mask(_filter(include_domains=(FIVE_DOC_DOMAIN,)))[pipe.sources.columns.host])
    return {pipe.sources.columns.passage_id(int(p)).rsplit("#", 1)[0] for p in pos}


def _filter(**kw):
    from ranker.filters import SourceFilter

    return SourceFilter(**kw)


def _query_for(pipe, doc_ids) -> str:
    """Words from each planted document's title, so every one of them matches."""
    words = []
    for d in sorted(doc_ids):
        words += pipe.store.document(d)["title"].split()[:3]
    return " ".join(words)


def _exhaustive(pipe, query, mode, filters, k, vectors=None):
    """The reference: rank everything (no filter, full depth), then filter and collapse exactly."""
    from ranker.filters import diversify
    from ranker.pipeline import SearchOptions

    full = pipe.rank([query], SearchOptions(k=pipe.lexical.size, mode=mode, k0=pipe.lexical.size, per_doc=0,
                                            authority_weight=0.0), vectors)[0]  # fmt: skip
    kept = [h for h in full if filters.accepts(h.passage_id, pipe.source_meta(h.passage_id))]
    return [h.passage_id for h in diversify(kept, pipe.source_meta, per_doc=1, max_per_domain=None)][:k]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_filter_to_five_documents_returns_them_without_deepening(pipe, mode):
    from ranker.pipeline import SearchOptions

    five = _five_docs(pipe)
    assert len(five) == 5
    query = _query_for(pipe, five)
    options = SearchOptions(k=5, mode=mode, include_domains=(FIVE_DOC_DOMAIN,), per_doc=1, authority_weight=0.0)
    filters = options.filters
    vectors = pipe.dense.encode([query])
    # hybrid takes the legs' raw lists of (column positions, scores) (ranker.candidates)
    lexical_call, dense_call = ("search_positions", "search_vectors_positions") if mode == "hybrid" else ("search", "search_vectors")
    with Spy(pipe.lexical, lexical_call) as bm25, Spy(pipe.dense, dense_call) as dense:
        hits = pipe.rank([query], options, vectors)[0]
    assert {h.doc_id for h in hits} == five
    if mode != "hybrid":  # hybrid fuses restricted runs: its normalisation differs from a full run's
        assert [h.passage_id for h in hits] == _exhaustive(pipe, query, mode, filters, 5, vectors)
    n_passages = int(pipe.sources.allowed(filters).sum())
    for spy in (bm25, dense):  # one call per leg used, at the serving depth, seeing only the 5 documents
        assert len(spy.calls) == (mode in ("bm25", "hybrid") if spy is bm25 else mode in ("dense", "hybrid"))
        for depth, returned in spy.calls:
            assert depth == pipe.settings.k0 and returned <= n_passages


@pytest.mark.parametrize(
    "kw",
    [
        {"published_after": "2010", "published_before": "2012-06"},
        {"exclude_domains": (FIVE_DOC_DOMAIN,), "published_before": "1999-12-31"},
        {"min_tier": 1},
        {"categories": ("statistics", "government")},
    ],
)
def test_prefiltered_bm25_equals_exhaustive_ranking_then_filter(pipe, kw):
    from ranker.pipeline import SearchOptions

    options = SearchOptions(k=10, mode="bm25", per_doc=1, authority_weight=0.0, **kw)
    filters = options.filters
    query = "cell growth and pressure distribution in the boundary layer"
    hits = pipe.rank([query], options)[0]
    assert [h.passage_id for h in hits] == _exhaustive(pipe, query, "bm25", filters, 10)
    assert len(hits) == 10


def test_bm25_scores_unchanged_by_the_filter_clause(pipe):
    from backends.base import Restriction

    query = "turbulent flow over a flat plate"
    plain = pipe.lexical.search([query], 50)[0]
    everything = pipe.lexical.search([query], 50, Restriction(exclude_hosts=(10**6,)))[0]
    assert [(h.passage_id, h.score) for h in everything] == [(h.passage_id, h.score) for h in plain]


def test_columns_match_the_store(pipe):
    cols = pipe.sources.columns
    rows = pipe.store.passages_by_id(cols.passage_id(i) for i in range(0, len(cols), 97))
    for pid, row in rows.items():
        assert cols.position(pid) == row.idx
        meta = pipe.source_meta(pid)
        assert meta.published == row.published and row.url and meta.host in row.url
    assert cols.position("no-such#0") is None


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_counting_what_a_date_bound_drops_leaves_the_ranking_as_it_is(pipe, mode):
    """The service and the CLI ask how many undated documents a date bound dropped (`undated`): the
    hits and scores must be those of the same search that does not ask, and the count must be the
    undated documents among the candidates when undated passages are allowed."""
    from ranker.pipeline import SearchOptions

    queries = ["cell growth and pressure distribution in the boundary layer", "turbulent flow over a flat plate",
               "protein expression in tumour cells"]  # fmt: skip
    options = SearchOptions(k=10, mode=mode, published_after="2008", published_before="2015-06", authority_weight=0.0)
    vectors = pipe.dense.encode(queries)
    plain = pipe.rank(queries, options, vectors)
    undated = [0] * len(queries)
    counted = pipe.rank(queries, options, vectors, undated)
    for a, b in zip(plain, counted):
        assert [(h.passage_id, h.score) for h in a] == [(h.passage_id, h.score) for h in b]
    assert sum(undated) > 0  # ~10 % of the corpus has no date
    pipe.rank(queries, options.model_copy(update={"include_undated": True}), vectors, undated)
    assert undated == [0] * len(queries)  # nothing dropped when undated documents are kept
