"""FAISS index types (`--dense-index flat|hnsw|hnsw-sq8|ivf-pq`): parameters in the manifest,
memory-mapped open, recall@10 against exact search, and the id restriction on each type.

Built from the `scale_index` build's store and embedding cache.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from backends.base import Restriction
from indexer import layout
from indexer.settings import DenseSettings


def _retriever(scale_index, tmp_path, ann: str, **kw):
    from backends.faiss.searcher import FaissSearcher
    from backends.faiss.writer import build_dense_index
    from indexer.store import Store

    settings = DenseSettings(device="cpu", ann=ann, hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=64,
                             encoder="onnx-int8", **kw)  # the build's encoder: its vectors are in the cache  # fmt: skip
    store = Store(scale_index / layout.STORE)
    try:
        cache = scale_index.parent.parent / layout.EMBEDDING_CACHE_DIR
        section = build_dense_index(store, tmp_path / ann / layout.DENSE_DIR, cache, settings, quiet=True)
    finally:
        store.close()
    return section, FaissSearcher(tmp_path / ann, section)


@pytest.fixture(scope="module")
def queries(scale_index):
    from backends.faiss.searcher import FaissSearcher
    from backends.manifest import Manifest

    exact = FaissSearcher(scale_index, Manifest.read(scale_index).section("dense"))
    texts = ["boundary layer transition", "gene expression in tumour cells", "heat transfer at hypersonic speed",
             "randomised trial of vitamin D", "pressure distribution on a cone", "antibody response to vaccine"]  # fmt: skip
    vectors = exact.encode(texts)
    truth = [[h.passage_id for h in run] for run in exact.search_vectors(vectors, 10)]
    return vectors, truth


@pytest.mark.parametrize(
    ("ann", "extra", "params", "min_recall"),
    [
        ("flat", {}, None, 1.0),
        ("hnsw", {}, "hnsw", 0.9),
        ("hnsw-sq8", {}, "hnsw", 0.85),
        ("ivf-pq", {"ivf_nprobe": 16, "pq_m": 48}, "ivf", 0.9),
    ],
)
def test_index_type_recall_and_restriction(scale_index, tmp_path, queries, ann, extra, params, min_recall):
    section, retriever = _retriever(scale_index, tmp_path, ann, **extra)
    assert section.ann == ("exact" if ann == "flat" else ann)
    if params:
        assert getattr(section, params)  # parameters recorded for search time
    vectors, truth = queries
    runs = retriever.search_vectors(vectors, 10)
    recall = np.mean([len({h.passage_id for h in run} & set(t)) / 10 for run, t in zip(runs, truth)])
    assert recall >= min_recall, (ann, recall)

    # Restrictions: a small allowed set (exact over its vectors) and a large one (FAISS id selector).
    ids = json.loads((tmp_path / ann / layout.DENSE_DIR / section.files.passage_ids).read_text())
    n = retriever.size
    retriever.exact_allowed_max = 100
    for allowed_count in (30, n // 2 + 7):
        allowed = np.zeros(n, dtype=bool)
        allowed[np.random.default_rng(allowed_count).choice(n, allowed_count, replace=False)] = True
        allowed_ids = {ids[i] for i in np.flatnonzero(allowed)}
        for run in retriever.search_vectors(vectors, 10, Restriction(allowed=allowed)):
            assert len(run) == 10
            assert {h.passage_id for h in run} <= allowed_ids
    retriever.close()


def test_auto_chooses_by_size():
    from backends.faiss.writer import choose_ann

    s = DenseSettings(exact_max=100, ivf_min=1000)
    assert [choose_ann(s, n) for n in (100, 101, 999, 1000)] == ["exact", "hnsw", "hnsw", "ivf-pq"]
    assert choose_ann(DenseSettings(ann="flat"), 10**9) == "exact"


def test_ivf_probes_a_fifth_of_the_lists_unless_set():
    from backends.faiss.writer import ivf_probes

    assert [ivf_probes(DenseSettings(), nlist) for nlist in (20, 100, 1264, 4000)] == [20, 32, 252, 800]
    assert ivf_probes(DenseSettings(ivf_nprobe=16), 1264) == 16


def test_pq_m_that_does_not_divide_the_dimension_fails_before_any_work():
    from backends.faiss.writer import FaissWriter
    from indexer.errors import ConfigError
    from indexer.settings import BuildSettings

    with pytest.raises(ConfigError, match="invalid --pq-m: 7 does not divide the model.s dimension 384"):
        FaissWriter(BuildSettings(dense=DenseSettings(device="cpu", ann="ivf-pq", pq_m=7)))


def test_default_pq_m_is_48_or_the_divisor_of_the_dimension_nearest_it():
    from backends.faiss.writer import pq_codes

    assert [pq_codes(DenseSettings(), d) for d in (384, 768, 512, 1024, 32)] == [48, 48, 64, 64, 32]
    assert pq_codes(DenseSettings(pq_m=96), 384) == 96


def test_a_model_48_does_not_divide_builds_with_the_default_pq_m(tiny_model):
    """bge-small-zh (512), bge-m3 (1024), here a 32-dimensional model: `auto` builds them without
    --pq-m, and an IVF-PQ index of such vectors gets a PQ that divides the dimension."""
    from backends.faiss.writer import FaissWriter, build_faiss
    from indexer.settings import BuildSettings

    FaissWriter(BuildSettings(dense=DenseSettings(model=str(tiny_model), device="cpu", encoder="st")))
    vectors = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    index = build_faiss(vectors, "ivf-pq", DenseSettings(ann="ivf-pq"))
    assert index.pq.M == 32 and index.ntotal == 64


@pytest.mark.parametrize("n", [15, 16])
def test_ivf_pq_trains_from_16_vectors_and_says_so_below(n):
    """Below 16 passages the 4-bit PQ cannot train: a one-line error naming --dense-index, not FAISS's."""
    from backends.faiss.writer import build_faiss
    from indexer.errors import ConfigError

    vectors = np.random.default_rng(n).standard_normal((n, 384)).astype(np.float32)
    if n < 16:
        with pytest.raises(ConfigError, match="--dense-index ivf-pq needs at least 16 passages .* this corpus has 15"):
            build_faiss(vectors, "ivf-pq", DenseSettings(ann="ivf-pq"))
    else:
        assert build_faiss(vectors, "ivf-pq", DenseSettings(ann="ivf-pq")).ntotal == 16


