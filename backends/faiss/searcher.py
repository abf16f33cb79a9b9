"""FAISS searcher: query -> sentence-transformers embedding -> FAISS top-k -> `Hit`s.

The FAISS index, the passage id list and the encoder are loaded lazily on first use (thread-safe),
so constructing a retriever is cheap and importing this module loads nothing heavy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import VECTOR, Leg, SourceFilters, check_k, query_matrix
from backends.faiss.encoder import dimension_of, encode_queries, load_encoder
from backends.faiss.section import FaissSection
from backends.hit import Hit
from indexer import layout
from indexer.errors import ConfigError, IndexFormatError


class FaissSearcher:
    """Vector retriever over a build's `dense/` folder (a `backends.base.VectorRetriever`)."""

    name: ClassVar[Leg] = VECTOR

    def __init__(
        self,
        build_dir: Path,
        section: FaissSection,
        *,
        model: Any = None,
        device: str | None = None,
        threads: int | None = None,
    ):
        self.build_dir = Path(build_dir)
        self.dir = self.build_dir / layout.DENSE_DIR
        self.section = section
        self.dimension = section.dimension
        self._device = device
        self._threads = threads  # faiss.omp_set_num_threads is process-wide: only set when asked
        self._model = model
        self._model_checked = False
        self._index: Any = None
        self._ids: list[str] | None = None
        self._idx_of: dict[str, int] | None = None
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()
        self._settings = section.encoder_settings(device)

    @classmethod
    def open(cls, build_dir: Path, section: FaissSection, *, threads: int = 2) -> "FaissSearcher":
        # FAISS threads stay as they are: faiss.omp_set_num_threads is process-wide.
        return cls(build_dir, section)

    # -------------------------------------------------------------------------------- lazy loading

    def _ensure_index(self) -> Any:
        if self._index is not None:
            return self._index
        with self._lock:
            if self._index is None:
                import faiss

                ipath = self.dir / self.section.files.index
                idpath = self.dir / self.section.files.passage_ids
                if not ipath.is_file() or not idpath.is_file():
                    raise IndexFormatError("dense index files are missing", where=str(self.dir))
                if self._threads:
                    faiss.omp_set_num_threads(int(self._threads))
                try:
                    index = faiss.read_index(str(ipath))
                    ids = json.loads(idpath.read_text(encoding="utf-8"))
                except (RuntimeError, OSError, ValueError) as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise IndexFormatError(f"unreadable dense index: {first}", where=str(self.dir)) from None
                if index.d != self.dimension:
                    raise IndexFormatError(
                        f"dense index has dimension {index.d}, manifest says {self.dimension}", where=str(ipath)
                    )
                if not isinstance(ids, list) or len(ids) != index.ntotal:
                    raise IndexFormatError(
                        f"dense id list has {len(ids) if isinstance(ids, list) else '?'} entries, index {index.ntotal}",
                        where=str(idpath),
                    )
                hnsw = self.section.hnsw
                if hnsw and hasattr(index, "hnsw"):
                    index.hnsw.efSearch = hnsw.ef_search
                self._ids = ids
                self._index = index
        return self._index

    def _ensure_model(self) -> Any:
        if self._model is not None and self._model_checked:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = load_encoder(self._settings)
            if not self._model_checked:
                got = int(dimension_of(self._model))
                if got != self.dimension:
                    raise ConfigError(
                        f"encoder produces {got}-dimensional vectors but the index was built with {self.dimension}",
                        where=str(self._settings.model or "bundled model"),
                    )
                self._model_checked = True
        return self._model

    def _vectors(self) -> np.ndarray:
        """All passage vectors as an (N, d) float32 view of the FAISS storage (no copy)."""
        if self._matrix is not None:
            return self._matrix
        index = self._ensure_index()
        with self._lock:
            if self._matrix is None:
                import faiss

                flat = index if isinstance(index, faiss.IndexFlat) else faiss.downcast_index(index.storage)
                n, d = index.ntotal, index.d
                if n == 0:
                    self._matrix = np.zeros((0, d), dtype=np.float32)
                else:
                    self._matrix = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)
        return self._matrix

    # -------------------------------------------------------------------------------------- public

    @property
    def size(self) -> int:
        return int(self._ensure_index().ntotal)

    def encode(self, queries: Sequence[str]) -> np.ndarray:
        """Query vectors, batch-invariant (see `encode_queries`); queries arrive already validated."""
        return encode_queries(self._ensure_model(), list(queries), self._settings)

    def search_vectors(self, vectors: np.ndarray, k: int, filters: SourceFilters | None = None) -> list[list[Hit]]:
        """Top-k for already encoded queries; `filters` are left to the pipeline's post-filter."""
        check_k(k)
        q = self._as_queries(vectors)
        index = self._ensure_index()
        ids = self._ids
        assert ids is not None
        kk = min(k, int(index.ntotal))
        if kk == 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        scores, found = index.search(q, kk)
        out: list[list[Hit]] = []
        for srow, irow in zip(scores.tolist(), found.tolist()):
            hits: list[Hit] = []
            for s, i in zip(srow, irow):
                if i < 0:
                    continue
                r = len(hits) + 1
                hits.append(Hit.of(ids[i], float(s), r, dense=float(s), dense_rank=r))
            out.append(hits)
        return out

    def scores_for(self, vectors: np.ndarray, passage_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Dense scores of given candidate passages, one float32 array per query, in the given order."""
        q = self._as_queries(vectors)
        if len(q) != len(passage_ids):
            raise ValueError(f"{len(q)} query vectors but {len(passage_ids)} candidate lists")
        matrix = self._vectors()
        idx_of = self._index_of()
        out: list[np.ndarray] = []
        for qv, cand in zip(q, passage_ids):
            try:
                idx = np.fromiter((idx_of[p] for p in cand), dtype=np.int64, count=len(cand))
            except KeyError as exc:
                raise KeyError(f"passage {exc.args[0]!r} is not in the dense index") from None
            out.append((matrix[idx] @ qv).astype(np.float32, copy=False))
        return out

    def _index_of(self) -> dict[str, int]:
        if self._idx_of is None:
            self._ensure_index()
            with self._lock:
                if self._idx_of is None:
                    assert self._ids is not None
                    self._idx_of = {pid: i for i, pid in enumerate(self._ids)}
        return self._idx_of

    def close(self) -> None:
        with self._lock:
            self._matrix = None
            self._index = None
            self._ids = None
            self._idx_of = None

    # ------------------------------------------------------------------------------------- helpers

    def _as_queries(self, vectors: np.ndarray) -> np.ndarray:
        return query_matrix(vectors, self.dimension)

