"""FAISS leg of the build: encoder loading, embedding cache (resume + reuse), FAISS selection, errors.

Runs the real bundled all-MiniLM-L6-v2 (offline) and real FAISS on tiny stores written here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from indexer.chunker import ChunkSettings, chunk_document  # noqa: E402
from backends.faiss.encoder import (  # noqa: E402
    encode_passages,
    encode_queries,
    encoder_info,
    load_encoder,
    model_key,
    passage_text,
    serialise_tokenizer,
)
from backends.faiss.section import IDS_FILE, INDEX_FILE, VECTORS_FILE  # noqa: E402
from backends.faiss.writer import build_dense_index  # noqa: E402
from indexer.errors import ConfigError  # noqa: E402
from indexer.schema import Document  # noqa: E402
from indexer.settings import DenseSettings  # noqa: E402
from indexer.store import Store, StoreWriter  # noqa: E402
from tests.text_fixtures import DOCS

REPO = Path(__file__).resolve().parents[2]



def write_store(path: Path, docs: list[tuple[str, str, str]]) -> Path:
    writer = StoreWriter(path)
    for doc_id, title, text in docs:
        doc = Document(doc_id=doc_id, text=text, title=title)
        writer.add(doc, chunk_document(doc, ChunkSettings(target_words=0)))
    writer.close()
    return path


def synthetic_docs(n: int) -> list[tuple[str, str, str]]:
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau upsilon "
             "river mountain forest desert ocean city harbour bridge castle garden library museum").split()
    out = []
    for i in range(n):
        body = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(6))
        out.append((f"doc{i:04d}", f"Synthetic document {i}", f"Record number {i}. {body}."))
    return out


@pytest.fixture(scope="module")
def model():
    return load_encoder(DenseSettings(device="cpu", encoder="st"))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(write_store(tmp_path_factory.mktemp("store") / "store.sqlite", DOCS))
    yield store
    store.close()


def read_index(out_dir: Path):
    import faiss

    index = faiss.read_index(str(out_dir / INDEX_FILE))
    return index, index.reconstruct_n(0, index.ntotal)


# ------------------------------------------------------------------------------------------- encoder


def test_load_encoder_and_info(model) -> None:
    settings = DenseSettings(device="cpu", encoder="st")
    info = encoder_info(model, settings)
    assert info["dimension"] == 384 and info["bundled"] and info["normalize"]
    assert info["max_length"] == model.max_seq_length and info["device"] == "cpu"
    short = load_encoder(DenseSettings(device="cpu", encoder="st", max_length=64))
    assert short.max_seq_length == 64
    assert model_key(encoder_info(short, settings.model_copy(update={"max_length": 64}))) != model_key(info)
    assert model_key(info) == model_key(encoder_info(model, settings))
    prefixed = settings.model_copy(update={"passage_prefix": "passage: "})
    assert model_key(encoder_info(model, prefixed)) != model_key(info)


def test_the_default_encoder_is_onnx_on_the_cpu_and_torch_on_a_gpu(model) -> None:
    """`encoder="auto"` (the default) loads ONNX Runtime fp32 on the CPU, recorded as such (queries
    then use it too), with torch's vectors to 1e-6; torch where the device is a GPU."""
    from backends.faiss.encoder import resolve_encoder

    assert DenseSettings().encoder == "auto"
    assert resolve_encoder("auto", "cpu") == "onnx" and resolve_encoder("auto", "cuda:0") == "st"
    assert resolve_encoder("onnx-int8", "cuda") == "onnx-int8" and resolve_encoder("st", "cpu") == "st"
    default = load_encoder(DenseSettings(device="cpu"))
    info = encoder_info(default, DenseSettings(device="cpu"))
    assert info["encoder"] == "onnx" and model_key(info) != model_key(encoder_info(model, DenseSettings(device="cpu", encoder="st")))
    texts = ["how do green plants make sugar from light", "jazz"]
    cosine = (default.encode(texts, normalize_embeddings=True) * model.encode(texts, normalize_embeddings=True)).sum(axis=1)
    assert cosine.min() > 0.99999


