"""FAISS leg writer: embed the store's passages (through the embedding cache) -> FAISS index + id list."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import VECTOR, BuildContext, Leg
from backends.faiss.cache import embed_store
from backends.faiss.encoder import dimension_of, load_encoder
from backends.faiss.rows import RowFile
from backends.faiss.section import IDS_FILE, INDEX_FILE, VECTORS_FILE, FaissFiles, FaissSection, HnswParams, IvfParams
from indexer import layout
from indexer.errors import ConfigError
from indexer.language import dense_languages
from indexer.settings import BuildSettings, DenseSettings

log = logging.getLogger(__name__)
FAISS_POINTS_PER_CENTROID = 39  # FAISS's training minimum: it warns, once per quantizer, below it


def choose_ann(settings: DenseSettings, n: int) -> str:
    """The FAISS index type: as asked, or by size (exact small, HNSW medium, IVF-PQ large)."""
    if settings.ann in ("exact", "flat") or (settings.ann == "auto" and n <= settings.exact_max):
        return "exact"
    if settings.ann == "auto":
        return "ivf-pq" if n >= settings.ivf_min else "hnsw"
    return settings.ann


def ivf_shape(settings: DenseSettings, n: int) -> tuple[int, int]:
    """(nlist, nbits): lists as set or ~4 sqrt(n), at most n / 39 (FAISS's training minimum per
    centroid); 8-bit PQ codes when there are enough vectors to train 256 centroids, else 4-bit."""
    nlist = max(1, min(settings.ivf_nlist or int(4 * n**0.5), n // FAISS_POINTS_PER_CENTROID))
    return nlist, 8 if n >= 256 * 39 else 4


def ivf_probes(settings: DenseSettings, nlist: int) -> int:
    """Lists searched per query: as set, else a fifth of them (at least 32, at most all). A fifth
    keeps recall@10 >= 0.9 on the hardest vectors measured (docs/BENCHMARKS.md, issue 10), where a
    fixed 32 fell to 0.65 at 100k passages."""
    return min(nlist, settings.ivf_nprobe or max(32, nlist // 5))


def pq_codes(settings: DenseSettings, dimension: int) -> int:
    """PQ code bytes per vector: `--pq-m` as given, else 48, or where 48 does not divide the
    dimension (512, 1024) the divisor of the dimension nearest to 48 (the larger on a tie)."""
    if settings.pq_m:
        return settings.pq_m
    divisors = [m for m in range(1, dimension + 1) if dimension % m == 0]
    return min(divisors, key=lambda m: (abs(m - 48), -m))


def check_pq_m(settings: DenseSettings, dimension: int) -> None:
    if settings.pq_m and dimension % settings.pq_m:
        raise ConfigError(f"invalid --pq-m: {settings.pq_m} does not divide the model's dimension {dimension}", field="pq_m")


def check_ivf_pq(settings: DenseSettings, n: int, dimension: int) -> None:
    """A ConfigError (one line) when the IVF-PQ index `settings` choose for `n` passages cannot be
    trained: its PQ needs at least 2^nbits vectors (16 below ~10,000 passages)."""
    if choose_ann(settings, n) != "ivf-pq":
        return
    check_pq_m(settings, dimension)
    need = 2 ** ivf_shape(settings, n)[1]
    if n < need:
        chosen = ("--dense-index ivf-pq", "use --dense-index flat (or auto)") if settings.ann == "ivf-pq" else (
            f"--dense-index auto chose ivf-pq (--ivf-min {settings.ivf_min}), which",
            f"raise --ivf-min above {n} or use --dense-index flat")  # fmt: skip
        raise ConfigError(f"{chosen[0]} needs at least {need} passages to train its codes, this corpus has {n}: "
                          f"{chosen[1]}", field="ann")  # fmt: skip


_ADD_CHUNK = 65_536  # vectors added to an index at a time (read from the vectors file chunk by chunk)


def build_faiss(vectors: np.ndarray | RowFile, ann: str, settings: DenseSettings) -> Any:
    """A FAISS index of `vectors`: an array, or a `RowFile` read in chunks so that the build holds
    only the index itself (and one chunk)."""
    import faiss

    n, d = len(vectors), vectors.shape[1]
    ip = faiss.METRIC_INNER_PRODUCT
    if ann == "exact":
        index = faiss.IndexFlatIP(d)
    elif ann == "ivf-pq":
        check_ivf_pq(settings.model_copy(update={"ann": "ivf-pq"}), n, d)
        nlist, nbits = ivf_shape(settings, n)
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, pq_codes(settings, d), nbits, ip)
        need = FAISS_POINTS_PER_CENTROID * max(nlist, 2**nbits)
        if n < need:  # said once here, not by FAISS once per quantizer (49 lines for 21 passages)
            index.cp.min_points_per_centroid = index.pq.cp.min_points_per_centroid = 1
            log.warning("drsearch: warning: --dense-index ivf-pq trains on %d passages, fewer than the %d FAISS asks for "
                        "(%d per centroid): recall may suffer; flat (or auto) suits a library this small",
                        n, need, FAISS_POINTS_PER_CENTROID)  # fmt: skip
        # FAISS wants >= 39 training points per list; the PQ's 256 centroids need 256 x 256
        index.train(_training_sample(vectors, max(256 * 256, FAISS_POINTS_PER_CENTROID * nlist)))
        index.nprobe = ivf_probes(settings, nlist)
    else:
        if ann == "hnsw-sq8":
            index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, settings.hnsw_m, ip)
            index.train(_training_sample(vectors, 100_000))
        else:
            index = faiss.IndexHNSWFlat(d, settings.hnsw_m, ip)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    for start in range(0, n, _ADD_CHUNK):
        index.add(_take(vectors, np.arange(start, min(n, start + _ADD_CHUNK))))
    return index


def _take(vectors: np.ndarray | RowFile, positions: np.ndarray) -> np.ndarray:
    if isinstance(vectors, RowFile):
        return np.ascontiguousarray(vectors.rows(positions), dtype=np.float32)
    return np.ascontiguousarray(vectors[positions], dtype=np.float32)


def _training_sample(vectors: np.ndarray | RowFile, limit: int) -> np.ndarray:
    n = len(vectors)
    rows = np.arange(n) if n <= limit else np.sort(np.random.default_rng(0).choice(n, limit, replace=False))
    return _take(vectors, rows)


def build_dense_index(
    store: Any, out_dir: Path, cache_dir: Path, settings: DenseSettings, *, quiet: bool, model: Any = None
) -> FaissSection:
    """Embed every passage of `store` (reusing cached vectors), write the FAISS index, return the manifest section.

    `model` lets a caller pass an already loaded encoder (it must match `settings`).
    Vectors are written in passage idx order to `vectors.npy`, so FAISS ids are passage idx; the file
    stays for IVF-PQ's exact re-score and is removed otherwise. The build holds the index being built
    and one chunk of vectors, not all of them.
    """
    import faiss

    if model is None:
        model = load_encoder(settings)
    check_ivf_pq(settings, store.extent[1], int(dimension_of(model)))  # before any passage is encoded
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vectors_path = out_dir / VECTORS_FILE
    try:
        emb = embed_store(store, cache_dir, settings, model, quiet=quiet, out=vectors_path, ids_out=out_dir / IDS_FILE)
        n = emb.count
        ann = choose_ann(settings, n)
        rows = RowFile(vectors_path)
        try:
            index = build_faiss(rows, ann, settings)
        finally:
            rows.close()
        layout.atomic_write_with(out_dir / INDEX_FILE, lambda tmp: faiss.write_index(index, str(tmp)))  # streamed: no copy in memory
        del index
        keep_vectors = ann == "ivf-pq" and settings.refine > 0
    except BaseException:
        vectors_path.unlink(missing_ok=True)
        raise
    if not keep_vectors:
        vectors_path.unlink()
    hnsw = ivf = None
    files = FaissFiles()
    if ann in ("hnsw", "hnsw-sq8"):
        hnsw = HnswParams(m=settings.hnsw_m, ef_construction=settings.hnsw_ef_construction, ef_search=settings.hnsw_ef_search)
    elif ann == "ivf-pq":
        nlist, nbits = ivf_shape(settings, n)
        ivf = IvfParams(nlist=nlist, nprobe=ivf_probes(settings, nlist), pq_m=pq_codes(settings, emb.dimension), nbits=nbits,
                        refine=settings.refine)  # fmt: skip
        if keep_vectors:  # exact vectors for re-scoring, read by row at search time
            files = FaissFiles(vectors=VECTORS_FILE)
    return FaissSection(
        **emb.info, ann=ann, hnsw=hnsw, ivf=ivf, files=files, count=n, encoded=emb.encoded, reused=emb.reused,
        model_key=emb.model_key,
    )  # fmt: skip


class FaissWriter:
    """Writes the dense leg into `dense/`; loads the encoder at construction so a bad --model fails early."""

    leg: ClassVar[Leg] = VECTOR

    def __init__(self, settings: BuildSettings, *, model: Any = None):
        self.settings = settings.dense
        self.languages = dense_languages(self.settings.languages, self.settings.model)
        self.model = model if model is not None else load_encoder(self.settings)
        self.dimension = int(dimension_of(self.model))
        if self.settings.ann in ("auto", "ivf-pq"):  # a --pq-m given for this model fails before reading the corpus
            check_pq_m(self.settings, self.dimension)

    def check(self, ctx: BuildContext) -> None:
        """Before any leg is written: an IVF-PQ index this corpus is too small to train fails now."""
        check_ivf_pq(self.settings, ctx.passages, self.dimension)

    def write(self, ctx: BuildContext) -> FaissSection:
        section = build_dense_index(
            ctx.store, ctx.build_dir / layout.DENSE_DIR, ctx.root / layout.EMBEDDING_CACHE_DIR, self.settings,
            quiet=ctx.quiet, model=self.model,
        )  # fmt: skip
        return section.model_copy(update={"languages": self.languages})