def test_ivf_pq_on_few_passages_warns_once_not_per_quantizer(capfd, caplog):
    """FAISS wrote a line per quantizer it trained on too few points (49 for 21 passages), through -q."""
    from backends.faiss.writer import build_faiss

    vectors = np.random.default_rng(0).standard_normal((64, 384)).astype(np.float32)
    with caplog.at_level("WARNING", logger="backends.faiss.writer"):
        assert build_faiss(vectors, "ivf-pq", DenseSettings(ann="ivf-pq")).ntotal == 64
    assert "WARNING clustering" not in capfd.readouterr().err
    (record,) = caplog.records
    assert "ivf-pq trains on 64 passages, fewer than the 624 FAISS asks for (39 per centroid)" in record.getMessage()


def test_ivf_pq_on_too_few_passages_fails_before_any_leg_is_written(tmp_path, monkeypatch):
    """The build stops once the store is written, before Lucene indexes or a passage is encoded;
    the previous build stays current."""
    from backends.lucene.writer import LuceneWriter
    from indexer.build import build_index
    from indexer.errors import ConfigError
    from indexer.settings import BuildSettings
    from tests.text_fixtures import DOCS

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS[:5]))
    kept = build_index([corpus], tmp_path / "idx", BuildSettings(quiet=True, dense=DenseSettings(enabled=False))).build_dir
    written = []
    real_write = LuceneWriter.write
    monkeypatch.setattr(LuceneWriter, "write", lambda self, ctx: written.append(ctx) or real_write(self, ctx))
    settings = BuildSettings(quiet=True, dense=DenseSettings(device="cpu", ann="ivf-pq"))
    with pytest.raises(ConfigError, match="--dense-index ivf-pq needs at least 16 passages .* this corpus has 5"):
        build_index([corpus], tmp_path / "idx", settings)
    assert written == [] and not (tmp_path / "idx" / layout.EMBEDDING_CACHE_DIR).exists()
    assert (tmp_path / "idx" / layout.CURRENT).resolve() == kept and list((tmp_path / "idx" / "builds").iterdir()) == [kept]


