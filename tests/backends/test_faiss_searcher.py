"""FaissSearcher over a real tiny build (bundled MiniLM + FAISS): search, batching, rescoring, errors.

Properties every retriever shares are in tests/ranker/test_retriever_conformance.py; these are FAISS's own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from backends.base import Restriction, VectorRetriever  # noqa: E402
from backends.faiss.encoder import load_encoder  # noqa: E402
from backends.faiss.searcher import FaissSearcher  # noqa: E402
from backends.faiss.section import FaissSection  # noqa: E402
from backends.faiss.writer import build_dense_index  # noqa: E402
from backends.hit import Hit  # noqa: E402
from indexer import layout  # noqa: E402
from indexer.chunker import ChunkSettings, chunk_document  # noqa: E402
from indexer.errors import ConfigError, IndexFormatError, QueryError  # noqa: E402
from indexer.schema import Document  # noqa: E402
from indexer.settings import DenseSettings  # noqa: E402
from indexer.store import Store, StoreWriter  # noqa: E402
from tests.text_fixtures import DOCS  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return load_encoder(DenseSettings(device="cpu", encoder="st"))


def _build(root: Path, model, settings: DenseSettings) -> tuple[Path, FaissSection]:
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
    return build, section


def search(r: FaissSearcher, queries: list[str], k: int) -> list[list[Hit]]:
    return r.search_vectors(r.encode(queries), k)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, model) -> tuple[Path, FaissSection]:
    return _build(tmp_path_factory.mktemp("exact"), model, DenseSettings(device="cpu", encoder="st"))


@pytest.fixture(scope="module")
def retriever(built, model) -> FaissSearcher:
    r = FaissSearcher(*built, model=model)
    yield r
    r.close()


def test_conforms_to_protocol(retriever: FaissSearcher) -> None:
    assert isinstance(retriever, VectorRetriever)
    assert retriever.name == "dense" and retriever.size == len(DOCS)


@pytest.mark.parametrize(
    "query, doc",
    [
        ("how do green plants make sugar from light", "photo"),
        ("why does the sea level go up and down every day", "tides"),
        ("how does an injection protect you from disease", "vaccine"),
        ("crypto money ledger", "bitcoin"),
    ],
)
def test_paraphrased_query_finds_right_doc(retriever: FaissSearcher, query: str, doc: str) -> None:
    hits = search(retriever, [query], k=3)[0]
    assert hits[0].doc_id == doc
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(h.dense == h.score and h.dense_rank == h.rank and h.bm25 is None for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_batch_search_matches_search_and_k_above_n(retriever: FaissSearcher) -> None:
    queries = ["volcanic eruption lava", "improvised swing music", "board game strategy"]
    batch = search(retriever, queries, k=4)
    assert len(batch) == 3
    for q, hits in zip(queries, batch):
        single = search(retriever, [q], k=4)[0]
        assert [h.passage_id for h in hits] == [h.passage_id for h in single]
        assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=1e-5)
    everything = search(retriever, ["anything at all"], k=1000)[0]
    assert len(everything) == len(DOCS)
    assert sorted(h.passage_id for h in everything) == sorted(f"{d}#0" for d, _, _ in DOCS)
    assert retriever.search_vectors(np.zeros((0, 384), dtype=np.float32), k=5) == []


def test_a_query_scores_the_same_alone_and_in_a_batch_past_faiss_blas_threshold(retriever: FaissSearcher, monkeypatch) -> None:
    """FAISS switches to BLAS (other sums, other last bits) for a batch of queries x dimension past its
    threshold (FAISS 1.15: 128,000, i.e. 334 queries here); lowered here so that a batch of 8 is past it.
    The micro-batcher's "same request, same scores" needs each query's hits bit for bit as alone."""
    import faiss

    queries = ["volcanic eruption lava", "improvised swing music", "board game strategy", "deep sleep memory",
               "how do green plants make sugar from light", "crypto money ledger", "tides and the moon", "jazz"]  # fmt: skip
    q = retriever.encode(queries)
    monkeypatch.setattr(faiss.cvar, "distance_compute_blas_threshold", 2 * q.shape[1])
    few = np.zeros(retriever.size, dtype=bool)
    few[::3] = True  # under exact_allowed_max: scored with the vectors themselves, not through FAISS
    for restriction in (None, Restriction(allowed=few)):
        batch = retriever.search_vectors_positions(q, 5, restriction)
        for i, (positions, scores) in enumerate(batch):
            alone_positions, alone_scores = retriever.search_vectors_positions(q[i : i + 1], 5, restriction)[0]
            assert positions.tolist() == alone_positions.tolist(), (restriction, queries[i])
            assert scores.tobytes() == alone_scores.tobytes(), (restriction, queries[i])


def test_search_vectors_and_scores_for(retriever: FaissSearcher) -> None:
    q = retriever.encode(["how do green plants make sugar from light", "deep sleep memory"])
    assert q.shape == (2, 384) and q.dtype == np.float32
    hits = retriever.search_vectors(q, k=5)
    assert hits[0][0].passage_id == "photo#0" and hits[1][0].passage_id == "sleep#0"
    rescored = retriever.scores_for(q, [[h.passage_id for h in run] for run in hits])
    for run, scores in zip(hits, rescored):
        assert scores.dtype == np.float32
        assert scores == pytest.approx([h.score for h in run], abs=1e-5)
    # arbitrary candidates, any order, including empty
    out = retriever.scores_for(q[:1], [["jazz#0", "photo#0"]])
    assert out[0][1] == pytest.approx(hits[0][0].score, abs=1e-5)
    assert retriever.scores_for(q[:1], [[]])[0].shape == (0,)
    with pytest.raises(KeyError, match="nope#0"):
        retriever.scores_for(q[:1], [["nope#0"]])
    with pytest.raises(ValueError):
        retriever.scores_for(q, [[0]])
    with pytest.raises(ConfigError):
        retriever.search_vectors(np.zeros((1, 10), dtype=np.float32), k=3)


def test_positions_are_the_store_positions_of_the_hits(retriever: FaissSearcher, built) -> None:
    """The lean hybrid path's form of the leg: the passages' store idx (= column position), float32 scores."""
    q = retriever.encode(["how do green plants make sugar from light", "deep sleep memory"])
    hits = retriever.search_vectors(q, k=4)
    store = Store(built[0] / layout.STORE)
    id_at = {idx: pid for idx, pid, _, _ in store.iter_passages()}
    store.close()
    for run, (positions, scores) in zip(hits, retriever.search_vectors_positions(q, k=4)):
        assert positions.dtype == np.int64 and scores.dtype == np.float32
        assert [id_at[p] for p in positions.tolist()] == [h.passage_id for h in run]
        assert scores.tolist() == [h.score for h in run]
    assert retriever.search_vectors_positions(q[:0], k=4) == []


def test_bad_k(retriever: FaissSearcher) -> None:
    with pytest.raises(QueryError):
        retriever.search_vectors(retriever.encode(["jazz"]), k=0)


def test_lazy_thread_safe_first_use(built) -> None:
    r = FaissSearcher(*built, device="cpu")  # loads the encoder itself from the manifest
    assert r._index is None and r._model is None  # nothing loaded at construction
    results: list[list[Hit]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(search(r, ["lava from a mountain"], k=2)[0])
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
    settings = DenseSettings(device="cpu", encoder="st", ann="auto", exact_max=4, hnsw_m=8, hnsw_ef_construction=32, hnsw_ef_search=17)
    build, section = _build(tmp_path, model, settings)
    assert section.ann == "hnsw"
    r = FaissSearcher(build, section, model=model)
    assert r._ensure_index().hnsw.efSearch == 17
    assert search(r, ["improvised swing music from New Orleans"], k=3)[0][0].passage_id == "jazz#0"
    q = r.encode(["chess"])
    assert r.scores_for(q, [["chess#0"]])[0][0] == pytest.approx(r.search_vectors(q, k=1)[0][0].score, abs=1e-5)
    assert len(search(r, ["anything"], k=100)[0]) <= len(DOCS)
    r.close()


def test_dimension_mismatch(built, model) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    smaller = SentenceTransformer(modules=[model[0], model[1], Dense(384, 128)], device="cpu")
    r = FaissSearcher(*built, model=smaller)
    with pytest.raises(ConfigError) as err:
        r.encode(["jazz"])
    assert "128" in str(err.value) and "384" in str(err.value)
    build, section = built
    wrong = section.model_copy(update={"dimension": 768})
    with pytest.raises(IndexFormatError) as err2:
        FaissSearcher(build, wrong, model=model).search_vectors(np.zeros((1, 768), dtype=np.float32), k=1)
    assert "384" in str(err2.value) and "768" in str(err2.value)


def test_missing_files(tmp_path: Path, built) -> None:
    _, section = built
    with pytest.raises(IndexFormatError):
        FaissSearcher(tmp_path, section).search_vectors(np.zeros((1, 384), dtype=np.float32), k=1)


def test_faiss_device_setting(built, model, monkeypatch) -> None:
    """DRSEARCH_FAISS_DEVICE: auto falls back to the CPU where faiss has no GPU; cuda there is a
    one-line error; a bad value fails at open. (The GPU copy itself needs faiss-gpu and a device.)"""
    import faiss

    from backends.faiss.gpu import gpu_count

    vectors = model.encode(["jazz music history"], normalize_embeddings=True)
    cpu = FaissSearcher(*built, model=model)
    expected = cpu.search_vectors(vectors, 3)
    monkeypatch.setenv("DRSEARCH_FAISS_DEVICE", "bogus")
    with pytest.raises(ConfigError, match="DRSEARCH_FAISS_DEVICE='bogus' is not one of auto, cpu, cuda"):
        FaissSearcher.open(*built)
    if gpu_count(faiss):
        pytest.skip("this faiss has a GPU: the fallback cannot be observed")
    monkeypatch.setenv("DRSEARCH_FAISS_DEVICE", "auto")
    auto = FaissSearcher(*built, model=model)
    assert auto.search_vectors(vectors, 3) == expected and auto._gpu_index is None
    monkeypatch.setenv("DRSEARCH_FAISS_DEVICE", "cuda")
    with pytest.raises(ConfigError, match="DRSEARCH_FAISS_DEVICE=cuda but the installed faiss has no GPU support"):
        FaissSearcher(*built, model=model).search_vectors(vectors, 3)


@pytest.fixture
def faiss_threads():
    """FAISS on 2 threads in this test's thread, restored after (the count is per calling thread)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    yield
    faiss.omp_set_num_threads(before)