def test_encode_matches_plain_encode_and_prefixes(model) -> None:
    settings = DenseSettings(device="cpu", encoder="st")
    texts = [passage_text(t, x) for _, t, x in DOCS[:3]]
    ours = encode_passages(model, texts, settings)
    plain = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == (3, 384)
    assert np.allclose(ours, plain, atol=1e-5)
    q = encode_queries(model, ["what is jazz"], settings.model_copy(update={"query_prefix": "query: "}))
    assert np.allclose(q, model.encode(["query: what is jazz"], normalize_embeddings=True), atol=1e-5)
    assert passage_text("", "body") == "body" and passage_text("T", "body") == "T\nbody"


@pytest.fixture
def one_torch_thread():
    """torch with one intra-op thread, as the service runs it (`ServiceSettings.torch_threads`):
    with two, a bucket of several queries came out ~1e-7 from each query alone (docs/OPERATIONS.md).
    The count is process-wide: a test before this one (a server's lifespan) could leave it at 1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_query_buckets_are_batch_invariant_and_a_model_that_cannot_pad_encodes_each_alone(model, monkeypatch, one_torch_thread) -> None:
    # sentence-transformers pads each length bucket to its size when asked (processing_kwargs): one
    # row per query, each query's vector the same alone or in any batch. A model whose tokenizer
    # takes no per-call padding encodes each query as a batch of its own: one call per query.
    from backends.faiss import encoder

    settings = DenseSettings(device="cpu", encoder="st")
    queries = ["jazz", "what is jazz", "lava " * 12 + "from a mountain", "how do green plants make sugar from light",
               "  padded  ", "ein deutscher Satz über Musik", "x " * 40]  # fmt: skip
    calls: list[int] = []
    real_encode = model.encode

    def counting_encode(texts, *args, **kwargs):
        calls.append(len(texts))
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(model, "encode", counting_encode)
    padded = encode_queries(model, queries, settings)
    assert sum(calls) == len(queries) and len(calls) < len(queries)  # one batch per bucket, no extra row
    assert all(np.array_equal(encode_queries(model, [q], settings)[0], padded[i]) for i, q in enumerate(queries))
    calls.clear()
    monkeypatch.setattr(encoder, "_accepts_processing_kwargs", lambda m: False)
    alone = encode_queries(model, queries, settings)
    assert calls == [1] * len(queries)
    assert np.allclose(alone, padded, atol=1e-5)  # unpadded: within ~1e-7 of the bucket's vectors


def test_concurrent_encoding_runs_in_parallel_and_is_identical() -> None:
    # A fast tokenizer keeps its padding state on one shared object: two threads tokenising at once
    # used to hand one of them a ragged, unpadded batch. The tokenizer is serialised, the model is not:
    # threads encode at the same time and every vector equals the one encoded alone.
    model = load_encoder(DenseSettings(device="cpu", encoder="st"))
    settings = DenseSettings(device="cpu", encoder="st")
    queries = ["lava " * n + "from a mountain" for n in range(1, 9)] + ["short"]
    alone = {q: encode_queries(model, [q], settings)[0] for q in queries}
    inside, most_inside = 0, 0
    count_lock = threading.Lock()
    real_encode = model.encode

    def spying_encode(texts, *args, **kwargs):
        nonlocal inside, most_inside
        with count_lock:
            inside += 1
            most_inside = max(most_inside, inside)
        try:
            time.sleep(0.02)  # widen the window in which another thread enters
            return real_encode(texts, *args, **kwargs)
        finally:
            with count_lock:
                inside -= 1

    model.encode = spying_encode
    errors: list[str] = []
    mismatches: list[str] = []
    start = threading.Barrier(6)

    def work(offset: int) -> None:
        try:
            start.wait(timeout=30)
            for j in range(6):
                pair = [queries[(offset + j) % len(queries)], queries[(offset * 3 + j) % len(queries)]]
                if j % 3 == 0:
                    encode_passages(model, pair, settings)
                    continue
                got = encode_queries(model, pair, settings)
                if not all(np.array_equal(v, alone[q]) for v, q in zip(got, pair)):
                    mismatches.append(repr(pair))
        except Exception as exc:  # reported by the assertion below
            errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and mismatches == []
    assert most_inside > 1


def test_tokenizer_calls_are_serialised() -> None:
    from transformers import PreTrainedTokenizerBase

    model = load_encoder(DenseSettings(device="cpu", encoder="st"))
    tokenizer = model.tokenizer
    assert isinstance(tokenizer, PreTrainedTokenizerBase)  # what sentence-transformers checks before calling it
    done = threading.Event()
    worker = threading.Thread(target=lambda: (tokenizer(["a query", "another"], padding=True), done.set()))
    with tokenizer._drsearch_lock:  # while one call is inside, another waits
        worker.start()
        assert not done.wait(0.3)
    assert done.wait(30)
    worker.join(timeout=30)
    serialise_tokenizer(tokenizer)  # twice is harmless: still one level of locking
    assert not getattr(type(tokenizer).__mro__[1], "_drsearch_serialised", False)


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage"])
def test_non_model_directory_is_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "model"
    if kind != "missing":
        path.mkdir()
    if kind == "garbage":
        (path / "modules.json").write_text("[{broken")
        (path / "config.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        load_encoder(DenseSettings(model=str(path), device="cpu", encoder="st"))
    assert "not a sentence-transformers model directory" in str(err.value)
    assert err.value.where == str(path)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------- build


def test_build_exact_and_search_semantics(tmp_path: Path, small_store: Store, model) -> None:
    import faiss

    settings = DenseSettings(device="cpu", encoder="st")
    section = build_dense_index(small_store, tmp_path / "dense", tmp_path / "cache", settings, quiet=True, model=model)
    assert section.ann == "exact" and section.hnsw is None
    assert section.count == len(DOCS) and section.encoded == len(DOCS) and section.reused == 0
    assert section.dimension == 384 and section.model_key
    index, vecs = read_index(tmp_path / "dense")
    assert isinstance(index, faiss.IndexFlatIP) and index.ntotal == len(DOCS)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    ids = (tmp_path / "dense" / IDS_FILE).read_text()
    assert '"photo#0"' in ids
    q = encode_queries(model, ["how do green plants make sugar from light"], settings)
    _, found = index.search(q, 3)
    assert DOCS[found[0][0]][0] == "photo"
    shards = list((tmp_path / "cache" / section.model_key).glob("shard-*.npz"))
    assert len(shards) == 1


def test_auto_selects_hnsw_above_exact_max(tmp_path: Path, small_store: Store, model) -> None:
    import faiss

    settings = DenseSettings(device="cpu", encoder="st", ann="auto", exact_max=5, hnsw_m=8, hnsw_ef_construction=16, hnsw_ef_search=20)
    section = build_dense_index(small_store, tmp_path / "dense", tmp_path / "cache", settings, quiet=True, model=model)
    assert section.ann == "hnsw"
    assert section.hnsw.model_dump() == {"m": 8, "ef_construction": 16, "ef_search": 20}
    index, _ = read_index(tmp_path / "dense")
    assert isinstance(index, faiss.IndexHNSWFlat) and index.ntotal == len(DOCS)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT
    exact = build_dense_index(small_store, tmp_path / "d2", tmp_path / "cache", settings.model_copy(update={"ann": "exact"}),
                              quiet=True, model=model)  # fmt: skip
    assert exact.ann == "exact" and exact.encoded == 0 and exact.reused == len(DOCS)
    forced = settings.model_copy(update={"ann": "hnsw", "exact_max": 1000})
    assert build_dense_index(small_store, tmp_path / "d3", tmp_path / "cache", forced, quiet=True, model=model).ann == "hnsw"


def test_reuse_encodes_only_changed_passages(tmp_path: Path, model) -> None:
    settings = DenseSettings(device="cpu", encoder="st")
    first = Store(write_store(tmp_path / "a.sqlite", DOCS))
    s1 = build_dense_index(first, tmp_path / "d1", tmp_path / "cache", settings, quiet=True, model=model)
    first.close()
    changed = list(DOCS)
    changed[3] = ("bread", "Baking bread", "Sourdough starter replaces commercial yeast in slow fermented loaves.")
    changed[8] = ("jazz", "Jazz", "Bebop musicians such as Charlie Parker played fast, complex harmonies.")
    second = Store(write_store(tmp_path / "b.sqlite", changed))
    s2 = build_dense_index(second, tmp_path / "d2", tmp_path / "cache", settings, quiet=True, model=model)
    second.close()
    assert s1.encoded == len(DOCS)
    assert s2.encoded == 2 and s2.reused == len(DOCS) - 2
    _, v1 = read_index(tmp_path / "d1")
    _, v2 = read_index(tmp_path / "d2")
    same = [i for i in range(len(DOCS)) if i not in (3, 8)]
    assert np.array_equal(v1[same], v2[same])
    assert not np.allclose(v1[3], v2[3])
    # a different passage prefix is another model key: nothing reused
    third = Store(write_store(tmp_path / "c.sqlite", DOCS))
    s3 = build_dense_index(third, tmp_path / "d3", tmp_path / "cache",
                           settings.model_copy(update={"passage_prefix": "passage: "}), quiet=True, model=model)  # fmt: skip
    third.close()
    assert s3.encoded == len(DOCS) and s3.model_key != s1.model_key


def test_duplicate_texts_encoded_once(tmp_path: Path, model) -> None:
    docs = DOCS[:3] + [("photo2", DOCS[0][1], DOCS[0][2])]
    store = Store(write_store(tmp_path / "s.sqlite", docs))
    s = build_dense_index(store, tmp_path / "d", tmp_path / "cache", DenseSettings(device="cpu", encoder="st"), quiet=True, model=model)
    store.close()
    assert s.encoded == 3 and s.reused == 1 and s.count == 4
    _, v = read_index(tmp_path / "d")
    assert np.array_equal(v[0], v[3])


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import backends.faiss.cache as cache_module
    from backends.faiss.writer import build_dense_index
    from indexer.settings import DenseSettings
    from indexer.store import Store

    real = cache_module._encode
    def slow(*a, **kw):  # make each shard take a while so the parent can kill us mid-build
        time.sleep(0.5)
        return real(*a, **kw)
    cache_module._encode = slow
    store_path, out, cache = map(Path, sys.argv[1:4])
    build_dense_index(Store(store_path), out, cache, DenseSettings(device="cpu", encoder="st", shard_size=64), quiet=True)
    print("FINISHED")
    """
)


