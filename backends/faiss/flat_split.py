"""Few queries over a large exact index, split over threads the way a batch is scored.

FAISS 1.15 scores fewer queries than it has threads, over an exact index of 10,000 vectors or more
(`FLAT_SPLIT_FROM`), by splitting the index over its threads with another kernel, whose sums differ
from those it uses for a batch (each query whole on one thread): on 2 threads every one of 20
SciFact queries scored ~1e-7 otherwise alone than in a batch, from 10,000 random vectors on (9,999:
the same). The service's micro-batcher needs a query's scores not to depend on its batch.

`split_search` splits the index itself instead: each shard is scanned on a thread of its own with
FAISS on one thread there (the OpenMP thread count is per calling thread), which is the batch's
kernel, and the shards' top k are merged. Both it and a batch's results are put in one order for
equal scores (`ties_by_id`: the lower position first), as the shards' merge sees them. A search
through an id selector (source filters) is split the same way, each shard's thread searching the
whole index through the selector and the shard's id range. Single query p50, side by side
(`bench/flat_split.py`, docs/BENCHMARKS.md, issue 14), FAISS's own split / a query padded with zero
queries to one a thread / this split: 1M vectors on 16 threads 32.5 / 161 / 19.1 ms, through a
selector allowing half of them - / 111 / 20.0 ms; 100,000 on 2 threads 14.5 / 10.8 / 6.1 ms.

A batch over such an index (`blocked_search`) is scored block by block of the vectors instead of
query by query: each block, a few MB, is read once for all the queries while it is in cache, with
the same kernel (so the same scores), and the blocks' top k are merged in a heap that keeps, among
equal scores, the lower position, as `exact_top_k` orders a smaller exact index's scan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

FLAT_SPLIT_FROM = 10_000
FLAT_BLOCK_BYTES = 2 << 20  # vectors scored against a whole batch at a time (`blocked_search`)

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def large_flat(index: Any) -> bool:
    """Whether FAISS splits `index` over its threads for fewer queries than threads."""
    import faiss

    return index.ntotal >= FLAT_SPLIT_FROM and isinstance(index, faiss.IndexFlat)


def _pool(threads: int) -> ThreadPoolExecutor:
    import faiss

    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="drsearch-flat",
                                                 initializer=lambda: faiss.omp_set_num_threads(1))  # fmt: skip
        return _pools[threads]


def split_search(index: Any, q: np.ndarray, k: int, threads: int, selector: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each query over an exact index, its vectors in `threads` shards scanned side by side;
    with a FAISS id `selector`, only the ids it accepts."""
    import faiss

    bounds = np.linspace(0, index.ntotal, threads + 1).astype(np.int64)
    metric = index.metric_type

    def shard(start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        if selector is None:
            return _scan(index, q, start, end, k)
        within = faiss.IDSelectorRange(start, end)
        both = faiss.IDSelectorAnd(within, selector)  # holds plain pointers: `within` lives until the search ends
        return index.search(q, min(k, int(end - start)), params=faiss.SearchParameters(sel=both))

    parts = list(_pool(threads).map(shard, bounds[:-1].tolist(), bounds[1:].tolist()))
    scores, found = ties_by_id(index, np.hstack([s for s, _ in parts]), np.hstack([f for _, f in parts]))
    if scores.shape[1] < k:  # fewer vectors than k: padded as FAISS pads
        missing = k - scores.shape[1]
        worst = np.finfo(np.float32).max * (-1 if metric == faiss.METRIC_INNER_PRODUCT else 1)
        scores = np.hstack([scores, np.full((len(q), missing), worst, dtype=np.float32)])
        found = np.hstack([found, np.full((len(q), missing), -1, dtype=np.int64)])
    return scores[:, :k], found[:, :k]


def blocked_search(index: Any, q: np.ndarray, k: int, queries_per_call: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each query over an exact index, scored one block of vectors at a time for all the queries
    (in calls of at most `queries_per_call`, FAISS's kernel for a batch), best first, equal scores by position."""
    import faiss

    n = int(index.ntotal)
    rows = max(1, FLAT_BLOCK_BYTES // (4 * int(index.d)))
    keep_max = index.metric_type == faiss.METRIC_INNER_PRODUCT
    scores = np.empty((len(q), k), dtype=np.float32)
    found = np.empty((len(q), k), dtype=np.int64)
    for first in range(0, len(q), queries_per_call):
        part = q[first : first + queries_per_call]
        # Blocks in position order, each added with its lower positions first: the heap takes an
        # equal score only while it has room, so ties keep the lower positions (FAISS's own rule).
        heap = faiss.ResultHeap(len(part), k, keep_max=keep_max)
        for start in range(0, n, rows):
            heap.add_result(*ties_by_id(index, *_scan(index, part, start, min(n, start + rows), k)))
        heap.finalize()
        scores[first : first + len(part)], found[first : first + len(part)] = ties_by_id(index, heap.D, heap.I)
    return scores, found


def _scan(index: Any, q: np.ndarray, start: int, end: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each query among the exact index's vectors at positions [start, end), with FAISS's
    batch kernel over a view of them (no copy); found as positions in the whole index."""
    import faiss

    vectors = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
    scores, found = faiss.knn(q, vectors[start:end], min(k, int(end - start)), metric=index.metric_type)
    return scores, np.where(found >= 0, found + start, -1)


def ties_by_id(index: Any, scores: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row best first, equal scores by position (-1, nothing found, last): the order `split_search` gives."""
    import faiss

    best_first = -scores if index.metric_type == faiss.METRIC_INNER_PRODUCT else scores
    order = np.lexsort((np.where(found >= 0, found, np.iinfo(np.int64).max), best_first), axis=-1)
    return np.take_along_axis(scores, order, -1), np.take_along_axis(found, order, -1)


TIE_MARGIN = 16  # hits asked for beyond k, so that a tie at the cut rarely needs a second search


def exact_top_k(index: Any, q: np.ndarray, k: int, search: Callable[[np.ndarray, int], tuple]) -> tuple[np.ndarray, np.ndarray]:
    """The top k of each query over an exact index, `search(queries, k)` being its scan, in one order
    whatever the scan keeps among equal scores: best first, equal scores by position, and at the cut
    the lower positions. FAISS's scan keeps, among vectors tied at the k-th score, whichever its
    result handler met (k >= 50: not the lower positions), so k + TIE_MARGIN are asked for, and a row
    whose tie runs to the end of those is searched again in full. The int8 prescan
    (`backends.faiss.prescan`) gives this order too."""
    n = int(index.ntotal)
    wide = min(n, k + TIE_MARGIN)
    scores, found = search(q, wide)  # best first already: only equal scores may need reordering
    if (scores[:, 1:] == scores[:, :-1]).any():
        scores, found = ties_by_id(index, scores, found)
        if wide < n:
            tied = np.flatnonzero((scores[:, k - 1] == scores[:, wide - 1]) & (found[:, wide - 1] >= 0))
            if len(tied):
                whole = ties_by_id(index, *search(q[tied], n))
                scores[tied], found[tied] = whole[0][:, :wide], whole[1][:, :wide]
    return np.ascontiguousarray(scores[:, :k]), np.ascontiguousarray(found[:, :k])
