"""One conformance suite for every backend's searcher (`backends.registry.BACKENDS`).

Lucene and FAISS run for real over one tiny build made here; a backend that needs a server
(Elasticsearch: DRSEARCH_ES_URL) is skipped with the reason when none is configured. Each test
states a property of `backends.base.LexicalRetriever` / `VectorRetriever` that the pipeline relies on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from backends import registry  # noqa: E402
from backends.base import LEXICAL, LexicalRetriever, VectorRetriever  # noqa: E402
from backends.hit import Hit  # noqa: E402
from backends.manifest import Manifest  # noqa: E402
from indexer import layout  # noqa: E402
from indexer.build import build_index  # noqa: E402
from indexer.errors import QueryError  # noqa: E402
from indexer.settings import BuildSettings, DenseSettings  # noqa: E402
from tests.text_fixtures import DOCS  # noqa: E402

Retriever = LexicalRetriever | VectorRetriever
# Backends that need a server: the env var that names it.
SERVER_ENV = {"elasticsearch": "DRSEARCH_ES_URL"}

# Two exact copies of one text under different ids: BM25 scores them equally, so the order of
# the pair shows the tie-break rule.
TWINS = [("twin-b", "Tea ceremony", "Matcha is whisked with hot water in a tea bowl during the ceremony."),
         ("twin-a", "Tea ceremony", "Matcha is whisked with hot water in a tea bowl during the ceremony.")]  # fmt: skip
ROWS = DOCS + TWINS
QUERIES = [
    "lava from a volcanic vent",
    "jazz improvisation in New Orleans",
    "matcha tea bowl",
    "jazz improvisation in New Orleans",  # a duplicate keeps its own slot
    "blockchain ledger miners",
    "tides moon sun",
]


@pytest.fixture(scope="module", params=sorted(registry.BUILDS))
def build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """One tiny build per registered build backend (each writes its own legs)."""
    name = request.param
    if name in SERVER_ENV and not os.environ.get(SERVER_ENV[name]):
        pytest.skip(f"backend '{name}' needs a server: set {SERVER_ENV[name]} to run its conformance tests")
    tmp = tmp_path_factory.mktemp(f"conformance-{name}")
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in ROWS))
    settings = BuildSettings(backend=name, chunk_words=0, quiet=True, dense=DenseSettings(device="cpu"))
    result = build_index([corpus], tmp / "idx", settings)
    return result.build_dir, result.manifest


@pytest.fixture(scope="module", params=["bm25", "dense"])
def retriever(request: pytest.FixtureRequest, build: tuple[Path, Manifest]) -> Retriever:
    """The searcher of one leg, opened through the registry exactly as the pipeline opens it."""
    build_dir, manifest = build
    legs = registry.open_legs(build_dir, manifest)
    yield legs[request.param]
    for r in legs.values():
        r.close()


def search(r: Retriever, queries: list[str], k: object) -> list[list[Hit]]:
    """The leg's own search: query texts for a lexical leg, their encodings for a vector leg."""
    if isinstance(r, LexicalRetriever):
        return r.search(queries, k)  # type: ignore[arg-type]
    return r.search_vectors(r.encode(queries), k)  # type: ignore[arg-type]


def search_one(r: Retriever, query: str, k: object) -> list[Hit]:
    return search(r, [query], k)[0]


def leg_fields(r: Retriever, hit: Hit) -> tuple[float | None, int | None, float | None, int | None]:
    """(own leg score, own leg rank, other leg score, other leg rank)."""
    if r.name == LEXICAL:
        return hit.bm25, hit.bm25_rank, hit.dense, hit.dense_rank
    return hit.dense, hit.dense_rank, hit.bm25, hit.bm25_rank


def test_implements_its_interface(retriever: Retriever) -> None:
    kind = LexicalRetriever if retriever.name == LEXICAL else VectorRetriever
    assert isinstance(retriever, kind) and retriever.size == len(ROWS)