def test_resume_after_killed_build(tmp_path: Path, model) -> None:
    docs = synthetic_docs(192)  # 3 shards of 64
    store_path = write_store(tmp_path / "store.sqlite", docs)
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RESUME_SCRIPT, str(store_path), str(tmp_path / "killed"), str(cache)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if list(cache.glob("*/shard-*.npz")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / INDEX_FILE).exists()
    shards = list(cache.glob("*/shard-*.npz"))
    assert 1 <= len(shards) < 3

    settings = DenseSettings(device="cpu", encoder="st", shard_size=64)
    store = Store(store_path)
    resumed = build_dense_index(store, tmp_path / "resumed", cache, settings, quiet=True, model=model)
    fresh = build_dense_index(store, tmp_path / "fresh", tmp_path / "fresh-cache", settings, quiet=True, model=model)
    store.close()
    assert resumed.reused >= 64 and resumed.reused % 64 == 0
    assert resumed.encoded + resumed.reused == len(docs)
    assert fresh.encoded == len(docs) and fresh.reused == 0
    assert resumed.model_key == fresh.model_key
    _, v_resumed = read_index(tmp_path / "resumed")
    _, v_fresh = read_index(tmp_path / "fresh")
    assert v_resumed.shape == v_fresh.shape == (len(docs), 384)
    # same texts, possibly different batch composition -> equal up to float rounding
    assert np.allclose(v_resumed, v_fresh, atol=1e-5)
    assert (tmp_path / "resumed" / IDS_FILE).read_text() == (tmp_path / "fresh" / IDS_FILE).read_text()
    assert len(list(cache.glob("*/shard-*.npz"))) == 3


