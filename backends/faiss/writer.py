"""FAISS leg writer: embed the store's passages (through the embedding cache) -> FAISS index + id list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import VECTOR, BuildContext, Leg
from backends.faiss.cache import embed_store
from backends.faiss.encoder import load_encoder
from backends.faiss.section import IDS_FILE, INDEX_FILE, FaissSection, HnswParams
from indexer import layout
from indexer.settings import BuildSettings, DenseSettings


def choose_ann(settings: DenseSettings, n: int) -> str:
    if settings.ann == "exact" or (settings.ann == "auto" and n <= settings.exact_max):
        return "exact"
    return "hnsw"


def build_faiss(vectors: np.ndarray, ann: str, settings: DenseSettings) -> Any:
    import faiss

    d = vectors.shape[1]
    if ann == "exact":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    if len(vectors):
        index.add(vectors)
    return index


def build_dense_index(
    store: Any, out_dir: Path, cache_dir: Path, settings: DenseSettings, *, quiet: bool, model: Any = None
) -> FaissSection:
    """Embed every passage of `store` (reusing cached vectors), write the FAISS index, return the manifest section.

    `model` lets a caller pass an already loaded encoder (it must match `settings`).
    Vectors are assembled in passage idx order, so FAISS ids are passage idx.
    """
    import faiss

    if model is None:
        model = load_encoder(settings)
    emb = embed_store(store, cache_dir, settings, model, quiet=quiet)
    ann = choose_ann(settings, len(emb.passage_ids))
    index = build_faiss(emb.vectors, ann, settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout.atomic_write_bytes(out_dir / INDEX_FILE, faiss.serialize_index(index).tobytes())
    layout.atomic_write_bytes(out_dir / IDS_FILE, json.dumps(emb.passage_ids, ensure_ascii=False).encode("utf-8"))
    hnsw = None if ann == "exact" else HnswParams(
        m=settings.hnsw_m, ef_construction=settings.hnsw_ef_construction, ef_search=settings.hnsw_ef_search
    )  # fmt: skip
    return FaissSection(
        **emb.info, ann=ann, hnsw=hnsw, count=len(emb.passage_ids), encoded=emb.encoded, reused=emb.reused,
        model_key=emb.model_key,
    )  # fmt: skip


class FaissWriter:
    """Writes the dense leg into `dense/`; loads the encoder at construction so a bad --model fails early."""

    leg: ClassVar[Leg] = VECTOR

    def __init__(self, settings: BuildSettings, *, model: Any = None):
        self.settings = settings.dense
        self.model = model if model is not None else load_encoder(self.settings)

    def write(self, ctx: BuildContext) -> FaissSection:
        return build_dense_index(
            ctx.store, ctx.build_dir / layout.DENSE_DIR, ctx.root / layout.EMBEDDING_CACHE_DIR, self.settings,
            quiet=ctx.quiet, model=self.model,
        )  # fmt: skip
