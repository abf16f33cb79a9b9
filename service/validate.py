"""Validate a build before it may serve: open every leg, cross-check their sizes, run a warm-up
query in each mode. A build that fails is refused with `IndexInvalidError` naming the leg.

Used at startup (the server does not start) and on reload (the old build keeps serving).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexer import layout
from indexer.damage import LegError, read_leg
from indexer.errors import BackendUnavailable, IndexFormatError
from ranker import kernels

log = logging.getLogger("drsearch.service")
T = TypeVar("T")
WARMUP_QUERY = "warm up the search index"
WARMUP_BATCH = (WARMUP_QUERY, "and its batch path")


class IndexInvalidError(LegError):
    """A build that cannot serve: `leg` is manifest, store, lucene, dense or a mode's warm-up."""


def _leg(leg: str, where: Path, fn: Callable[[], T]) -> T:
    return read_leg(leg, where, fn, error=IndexInvalidError)


def open_validated(build: Path, *, load_model: bool = True) -> Any:
    """The build's opened SearchPipeline, after every check passed; `load_model` also runs the dense
    and hybrid warm-ups through the query encoder (else the FAISS leg is probed with a vector)."""
    from backends.manifest import Manifest
    from indexer.store import Store
    from ranker.pipeline import SearchOptions, SearchPipeline
    from ranker.settings import SearchSettings

    build = Path(build)
    _leg("manifest", build / layout.MANIFEST, lambda: Manifest.read(build))
    # The store opened alone first, so that its absence or damage is named `store`, not the leg opened
    # after it; opening is cheap (`Store.extent`), and the pipeline checks that extent against the manifest.
    _leg("store", build / layout.STORE, lambda: Store(build / layout.STORE).close())
    lucene_dir = build / layout.LUCENE_DIR
    pipeline = _leg("lucene", lucene_dir, lambda: SearchPipeline.open(build, SearchSettings()))
    _, passages = pipeline.store.extent
    try:
        size = _leg("lucene", lucene_dir, lambda: pipeline.lexical.size)
        if size != passages:
            raise IndexInvalidError("lucene", f"has {size} documents, the store {passages} passages", str(lucene_dir))
        _leg("lucene", lucene_dir, lambda: pipeline.batch_search([WARMUP_QUERY], SearchOptions(k=3, mode="bm25")))
        if pipeline.has_dense:
            _check_dense(pipeline, build / layout.DENSE_DIR, passages, load_model)
    except BackendUnavailable as exc:  # served anyway: each search answers 503 backend_unavailable until it is back
        log.warning("build %s not fully validated, its search backend is unavailable: %s", build.name, exc)
    except BaseException:
        pipeline.close()
        raise
    return pipeline


def _check_dense(pipeline: Any, where: Path, passages: int, load_model: bool) -> None:
    from ranker.pipeline import SearchOptions

    dense = _leg("dense", where, lambda: pipeline.dense)
    ntotal = _leg("dense", where, lambda: dense.size)
    if ntotal != passages:
        raise IndexInvalidError("dense", f"has {ntotal} vectors, the store {passages} passages", str(where))
    probe = np.zeros((1, dense.dimension), dtype=np.float32)
    probe[0, 0] = 1.0

    def probe_ids() -> None:
        hits = dense.search_vectors(probe, 3)[0]
        missing = set(h.passage_id for h in hits) - set(pipeline.store.passages_by_id(h.passage_id for h in hits))
        if missing:
            raise IndexFormatError(f"id list names passages the store lacks: {sorted(missing)[:3]}")

    _leg("dense", where, probe_ids)
    if load_model:
        # A serving process ranks many single searches: their fusion and dense scan compiled (once per
        # machine, then loaded from numba's cache), before the warm-ups, which then run them.
        if pipeline.settings.compiled_fusion:
            kernels.enable()
        if pipeline.settings.int8_prescan and hasattr(dense, "enable_prescan"):
            _leg("dense", where, dense.enable_prescan)
        for mode in ("dense", "hybrid"):
            _leg(f"{mode} warm-up", where, lambda: pipeline.batch_search([WARMUP_QUERY], SearchOptions(k=3, mode=mode)))
        # A batch too: the encoder's batch path (its single-threaded session, a second copy of the weights)
        # is then made before the server listens, not by its first merged batch of requests.
        _leg("batch warm-up", where, lambda: pipeline.batch_search(list(WARMUP_BATCH), SearchOptions(k=3, mode="hybrid")))