def test_an_ivf_pq_list_is_the_start_of_any_deeper_one(scale_index, tmp_path, queries):
    """Re-scored all at once, k x refine candidates ranked differently at 150 and at 180 from the 42nd
    hit on, and a later page (searched deeper) repeated a hit of the page before and skipped another."""
    vectors, _ = queries
    _, retriever = _retriever(scale_index, tmp_path, "ivf-pq", ivf_nprobe=16, pq_m=48)
    lists = {k: retriever.search_vectors_positions(vectors, k) for k in (10, 100, 150, 180, 310)}
    for shallow, deep in ((10, 100), (100, 150), (150, 180), (180, 310)):
        for (short, short_scores), (long, long_scores) in zip(lists[shallow], lists[deep]):
            assert len(short) == shallow and long[:shallow].tolist() == short.tolist()
            assert np.array_equal(long_scores[:shallow], short_scores)


def test_damaged_exact_vectors_of_ivf_pq_are_one_line_when_opened(scale_index, tmp_path, queries):
    """A cut-short `vectors.npy`, or one of another build, was read only at search time: a traceback
    (`OSError: short read of the exact vectors`, `IndexError: row positions outside 0..35`)."""
    import shutil

    from backends.faiss.searcher import FaissSearcher
    from indexer.errors import IndexFormatError

    section, retriever = _retriever(scale_index, tmp_path, "ivf-pq", ivf_nprobe=16, pq_m=48)
    vectors, _ = queries
    assert retriever.search_vectors(vectors[:1], 5)[0]
    for damage, message in (("cut", "is cut short"), ("other", "exact vectors are 36 x 384")):
        copy = tmp_path / damage
        shutil.copytree(tmp_path / "ivf-pq", copy)
        exact = copy / layout.DENSE_DIR / section.files.vectors
        if damage == "cut":
            os.truncate(exact, exact.stat().st_size // 3)
        else:
            np.save(exact, np.zeros((36, 384), dtype=np.float32))
        with pytest.raises(IndexFormatError, match=message):
            FaissSearcher(copy, section).search_vectors(vectors[:1], 5)


def test_too_few_passages_for_the_ivf_pq_auto_chose_says_auto_chose_it():
    """The message named `--dense-index ivf-pq`, which was not given, and advised `auto`, which was."""
    from backends.faiss.writer import check_ivf_pq
    from indexer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--dense-index auto chose ivf-pq \(--ivf-min 2\), which needs at least 16 "
                                          r"passages .* has 12: raise --ivf-min above 12 or use --dense-index flat"):  # fmt: skip
        check_ivf_pq(DenseSettings(ann="auto", exact_max=1, ivf_min=2), 12, 384)


@pytest.mark.parametrize(("field", "value"), [("hnsw_m", 2**31 - 1), ("hnsw_ef_search", 2**31 - 1), ("hnsw_ef_construction", 10**11),
                                              ("ivf_nprobe", 10**11), ("refine", 10**9)])  # fmt: skip
def test_faiss_parameters_past_what_faiss_takes_are_refused_with_the_settings(field, value):
    """`--hnsw-m 2147483647` was a C++ exception from FAISS, and `--hnsw-ef-search 2147483647` a build
    whose every search asked for gigabytes (stored in its manifest: the index could not be served)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="less than or equal to"):
        DenseSettings(**{field: value})
