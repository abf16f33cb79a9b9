"""DenseRetriever over a real tiny build (bundled MiniLM + FAISS): search, batching, rescoring, errors."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from indexer import layout  # noqa: E402
from indexer.chunker import ChunkSettings, chunk_document  # noqa: E402
from indexer.dense import build_dense_index, load_encoder  # noqa: E402
from indexer.errors import ConfigError, IndexFormatError, QueryError  # noqa: E402
from indexer.schema import Document  # noqa: E402
from indexer.settings import DenseSettings  # noqa: E402
from indexer.store import Store, StoreWriter  # noqa: E402
from ranker.dense import DenseRetriever  # noqa: E402
from ranker.hit import Hit  # noqa: E402
from ranker.retriever import Retriever  # noqa: E402
from tests.text_fixtures import DOCS



@pytest.fixture(scope="module")
def model():
    return load_encoder(DenseSettings(device="cpu"))


def _build(root: Path, model, settings: DenseSettings) -> tuple[Path, dict]:
    build = root / "build"
    build.mkdir(parents=True)
    writer = StoreWriter(build / layout.STORE)
    for doc_id, title, text in DOCS:
        doc = Document(doc_id=doc_id, text=text, title=title)
        writer.add(doc, chunk_document(doc, ChunkSettings(target_words=0)))
    writer.close()
    store = Store(build / layout.STORE)
    section = build_dense_index(store, build / layout.DENSE_DIR, root / "embeddings", settings, quiet=True, model=model)
    store.close()
    return build, {"format_version": 1, "dense": section}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, model) -> tuple[Path, dict]:
    return _build(tmp_path_factory.mktemp("exact"), model, DenseSettings(device="cpu"))


@pytest.fixture(scope="module")
def retriever(built, model) -> DenseRetriever:
    r = DenseRetriever(*built, model=model)
    yield r
    r.close()


def test_conforms_to_protocol(retriever: DenseRetriever) -> None:
    assert isinstance(retriever, Retriever)
    assert retriever.name == "dense"


@pytest.mark.parametrize(
    "query, doc",
    [
        ("how do green plants make sugar from light", "photo"),
        ("why does the sea level go up and down every day", "tides"),
        ("how does an injection protect you from disease", "vaccine"),
        ("crypto money ledger", "bitcoin"),
    ],
)
def test_paraphrased_query_finds_right_doc(retriever: DenseRetriever, query: str, doc: str) -> None:
    hits = retriever.search(query, k=3)
    assert hits[0].doc_id == doc
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(h.dense == h.score and h.dense_rank == h.rank and h.bm25 is None for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_batch_search_matches_search_and_k_above_n(retriever: DenseRetriever) -> None:
    queries = ["volcanic eruption lava", "improvised swing music", "board game strategy"]
    batch = retriever.batch_search(queries, k=4)
    assert len(batch) == 3
    for q, hits in zip(queries, batch):
        single = retriever.search(q, k=4)
        assert [h.passage_id for h in hits] == [h.passage_id for h in single]
        assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=1e-5)
    everything = retriever.search("anything at all", k=1000)
    assert len(everything) == len(DOCS)
    assert sorted(h.passage_id for h in everything) == sorted(f"{d}#0" for d, _, _ in DOCS)
    assert retriever.batch_search([], k=5) == []


def test_search_vectors_and_scores_for(retriever: DenseRetriever) -> None:
    q = retriever.encode_queries(["how do green plants make sugar from light", "deep sleep memory"])
    assert q.shape == (2, 384) and q.dtype == np.float32
    hits = retriever.search_vectors(q, k=5)
    assert hits[0][0].passage_id == "photo#0" and hits[1][0].passage_id == "sleep#0"
    cands = [[retriever.passage_index(h.passage_id) for h in run] for run in hits]
    rescored = retriever.scores_for(q, cands)
    for run, scores in zip(hits, rescored):
        assert scores.dtype == np.float32
        assert scores == pytest.approx([h.score for h in run], abs=1e-5)
    # arbitrary candidates, any order, including empty
    idx_jazz = retriever.passage_index("jazz#0")
    out = retriever.scores_for(q[:1], [[idx_jazz, 0]])
    assert out[0][1] == pytest.approx(hits[0][0].score, abs=1e-5)
    assert retriever.scores_for(q[:1], [[]])[0].shape == (0,)
    assert retriever.passage_index("nope#0") is None
    assert retriever.passage_index("photo#0") == 0
    with pytest.raises(IndexError):
        retriever.scores_for(q[:1], [[len(DOCS)]])
    with pytest.raises(ValueError):
        retriever.scores_for(q, [[0]])
    with pytest.raises(ConfigError):
        retriever.search_vectors(np.zeros((1, 10), dtype=np.float32), k=3)


def test_bad_queries_and_k(retriever: DenseRetriever) -> None:
    with pytest.raises(QueryError):
        retriever.search("   ", k=3)
    with pytest.raises(QueryError):
        retriever.search("jazz", k=0)
    with pytest.raises(QueryError):
        retriever.batch_search(["jazz", ""], k=3)


def test_lazy_thread_safe_first_use(built) -> None:
    r = DenseRetriever(*built, device="cpu")  # loads the encoder itself from the manifest
    assert r._index is None and r._model is None  # nothing loaded at construction
    results: list[list[Hit]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(r.search("lava from a mountain", k=2))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(res[0].passage_id == "volcano#0" for res in results)
    r.close()


def test_hnsw_index_search(tmp_path: Path, model) -> None:
    settings = DenseSettings(device="cpu", ann="auto", exact_max=4, hnsw_m=8, hnsw_ef_construction=32, hnsw_ef_search=17)
    build, manifest = _build(tmp_path, model, settings)
    assert manifest["dense"]["ann"] == "hnsw"
    r = DenseRetriever(build, manifest, model=model)
    assert r._ensure_index().hnsw.efSearch == 17
    assert r.search("improvised swing music from New Orleans", k=3)[0].passage_id == "jazz#0"
    q = r.encode_queries(["chess"])
    idx = [r.passage_index("chess#0")]
    assert r.scores_for(q, [idx])[0][0] == pytest.approx(r.search("chess", k=1)[0].score, abs=1e-5)
    assert len(r.search("anything", k=100)) <= len(DOCS)
    r.close()


def test_no_dense_section(tmp_path: Path) -> None:
    for manifest in ({"format_version": 1, "dense": None}, {"format_version": 1}):
        with pytest.raises(IndexFormatError) as err:
            DenseRetriever(tmp_path, manifest)
        assert "built without the dense leg" in str(err.value)


def test_dimension_mismatch(built, model) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    smaller = SentenceTransformer(modules=[model[0], model[1], Dense(384, 128)], device="cpu")
    r = DenseRetriever(*built, model=smaller)
    with pytest.raises(ConfigError) as err:
        r.search("jazz", k=3)
    assert "128" in str(err.value) and "384" in str(err.value)
    build, manifest = built
    wrong = {**manifest, "dense": {**manifest["dense"], "dimension": 768}}
    with pytest.raises(IndexFormatError) as err2:
        DenseRetriever(build, wrong, model=model).search_vectors(np.zeros((1, 768), dtype=np.float32), k=1)
    assert "384" in str(err2.value) and "768" in str(err2.value)


def test_missing_files(tmp_path: Path, built) -> None:
    _, manifest = built
    with pytest.raises(IndexFormatError):
        DenseRetriever(tmp_path, manifest).search_vectors(np.zeros((1, 384), dtype=np.float32), k=1)