@pytest.mark.parametrize("query, doc", [("lava from a volcanic vent", "volcano"), ("blockchain ledger miners", "bitcoin")])
def test_search_ranks_best_first_with_its_own_breakdown(retriever: Retriever, query: str, doc: str) -> None:
    hits = search_one(retriever, query, k=3)
    assert hits[0].doc_id == doc
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    for h in hits:
        own, own_rank, other, other_rank = leg_fields(retriever, h)
        assert (own, own_rank) == (h.score, h.rank) and (other, other_rank) == (None, None)
        assert h.passage_id.startswith(h.doc_id + "#") and h.fused is None and h.authority is None


@pytest.mark.parametrize("k", [1, 3, 100])
def test_batch_equals_one_search_per_query_in_order(retriever: Retriever, k: int) -> None:
    queries = QUERIES * 2  # more than 10, so "10" sorts before "2" wherever ids are strings
    batch = search(retriever, queries, k=k)
    assert len(batch) == len(queries)
    assert batch == [search_one(retriever, q, k=k) for q in queries]
    assert batch[1] == batch[3] and batch[1] != batch[0]
    assert all(len(hits) <= min(k, len(ROWS)) for hits in batch)


def test_k_above_corpus_size_returns_at_most_every_passage(retriever: Retriever) -> None:
    hits = search_one(retriever, "water", k=1000)
    assert 0 < len(hits) <= len(ROWS) and len({h.passage_id for h in hits}) == len(hits)


def test_empty_batch(retriever: Retriever) -> None:
    assert search(retriever, [], k=5) == []


def test_lucene_syntax_is_plain_text(retriever: Retriever) -> None:
    hits = search_one(retriever, 'title:Jazz AND (blues OR "ragtime~2) -swing*', k=3)
    assert hits and hits[0].doc_id == "jazz"


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_bad_k_is_a_query_error(retriever: Retriever, k: object) -> None:
    with pytest.raises(QueryError, match="k must be a positive integer"):
        search_one(retriever, "jazz", k=k)
    with pytest.raises(QueryError, match="k must be a positive integer"):
        search(retriever, ["jazz", "lava"], k=k)


def test_source_filters_are_accepted(retriever: Retriever) -> None:
    """A backend may pre-filter; one that does not must still accept the argument (the pipeline post-filters)."""
    from ranker.filters import SourceFilter

    none = SourceFilter()
    if isinstance(retriever, LexicalRetriever):
        hits = retriever.search(["jazz improvisation"], 3, none)
    else:
        hits = retriever.search_vectors(retriever.encode(["jazz improvisation"]), 3, none)
    assert hits == search(retriever, ["jazz improvisation"], 3)


def test_vector_leg_scores_given_passages(retriever: Retriever) -> None:
    if not isinstance(retriever, VectorRetriever):
        pytest.skip("vector legs only")
    q = retriever.encode(["jazz improvisation in New Orleans"])
    run = retriever.search_vectors(q, 4)[0]
    scores = retriever.scores_for(q, [[h.passage_id for h in reversed(run)]])[0]
    assert list(scores) == pytest.approx([h.score for h in reversed(run)], abs=1e-5)


def test_lucene_matches_pyserini_exactly_including_ties(build: tuple[Path, Manifest]) -> None:
    """Lucene BM25 hits (ids, scores, order) are Pyserini's own for the same index and parameters."""
    build_dir, manifest = build
    if manifest.bm25.backend != "lucene":
        pytest.skip("Lucene only")
    ours = registry.open_legs(build_dir, manifest)[LEXICAL]
    from pyserini.search.lucene import LuceneSearcher  # after our JVM bootstrap (ours started it)

    reference = LuceneSearcher(str(build_dir / layout.LUCENE_DIR))
    reference.set_bm25(0.9, 0.4)
    try:
        for hits, q in zip(ours.search(QUERIES, k=5), QUERIES):
            expected = [(d.docid, d.score) for d in reference.search(q, k=5)]
            assert [(h.passage_id, h.score) for h in hits] == expected
        twins = [h.doc_id for h in ours.search(["matcha tea bowl"], k=2)[0]]
        assert twins == ["twin-a", "twin-b"]  # equal scores: ordered by id, as Anserini does
    finally:
        reference.close()
        ours.close()