@pytest.mark.parametrize("vectors", [9_000, 12_000])
def test_a_single_query_scores_as_in_a_batch_on_a_flat_index_faiss_would_split(vectors: int, faiss_threads) -> None:
    """From 10,000 vectors FAISS splits an exact index over its threads for fewer queries than threads,
    summing otherwise (`FLAT_SPLIT_FROM`): the retriever's search must still give a query alone the
    scores and the order it gets in a batch, on both sides of that size, through an id selector
    too, and with equal scores (duplicate vectors, as repeated boilerplate paragraphs give)."""
    import faiss

    from backends.faiss.flat_split import FLAT_SPLIT_FROM
    from backends.faiss.searcher import batch_invariant_search

    assert 9_000 < FLAT_SPLIT_FROM <= 12_000
    rng = np.random.default_rng(7)
    x = rng.standard_normal((vectors, 64), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[vectors // 2 :: 997] = x[3]  # copies of one vector, spread over the shards
    index = faiss.IndexFlatIP(64)
    index.add(x)
    q = np.vstack([x[3] + 0.01, rng.standard_normal((11, 64), dtype=np.float32)])
    most = faiss.IDSelectorRange(0, vectors - 5)
    for params in (None, faiss.SearchParameters(sel=most)):
        batch_scores, batch_ids = batch_invariant_search(index, q, 50, params)
        assert len(set(batch_ids[0][:8].tolist())) == 8 and batch_scores[0][0] == batch_scores[0][1]  # the ties
        for i in range(len(q)):
            scores, ids = batch_invariant_search(index, q[i : i + 1], 50, params)
            assert scores.shape == (1, 50) and ids[0].tolist() == batch_ids[i].tolist(), (params, i)
            assert scores[0].tobytes() == batch_scores[i].tobytes(), (params, i)
    exact = x @ q[1]
    best = np.argsort(-exact, kind="stable")[:50]
    assert batch_invariant_search(index, q[1:2], 50)[1][0].tolist() == best.tolist()


def test_a_batch_over_a_large_flat_index_scored_block_by_block_ranks_as_a_whole_scan(faiss_threads, monkeypatch) -> None:
    """A batch over an exact index of 10,000+ vectors is scored a block of vectors at a time
    (`blocked_search`): each query must get the scores and order a whole scan of the index gives it,
    and alone (the split) the same as in the batch, with 80 equal scores straddling the top 50 over
    many blocks, where only the lower positions may be kept."""
    import faiss

    from backends.faiss import flat_split
    from backends.faiss.searcher import batch_invariant_search

    monkeypatch.setattr(flat_split, "FLAT_BLOCK_BYTES", 64 << 10)  # 256 vectors a block: 47 blocks
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12_000, 64), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[200::150] = x[5]  # 79 copies of one vector, in many blocks
    index = faiss.IndexFlatIP(64)
    index.add(x)
    q = np.vstack([x[5], rng.standard_normal((7, 64), dtype=np.float32)])
    scores, ids = batch_invariant_search(index, q, 50)
    assert ids[0].tolist() == [5, *range(200, 200 + 150 * 49, 150)] and len(set(scores[0].tolist())) == 1
    whole = flat_split.ties_by_id(index, *index.search(q, 50))  # each query one scan of all vectors
    for i in range(len(q)):
        assert ids[i].tolist() == whole[1][i].tolist() and scores[i].tobytes() == whole[0][i].tobytes(), i
        alone = batch_invariant_search(index, q[i : i + 1], 50)
        assert alone[1][0].tolist() == ids[i].tolist() and alone[0][0].tobytes() == scores[i].tobytes(), i


def test_restrictions_over_a_large_flat_index_get_the_allowed_top_k_alone_and_in_a_batch(tmp_path: Path, faiss_threads) -> None:
    """A restriction over an exact index of 12,000 vectors, allowing a few passages (scored from
    their copied vectors) or half of them (through an id selector, `_exact_limit`): each query gets
    the best allowed passages as a brute-force scan ranks them, and the same scores alone as in a batch."""
    import faiss

    from bench.flat_split import flat_dense_folder

    rng = np.random.default_rng(13)
    n, d = 12_000, 32
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(d)
    index.add(x)
    retriever = FaissSearcher(tmp_path, flat_dense_folder(tmp_path, index))
    q = rng.standard_normal((6, d), dtype=np.float32)
    for share in (0.02, 0.5):  # under the limit (1/20 of 12,000 is under FLAT_EXACT_ALLOWED) and over it
        allowed = rng.random(n) < share
        positions = np.flatnonzero(allowed)
        batch = retriever.search_vectors_positions(q, 40, Restriction(allowed=allowed))
        for i, (found, scores) in enumerate(batch):
            exact = x[positions] @ q[i]
            assert found.tolist() == positions[np.argsort(-exact, kind="stable")[:40]].tolist(), (share, i)
            assert np.allclose(scores, np.sort(exact)[::-1][:40], atol=1e-5)
            alone_found, alone_scores = retriever.search_vectors_positions(q[i : i + 1], 40, Restriction(allowed=allowed))[0]
            assert alone_found.tolist() == found.tolist() and alone_scores.tobytes() == scores.tobytes(), (share, i)


def test_a_filtered_single_query_over_a_large_flat_index_gets_the_allowed_top_k(faiss_threads) -> None:
    """A single query through an id selector over an exact index FAISS would split is split over the
    threads by the retriever (each shard searching through the selector and its range): it must
    return exactly the best allowed vectors, as a brute-force scan of them ranks them, including
    where one shard holds fewer allowed vectors than k."""
    import faiss

    from backends.faiss.searcher import batch_invariant_search

    rng = np.random.default_rng(11)
    n = 12_000
    x = rng.standard_normal((n, 32), dtype=np.float32)
    index = faiss.IndexFlatIP(32)
    index.add(x)
    allowed = np.zeros(n, dtype=bool)
    allowed[: n // 2 : 3] = True  # every third vector of the first shard
    allowed[n - 20 :] = True  # and only 20 of the second: fewer than k
    bits = np.packbits(allowed, bitorder="little")
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits)))
    positions = np.flatnonzero(allowed)
    for q in rng.standard_normal((5, 32), dtype=np.float32):
        scores, ids = batch_invariant_search(index, q[None, :], 60, params)
        exact = x[positions] @ q
        best = positions[np.argsort(-exact, kind="stable")[:60]]
        assert ids[0].tolist() == best.tolist()
        assert np.allclose(scores[0], np.sort(exact)[::-1][:60], atol=1e-5)


