"""FAISS searcher: query -> sentence-transformers embedding -> FAISS top-k -> `Hit`s.

The FAISS index, the passage id list and the encoder are loaded lazily on first use (thread-safe),
so constructing a retriever is cheap and importing this module loads nothing heavy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import VECTOR, Leg, Restriction, SourceFilters, check_k, query_matrix
from backends.faiss.encoder import check_model_unchanged, dimension_of, encode_queries, load_query_encoder
from backends.faiss.flat_split import blocked_search, exact_top_k, large_flat, split_search, ties_by_id
from backends.faiss.gpu import GPU_MAX_K, batch_invariant_gpu_search, faiss_device, to_gpu
from backends.faiss.prescan import Int8Prescan
from backends.faiss.rows import RowFile
from backends.faiss.section import FaissSection
from backends.hit import Hit
from backends.threads import faiss_threads_here
from indexer import layout
from indexer.columns import COLUMNS_DIR, Columns
from indexer.errors import ConfigError, IndexClosed, IndexFormatError
from indexer.schema import doc_id_of


EXACT_ALLOWED_MAX = 50_000  # a restriction allowing at most this many passages is searched exactly
# ... on a large exact index, only while it allows at most this many or 1/20 of its passages (`_exact_limit`)
FLAT_EXACT_ALLOWED = 4_000


class _ListIds:
    """The passage-id interface of `Columns` over a JSON id list (a dense folder built on its own)."""

    def __init__(self, ids: list[str]):
        self._ids = ids
        self._idx_of: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def passage_id(self, position: int) -> str:
        return self._ids[position]

    def passage_ids(self, positions: Sequence[int]) -> list[str]:
        return [self._ids[p] for p in positions]

    def position(self, passage_id: str) -> int | None:
        if self._idx_of is None:
            self._idx_of = {pid: i for i, pid in enumerate(self._ids)}
        return self._idx_of.get(passage_id)


# IVF-PQ re-scores its candidates with the exact vectors in blocks: each REFINE_BLOCK hits are the best
# by exact score among the first (block + 1) x REFINE_BLOCK x refine approximate candidates not yet
# given. A list of k is then the start of any longer one, as paging needs (`ranker.pipeline`: a later
# page searches deeper, and its hits of the earlier depth must be the earlier page's). Re-scored all
# at once, k x refine candidates at 150 and at 180 ranked differently from the 42nd hit on: pages
# repeated a hit and skipped another. At the serving depth (k0 = 100) it is one block: as before.
REFINE_BLOCK = 100


def _refined_order(ids: np.ndarray, exact: np.ndarray, k: int, pool_step: int) -> np.ndarray:
    """Positions into `ids` (approximate order) of the top `k`, block by block (`REFINE_BLOCK`); ties
    by id, as one sort of every candidate gave them."""
    order: list[np.ndarray] = []
    taken = np.zeros(len(ids), dtype=bool)
    emitted = 0
    for block in range(-(-k // REFINE_BLOCK)):
        pool = np.flatnonzero(~taken[: (block + 1) * pool_step])
        if not len(pool):
            break
        want = min(REFINE_BLOCK, k - emitted)
        best = pool[np.lexsort((ids[pool], -exact[pool]))[:want]]
        taken[best] = True
        order.append(best)
        emitted += len(best)
    return np.concatenate(order) if order else np.zeros(0, dtype=np.int64)


class FaissSearcher:
    """Vector retriever over a build's `dense/` folder (a `backends.base.VectorRetriever`)."""

    name: ClassVar[Leg] = VECTOR
    restricts: ClassVar[bool] = True  # `search_vectors` applies a `Restriction`'s position mask

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
        self._threads = threads  # FAISS's threads for this searcher's searches; None: the budget (backends.threads)
        self._model = model
        self._model_checked = False
        self._index: Any = None
        self._gpu_index: Any = None  # a GPU copy for unrestricted searches (backends.faiss.gpu), if any
        self._ids: Columns | _ListIds | None = None
        self._matrix: np.ndarray | None = None
        self._exact: RowFile | None = None  # exact vectors, read by row (IVF-PQ builds)
        self._prescan: Int8Prescan | None = None  # a single query's int8 scan first (`enable_prescan`)
        self._refine = 0
        self.exact_allowed_max = EXACT_ALLOWED_MAX
        self._lock = threading.Lock()
        self._closed = False
        self._settings = section.encoder_settings(device)

    @classmethod
    def open(cls, build_dir: Path, section: FaissSection, *, threads: int = 2) -> "FaissSearcher":
        faiss_device()  # a bad DRSEARCH_FAISS_DEVICE fails at open, not at the first query
        return cls(build_dir, section)

    # -------------------------------------------------------------------------------- lazy loading

    def _ensure_index(self) -> Any:
        if self._index is not None:
            return self._index
        with self._lock:
            self._refuse_closed()
            if self._index is None:
                import faiss

                ipath = self.dir / self.section.files.index
                idpath = self.dir / self.section.files.passage_ids
                columns = self.build_dir / COLUMNS_DIR
                if not ipath.is_file() or not (columns.is_dir() or idpath.is_file()):
                    raise IndexFormatError("dense index files are missing", where=str(self.dir))
                try:
                    index = _read_index(str(ipath), self.section.ann)
                    if self.section.files.vectors:  # exact vectors for re-scoring IVF-PQ candidates
                        self._exact = RowFile(self.dir / self.section.files.vectors)
                    # Position <-> id through the memory-mapped columns; the JSON list only for a
                    # dense folder built on its own (no columns beside it).
                    ids = Columns(columns) if columns.is_dir() else _ListIds(json.loads(idpath.read_text("utf-8")))
                except (RuntimeError, OSError, ValueError) as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise IndexFormatError(f"unreadable dense index: {first}", where=str(self.dir)) from None
                if index.d != self.dimension:
                    raise IndexFormatError(
                        f"dense index has dimension {index.d}, manifest says {self.dimension}", where=str(ipath)
                    )
                if len(ids) != index.ntotal:
                    raise IndexFormatError(f"dense id list has {len(ids)} entries, index {index.ntotal}", where=str(idpath))
                if self._exact is not None and self._exact.shape != (index.ntotal, index.d):
                    raise IndexFormatError(f"exact vectors are {self._exact.shape[0]} x {self._exact.shape[1]}, the index "
                                           f"{index.ntotal} x {index.d}", where=str(self.dir / self.section.files.vectors))  # fmt: skip
                hnsw = self.section.hnsw
                if hnsw and hasattr(index, "hnsw"):
                    index.hnsw.efSearch = hnsw.ef_search
                if self.section.ivf:
                    faiss.extract_index_ivf(index).nprobe = self.section.ivf.nprobe
                    self._refine = self.section.ivf.refine if self._exact is not None else 0
                self._gpu_index = to_gpu(index, self.section.ann, self.section.ivf.nprobe if self.section.ivf else None)
                self._ids = ids
                self._index = index
        return self._index

    def _ensure_model(self) -> Any:
        if self._model is not None and self._model_checked:
            return self._model
        with self._lock:
            self._refuse_closed()
            if self._model is None:
                self._model = load_query_encoder(self._settings)
            if not self._model_checked:
                got = int(dimension_of(self._model))
                if got != self.dimension:
                    raise ConfigError(
                        f"encoder produces {got}-dimensional vectors but the index was built with {self.dimension}",
                        where=str(self._settings.model or "bundled model"),
                    )
                check_model_unchanged(self.section.model_digest, self._settings)
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

    def enable_prescan(self) -> bool:
        """Score single unfiltered queries against an int8 copy of the vectors first, then exactly only
        those that can be in the top k (`backends.faiss.prescan`): the same hits, ~0.3 ms less a query
        after an encode (docs/BENCHMARKS.md, issue 14), for ~11 MB more memory on SciFact. Only over an exact
        inner-product index below FLAT_SPLIT_FROM vectors on the CPU; False elsewhere, or where it
        cannot be made. For processes that serve many searches (`service.validate`)."""
        import faiss

        index = self._ensure_index()
        if (not isinstance(index, faiss.IndexFlat) or index.metric_type != faiss.METRIC_INNER_PRODUCT
                or large_flat(index) or self._gpu_index is not None or index.ntotal == 0):  # fmt: skip
            return False
        if self._prescan is None:
            prescan = Int8Prescan.over(self._vectors())
            with self._lock:
                if self._index is index and self._prescan is None:
                    self._prescan = prescan
        return self._prescan is not None

    # -------------------------------------------------------------------------------------- public

    @property
    def size(self) -> int:
        return int(self._ensure_index().ntotal)

    def encode(self, queries: Sequence[str], on_idle: Callable[[], None] | None = None) -> np.ndarray:
        """Query vectors, batch-invariant (see `encode_queries`, also for `on_idle`); queries arrive
        already validated."""
        return encode_queries(self._ensure_model(), list(queries), self._settings, on_idle)

    def encode_passages(self, titles_and_texts: Sequence[tuple[str, str]]) -> np.ndarray:
        """Embed passages that are not in the index (e.g. a page fetched live), as the index embeds its own."""
        from backends.faiss.encoder import encode_passages, passage_text

        return encode_passages(self._ensure_model(), [passage_text(t, x) for t, x in titles_and_texts], self._settings)

    def search_vectors(
        self, vectors: np.ndarray, k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[list[Hit]]:
        """Top-k for already encoded queries. A `Restriction`'s position mask limits the search to
        those passages (pre-filtering); plain source filters are left to the pipeline's post-filter."""
        # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank, dense_rank)
        return [[Hit(p, doc_id_of(p), s, r, None, s, None, None, None, r) for r, (p, s) in enumerate(zip(pids, scores), 1)]
                for pids, scores in self.search_vectors_raw(vectors, k, filters)]  # fmt: skip

    def search_vectors_raw(
        self, vectors: np.ndarray, k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[tuple[list[str], list[float]]]:
        """As `search_vectors`, each query's top k as (passage ids, scores) best first: no `Hit` per candidate."""
        found = self.search_vectors_positions(vectors, k, filters)
        ids = self._ids
        assert ids is not None  # loaded with the index
        return [(ids.passage_ids(p.tolist()), s.tolist()) for p, s in found]

    def search_vectors_positions(
        self, vectors: np.ndarray, k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """As `search_vectors`, each query's top k as (positions int64, scores float32) best first: the
        passages' positions in the build's columns (the store's idx), for the pipeline's lean hybrid
        path (`ranker.candidates`), which reads an id only for a hit it builds."""
        check_k(k)
        q = self._as_queries(vectors)
        index = self._ensure_index()
        kk = min(k, int(index.ntotal))
        if kk == 0 or len(q) == 0:
            return [(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)) for _ in range(len(q))]
        allowed = filters.allowed if isinstance(filters, Restriction) else None
        if allowed is None:
            gpu = self._gpu_index is not None and self._candidates(kk) <= GPU_MAX_K
            prescanned = None if gpu else self._prescanned(q, kk)
            if prescanned is not None:
                return prescanned
            scores, found = self._knn(self._gpu_index if gpu else index, q, kk)
        else:
            scores, found = self._search_allowed(index, q, kk, allowed)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for srow, irow in zip(scores, found):
            if len(irow) and irow.min() < 0:  # fewer found than asked: FAISS fills the rest with -1
                kept = irow >= 0
                srow, irow = srow[kept], irow[kept]
            out.append((irow.astype(np.int64, copy=False), srow))
        return out

    def _search_allowed(self, index: Any, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Search only the allowed positions: exact over their vectors when they are few, else
        through a FAISS id selector (a bitmap), with more lists probed for IVF."""
        import faiss

        positions = np.flatnonzero(allowed)
        if len(positions) == 0:
            return np.zeros((len(q), 0), dtype=np.float32), np.zeros((len(q), 0), dtype=np.int64)
        k = min(k, len(positions))
        if len(positions) <= self._exact_limit(index):
            rows = self._rows(positions)
            # One matrix-vector product per query: a matrix product of the whole batch sums in an order
            # that depends on the batch's size (one query alone goes to gemv), and so would its scores.
            scores = np.stack([rows @ qv for qv in q])
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            return np.take_along_axis(scores, top, axis=1), positions[top]
        bits = np.packbits(allowed.astype(bool, copy=False), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        if self.section.ivf:
            ivf = faiss.extract_index_ivf(index)
            share = len(positions) / max(1, index.ntotal)
            nprobe = min(ivf.nlist, max(ivf.nprobe, int(ivf.nprobe / share**0.5)))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        elif hasattr(index, "hnsw"):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(index.hnsw.efSearch, k))
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, found = self._knn(index, q, k, params)
        del bits  # read by the selector during the search only
        return scores, found

    def _exact_limit(self, index: Any) -> int:
        """Up to how many allowed passages `_search_allowed` scores from a copy of their vectors. HNSW
        and IVF need that below `exact_allowed_max` (through an id selector they lose recall when few
        are allowed). A large exact index searched through a selector is exact too, and reads the
        vectors in place: that is faster once more than FLAT_EXACT_ALLOWED or 1/20 of its passages
        are allowed (2-7x for one query at 20-50 % of 100,000; docs/BENCHMARKS.md, issue 14)."""
        if large_flat(index):
            return min(self.exact_allowed_max, max(FLAT_EXACT_ALLOWED, int(index.ntotal) // 20))
        return self.exact_allowed_max

    def _candidates(self, k: int) -> int:
        """How many hits FAISS is asked for to give k: with IVF-PQ's re-scoring, whole blocks' candidates."""
        return -(-k // REFINE_BLOCK) * REFINE_BLOCK * self._refine if self._refine and self._exact is not None else k

    def _knn(self, index: Any, q: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search; for IVF-PQ, its candidates re-scored with the exact vectors (`REFINE_BLOCK`)."""
        faiss_threads_here(self._threads)
        on_gpu = index is self._gpu_index
        search = partial(batch_invariant_gpu_search if on_gpu else batch_invariant_search, index)
        if not self._refine or self._exact is None:
            return search(q, k, params=params)
        _, cand = search(q, self._candidates(k), params=params)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        found = np.full((len(q), k), -1, dtype=np.int64)
        for row, (qv, ids) in enumerate(zip(q, cand)):
            ids = ids[ids >= 0]  # in the approximate order, which is the same at any depth
            by_id = np.sort(ids)  # ascending: neighbours come in one read (backends.faiss.rows)
            # einsum: each row's sum in one order whatever the rows beside it (a matrix product's
            # kernel sums a row otherwise in a batch of 400 than of 720: a hit's score moved by depth)
            exact = np.einsum("ij,j->i", self._exact.rows(by_id), qv)[np.searchsorted(by_id, ids)]
            top = _refined_order(ids, exact, k, REFINE_BLOCK * self._refine)
            scores[row, : len(top)], found[row, : len(top)] = exact[top], ids[top]
        return scores, found

    def _prescanned(self, q: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """One query's top k (positions, scores) from the int8 prescan (`enable_prescan`), all k found;
        None where it does not serve: a batch, k past a quarter of the index, a scan that would not pay.
        Taken before FAISS's thread setting and the check for missing hits, which the prescan needs
        neither of (each a few microseconds on caches an encode has just flushed)."""
        prescan = self._prescan
        if prescan is None or len(q) != 1 or 4 * k > prescan.n:
            return None
        found = prescan.search(q[0], k)
        return None if found is None else [(found[1][0], found[0][0])]

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        """Vectors at `positions`: the exact vectors file, flat storage, else FAISS's reconstruction."""
        import faiss

        if self._exact is not None:
            return self._exact.rows(positions)
        index = self._ensure_index()
        storage = index if isinstance(index, faiss.IndexFlat) else getattr(index, "storage", None)
        if storage is not None and isinstance(faiss.downcast_index(storage), faiss.IndexFlat):
            return self._vectors()[positions]
        return index.reconstruct_batch(positions.astype(np.int64))

    def scores_for(self, vectors: np.ndarray, passage_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Dense scores of given candidate passages, one float32 array per query, in the given order."""
        q = self._as_queries(vectors)
        if len(q) != len(passage_ids):
            raise ValueError(f"{len(q)} query vectors but {len(passage_ids)} candidate lists")
        self._ensure_index()
        ids = self._ids
        assert ids is not None
        out: list[np.ndarray] = []
        for qv, cand in zip(q, passage_ids):
            idx = np.empty(len(cand), dtype=np.int64)
            for i, p in enumerate(cand):
                pos = ids.position(p)
                if pos is None:
                    raise KeyError(f"passage {p!r} is not in the dense index")
                idx[i] = pos
            out.append((self._rows(idx) @ qv).astype(np.float32, copy=False))
        return out

    def _refuse_closed(self) -> None:
        """After `close`, nothing is loaded again (a caller holding the leg would reopen its files)."""
        if self._closed:
            raise IndexClosed(f"{self.dir}: the vector leg was closed (SearchPipeline.close); open the index again")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._model = None  # the encoder's memory goes with the last reference (a caller's shared model stays)
            self._model_checked = False
            self._prescan = None  # before the vectors it reads go
            self._matrix = None
            self._index = None
            self._gpu_index = None
            self._ids = None
            if self._exact is not None:
                self._exact.close()
            self._exact = None

    # ------------------------------------------------------------------------------------- helpers

    def _as_queries(self, vectors: np.ndarray) -> np.ndarray:
        return query_matrix(vectors, self.dimension)


def _read_index(path: str, ann: str | None) -> Any:
    """Open a FAISS index memory-mapped (IVF lists, or the flat codes of exact/HNSW indexes) so its
    pages load on touch and stay out of the process heap; a plain read where that fails."""
    import faiss

    mmap = faiss.IO_FLAG_MMAP if ann == "ivf-pq" else faiss.IO_FLAG_MMAP_IFC
    try:
        return faiss.read_index(path, mmap | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        return faiss.read_index(path)


def batch_invariant_search(index: Any, q: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """`index.search` in chunks small enough that FAISS computes each query's distances the same way
    whatever batch it came in. At `queries x dimension` ≥ its `distance_compute_blas_threshold`
    (FAISS 1.15: 128,000, a batch of 334 queries at 384 dimensions) FAISS switches from its SIMD loop
    to BLAS, whose sums run in another order: in a batch of 400 SciFact queries every query's scores
    moved by up to 3.6e-7 and one query's list changed order, against each query alone. The service's
    micro-batcher merges queries into batches of up to `batch_max_queries` (≤ 4,096), and a request's
    scores must not depend on what it was merged with. Fewer queries than FAISS has threads, over a
    large exact index, are split over threads as a batch is scored, and a batch is scored block by
    block of the vectors, each read once for all its queries (`backends.faiss.flat_split`). Over an
    exact index, equal scores come in one order, the cut included (`exact_top_k`)."""
    import faiss

    threads = faiss.omp_get_max_threads()  # this thread's: what FAISS's parallel regions here use
    split = large_flat(index)
    if split and len(q) < threads:
        return split_search(index, q, k, threads, None if params is None else params.sel)
    step = max(1, (int(faiss.cvar.distance_compute_blas_threshold) - 1) // max(1, q.shape[1]))
    if split and params is None:
        return blocked_search(index, q, k, step)

    def search(rows: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        if len(rows) <= step:
            return index.search(rows, kk, params=params)
        parts = [index.search(rows[i : i + step], kk, params=params) for i in range(0, len(rows), step)]
        return np.vstack([s for s, _ in parts]), np.vstack([f for _, f in parts])

    if split:
        return ties_by_id(index, *search(q, k))
    if isinstance(index, faiss.IndexFlat):  # exact: equal scores in one order (as the int8 prescan gives)
        return exact_top_k(index, q, k, search)
    return search(q, k)