def test_cache_finds_keys_ending_in_nul_bytes(tmp_path: Path) -> None:
    """numpy's S20 strips trailing NULs: a sha1 ending in b"\\0" must still be found after a reload."""
    from backends.faiss.cache import EmbeddingCache

    keys = [bytes(19) + b"\x01", b"\x07" * 18 + bytes(2), b"\x05" + bytes(19)]
    vectors = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    EmbeddingCache(tmp_path, 4).put(keys, vectors)
    reloaded = EmbeddingCache(tmp_path, 4)
    assert len(reloaded) == 3
    for key, row in zip(keys, vectors):
        assert key in reloaded and np.array_equal(reloaded.get(key), row)


def test_cache_reads_vectors_from_its_shard_files(tmp_path: Path) -> None:
    """The cache holds keys only: vectors come from the shard files, in the order asked, across
    shards, with a key repeated in a later shard served by the first."""
    from backends.faiss.cache import EmbeddingCache

    rng = np.random.default_rng(5)
    first_keys = [bytes([i]) * 20 for i in range(1, 6)]
    first = rng.standard_normal((5, 4)).astype(np.float32)
    later_keys = [bytes([9]) * 20, first_keys[2]]  # the repeat of first_keys[2] must not win
    later = rng.standard_normal((2, 4)).astype(np.float32)
    cache = EmbeddingCache(tmp_path, 4)
    cache.put(first_keys, first)
    cache.put(later_keys, later)
    for c in (cache, EmbeddingCache(tmp_path, 4)):
        assert len(c) == 6 and sorted(c.keys()) == sorted(first_keys + later_keys[:1])
        asked = [first_keys[4], later_keys[0], bytes(20), first_keys[2], first_keys[4]]
        locs = c.locate(asked)
        assert locs[2] == -1 and (locs[[0, 1, 3, 4]] >= 0).all()
        got = c.read(locs[[0, 1, 3, 4]])
        assert np.array_equal(got, np.stack([first[4], later[0], first[2], first[4]]))
        c.close()
    (tmp_path / "shard-00009-zz.npz").write_bytes(b"not a zip")
    assert EmbeddingCache(tmp_path, 4).skipped_shards == ["shard-00009-zz.npz"]