def test_gpu_search_runs_fixed_blocks_and_returns_each_query_once() -> None:
    """`batch_invariant_gpu_search` (the GPU's same-scores-alone-and-in-a-batch) on a CPU index: every
    call FAISS sees has exactly GPU_QUERY_BLOCK rows; the padding's results are dropped, in order."""
    import faiss

    from backends.faiss.gpu import GPU_QUERY_BLOCK, batch_invariant_gpu_search

    rng = np.random.default_rng(3)
    index = faiss.IndexFlatIP(16)
    index.add(rng.standard_normal((500, 16), dtype=np.float32))
    seen: list[int] = []

    class Recording:
        def search(self, q, k, params=None):
            seen.append(len(q))
            return index.search(q, k, params=params)

    for n in (1, GPU_QUERY_BLOCK, GPU_QUERY_BLOCK + 1, 3 * GPU_QUERY_BLOCK - 5):
        seen.clear()
        q = rng.standard_normal((n, 16), dtype=np.float32)
        scores, ids = batch_invariant_gpu_search(Recording(), q, 7)
        assert seen == [GPU_QUERY_BLOCK] * -(-n // GPU_QUERY_BLOCK)
        expected_scores, expected_ids = index.search(q, 7)
        assert ids.tolist() == expected_ids.tolist() and np.allclose(scores, expected_scores)


def test_faiss_searches_from_any_thread_use_the_thread_budget(retriever: FaissSearcher, monkeypatch) -> None:
    """OpenMP keeps its thread count per thread: the budget set in one thread (`set_budget`) must
    still size FAISS in the threads that search (the service's executor), or N workers each run
    FAISS on every core."""
    import faiss

    from backends import threads

    default = []  # what a fresh thread gets from OpenMP: its process-wide default
    probe = threading.Thread(target=lambda: default.append(faiss.omp_get_max_threads()))
    probe.start()
    probe.join()
    monkeypatch.setattr(threads, "_budget", default[0] + 1)  # any count but the default
    q = retriever.encode(["deep sleep memory"])
    seen = []

    def search_here() -> None:
        retriever.search_vectors_positions(q, 3)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=search_here)
    worker.start()
    worker.join()
    assert seen == [default[0] + 1]
