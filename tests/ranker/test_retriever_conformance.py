"""One conformance suite for every retriever (BM25 over Lucene, dense over FAISS).

Both run for real over one tiny build made here; each test states a property of the
`Retriever` protocol that callers (the pipeline, eval, the service) rely on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from indexer import layout  # noqa: E402
from indexer.build import build_index  # noqa: E402
from indexer.errors import QueryError  # noqa: E402
from indexer.settings import BuildSettings, DenseSettings  # noqa: E402
from ranker.bm25 import BM25Retriever  # noqa: E402
from ranker.dense import DenseRetriever  # noqa: E402
from ranker.hit import Hit  # noqa: E402
from ranker.retriever import Retriever  # noqa: E402
from tests.text_fixtures import DOCS  # noqa: E402

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


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("conformance")
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in ROWS))
    result = build_index([corpus], tmp / "idx", BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(device="cpu")))
    return result.build_dir, result.manifest


@pytest.fixture(scope="module", params=["bm25", "dense"])
def retriever(request: pytest.FixtureRequest, build: tuple[Path, dict]) -> Retriever:
    build_dir, manifest = build
    if request.param == "bm25":
        r: Retriever = BM25Retriever(build_dir / layout.LUCENE_DIR)
    else:
        r = DenseRetriever(build_dir, manifest, device="cpu")
    yield r
    r.close()


def leg_fields(r: Retriever, hit: Hit) -> tuple[float | None, int | None, float | None, int | None]:
    """(own leg score, own leg rank, other leg score, other leg rank)."""
    if r.name == "bm25":
        return hit.bm25, hit.bm25_rank, hit.dense, hit.dense_rank
    return hit.dense, hit.dense_rank, hit.bm25, hit.bm25_rank


def test_implements_the_protocol(retriever: Retriever) -> None:
    assert isinstance(retriever, Retriever) and retriever.name in {"bm25", "dense"}


@pytest.mark.parametrize("query, doc", [("lava from a volcanic vent", "volcano"), ("blockchain ledger miners", "bitcoin")])
def test_search_ranks_best_first_with_its_own_breakdown(retriever: Retriever, query: str, doc: str) -> None:
    hits = retriever.search(query, k=3)
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
    batch = retriever.batch_search(queries, k=k)
    assert len(batch) == len(queries)
    assert batch == [retriever.search(q, k=k) for q in queries]
    assert batch[1] == batch[3] and batch[1] != batch[0]
    assert all(len(hits) <= min(k, len(ROWS)) for hits in batch)


def test_k_above_corpus_size_returns_at_most_every_passage(retriever: Retriever) -> None:
    hits = retriever.search("water", k=1000)
    assert 0 < len(hits) <= len(ROWS) and len({h.passage_id for h in hits}) == len(hits)


def test_empty_batch(retriever: Retriever) -> None:
    assert retriever.batch_search([], k=5) == []


def test_lucene_syntax_is_plain_text(retriever: Retriever) -> None:
    hits = retriever.search('title:Jazz AND (blues OR "ragtime~2) -swing*', k=3)
    assert hits and hits[0].doc_id == "jazz"


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_bad_k_is_a_query_error(retriever: Retriever, k: object) -> None:
    with pytest.raises(QueryError, match="k must be a positive integer"):
        retriever.search("jazz", k=k)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="k must be a positive integer"):
        retriever.batch_search(["jazz", "lava"], k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_bad_query_is_a_query_error_even_inside_a_batch(retriever: Retriever, bad: object) -> None:
    with pytest.raises(QueryError):
        retriever.search(bad, k=3)  # type: ignore[arg-type]
    with pytest.raises(QueryError):
        retriever.batch_search(["jazz", bad, "lava"], k=3)  # type: ignore[list-item]


def test_bm25_matches_pyserini_exactly_including_ties(build: tuple[Path, dict]) -> None:
    """BM25 hits (ids, scores, order) are Pyserini's own for the same index and parameters."""
    build_dir, _ = build
    ours = BM25Retriever(build_dir / layout.LUCENE_DIR)
    from pyserini.search.lucene import LuceneSearcher  # after our JVM bootstrap (ours started it)

    reference = LuceneSearcher(str(build_dir / layout.LUCENE_DIR))
    reference.set_bm25(0.9, 0.4)
    try:
        for hits, q in zip(ours.batch_search(QUERIES, k=5), QUERIES):
            expected = [(d.docid, d.score) for d in reference.search(q, k=5)]
            assert [(h.passage_id, h.score) for h in hits] == expected
        twins = [h.doc_id for h in ours.search("matcha tea bowl", k=2)]
        assert twins == ["twin-a", "twin-b"]  # equal scores: ordered by id, as Anserini does
    finally:
        reference.close()
        ours.close()
