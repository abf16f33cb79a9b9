"""Dense retriever: query -> sentence-transformers embedding -> FAISS top-k -> `Hit`s.

The FAISS index, the passage id list and the encoder are loaded lazily on first use (thread-safe),
so constructing a retriever is cheap and importing this module loads nothing heavy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer import layout
from indexer.errors import ConfigError, IndexFormatError
from indexer.settings import DenseSettings
from ranker.hit import Hit
from ranker.query import check_k, clean_query

NO_DENSE_LEG = "index was built without the dense leg; rebuild with --dense or use --mode bm25"


class DenseRetriever:
    """Retriever over a build's `dense/` folder (implements `ranker.retriever.Retriever`)."""

    name = "dense"

    def __init__(
        self,
        build_dir: Path,
        manifest: dict[str, Any],
        *,
        model: Any = None,
        device: str | None = None,
        threads: int | None = None,
    ):
        section = manifest.get("dense") if isinstance(manifest, dict) else None
        if not section:
            raise IndexFormatError(NO_DENSE_LEG, where=str(build_dir))
        self.build_dir = Path(build_dir)
        self.dir = self.build_dir / layout.DENSE_DIR
        self.section: dict[str, Any] = dict(section)
        self.dimension = int(self.section["dimension"])
        self._device = device
        self._threads = threads  # faiss.omp_set_num_threads is process-wide: only set when asked
        self._model = model
        self._model_checked = False
        self._index: Any = None
        self._ids: list[str] | None = None
        self._idx_of: dict[str, int] | None = None
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()
        self._settings = DenseSettings(
            model=None if self.section.get("bundled", False) else self.section.get("model"),
            query_prefix=self.section.get("query_prefix", ""),
            passage_prefix=self.section.get("passage_prefix", ""),
            normalize=bool(self.section.get("normalize", True)),
            max_length=self.section.get("max_length"),
            device=device,
        )

    # -------------------------------------------------------------------------------- lazy loading

    def _ensure_index(self) -> Any:
        if self._index is not None:
            return self._index
        with self._lock:
            if self._index is None:
                import faiss

                from indexer.dense import IDS_FILE, INDEX_FILE

                files = self.section.get("files") or {}
                ipath = self.dir / files.get("index", INDEX_FILE)
                idpath = self.dir / files.get("passage_ids", IDS_FILE)
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
                hnsw = self.section.get("hnsw")
                if hnsw and hasattr(index, "hnsw"):
                    index.hnsw.efSearch = int(hnsw.get("ef_search", index.hnsw.efSearch))
                self._ids = ids
                self._index = index
        return self._index

    def _ensure_model(self) -> Any:
        if self._model is not None and self._model_checked:
            return self._model
        with self._lock:
            if self._model is None:
                from indexer.dense import load_encoder

                self._model = load_encoder(self._settings)
            if not self._model_checked:
                from indexer.dense import _dimension

                got = int(_dimension(self._model))
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
    def ntotal(self) -> int:
        return int(self._ensure_index().ntotal)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        from indexer.dense import encode_queries

        for q in queries:
            clean_query(q)
        return encode_queries(self._ensure_model(), list(queries), self._settings)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.batch_search([query], k)[0]

    def batch_search(self, queries: list[str], k: int = 10) -> list[list[Hit]]:
        check_k(k)
        if not queries:
            return []
        return self.search_vectors(self.encode_queries(queries), k)

    def search_vectors(self, vectors: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """Top-k for already encoded queries (lets a service micro-batch encoding)."""
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

    def scores_for(self, query_vectors: np.ndarray, passage_idx_lists: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Dense scores of given candidate passages (by idx), one float32 array per query, in the given order."""
        q = self._as_queries(query_vectors)
        if len(q) != len(passage_idx_lists):
            raise ValueError(f"{len(q)} query vectors but {len(passage_idx_lists)} candidate lists")
        matrix = self._vectors()
        n = len(matrix)
        out: list[np.ndarray] = []
        for qv, cand in zip(q, passage_idx_lists):
            idx = np.asarray(cand, dtype=np.int64).reshape(-1)
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                raise IndexError(f"passage idx out of range 0..{n - 1}")
            out.append((matrix[idx] @ qv).astype(np.float32, copy=False))
        return out

    def passage_index(self, passage_id: str) -> int | None:
        if self._idx_of is None:
            self._ensure_index()
            with self._lock:
                if self._idx_of is None:
                    assert self._ids is not None
                    self._idx_of = {pid: i for i, pid in enumerate(self._ids)}
        return self._idx_of.get(passage_id)

    def passage_id(self, idx: int) -> str:
        self._ensure_index()
        assert self._ids is not None
        return self._ids[idx]

    def close(self) -> None:
        with self._lock:
            self._matrix = None
            self._index = None
            self._ids = None
            self._idx_of = None

    # ------------------------------------------------------------------------------------- helpers

    def _as_queries(self, vectors: np.ndarray) -> np.ndarray:
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dimension:
            raise ConfigError(f"query vectors have shape {q.shape}, index dimension is {self.dimension}")
        return np.ascontiguousarray(q)