def test_a_cached_shard_whose_bytes_were_damaged_is_left_out_and_its_passages_encoded_again(tmp_path: Path) -> None:
    """Rows are read in place, past zipfile's CRC: a flipped exponent bit in a cached vector (3e35 for
    0.1) went into every later build, whose digests then vouched for it."""
    from backends.faiss.cache import EmbeddingCache

    rng = np.random.default_rng(5)
    good, bad = rng.standard_normal((3, 4), dtype=np.float32), rng.standard_normal((3, 4), dtype=np.float32)
    good_keys, bad_keys = [bytes([i]) * 20 for i in range(1, 4)], [bytes([i]) * 20 for i in range(4, 7)]
    cache = EmbeddingCache(tmp_path, 4)
    cache.put(good_keys, good)
    damaged = cache.put(bad_keys, bad)
    cache.close()
    data = bytearray(damaged.read_bytes())
    at = data.rindex(bad[1].tobytes()) + 3  # the exponent byte of one value, inside the vectors member
    data[at] ^= 0x40
    damaged.write_bytes(bytes(data))
    cache = EmbeddingCache(tmp_path, 4)
    locs = cache.locate(good_keys + bad_keys)
    assert (locs[:3] >= 0).all() and (locs[3:] == -1).all() and cache.skipped_shards == [damaged.name]
    assert np.array_equal(cache.read(locs[:3]), good)
    cache.close()


@pytest.mark.parametrize(("ann", "kept"), [("exact", False), ("ivf-pq", True)])
def test_build_streams_vectors_through_a_file_kept_only_for_ivf_pq(tmp_path: Path, model, ann: str, kept: bool) -> None:
    """The passage vectors go to dense/vectors.npy (not one in-memory array) and the index is built
    from it in chunks; the file stays only where IVF-PQ re-scores with it. Row i = passage idx i."""
    from backends.faiss.encoder import encode_passages, passage_text

    docs = [Document(doc_id=f"d{i}", text=f"passage number {i} about topic {i % 7}", title="") for i in range(60)]
    store_path = tmp_path / "store.sqlite"
    writer = StoreWriter(store_path)
    for doc in docs:
        writer.add(doc, chunk_document(doc, ChunkSettings(target_words=0)))
    writer.close()
    store = Store(store_path)
    settings = DenseSettings(device="cpu", encoder="st", ann=ann, pq_m=48, ivf_nlist=1)
    section = build_dense_index(store, tmp_path / "dense", tmp_path / "cache", settings, quiet=True, model=model)
    ids = [pid for _, pid, _, _ in store.iter_passages()]
    store.close()
    assert section.count == len(ids) == 60 and section.encoded == 60
    assert (tmp_path / "dense" / VECTORS_FILE).exists() == kept
    assert json.loads((tmp_path / "dense" / IDS_FILE).read_text()) == ids
    if kept:
        stored = np.load(tmp_path / "dense" / VECTORS_FILE)
        direct = encode_passages(model, [passage_text("", d.text) for d in docs], settings)
        assert np.allclose(stored, direct, atol=1e-5)
