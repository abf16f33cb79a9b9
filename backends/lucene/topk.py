"""A query's BM25 top-k from Lucene as two arrays, in a handful of JNI calls instead of two per hit.

Pyserini (and Anserini's `SimpleSearcher.batch_search`) hand back one `ScoredDoc` Java object per
hit, and reading its `docid` and `score` from Python costs a JNI round trip each: at k=100 that is
most of a query's time. Here each query ranks as `SimpleSearcher.search` ranks (the same
bag-of-words query, BM25(k1, b), ties broken by id, Anserini's score-tie adjustment) and the hits
come back as two arrays, ids (String[]) and scores (float[]), in one call each. The project's helper
(`java/drsearch/TopKArrays.java`, on the JVM's classpath) also avoids the costly parts of the Java
side: the (score, id) sort is applied only to the few hits around the cut, and ids are read from
doc values instead of stored documents (a search for positions reads them only where scores tie).
Where the JVM was started without it (by another library first), the same ranking comes from the
sorted search and Anserini's `ScoredDocs`. Hits are identical to Pyserini's, ties included. Java
objects stay in this module.

Searches run on several threads at once, so the helper is called through its static methods, the
helper passed as an argument, and the fallback's instance calls hold `jvm.INSTANCE_CALLS`: a pyjnius
instance call from two threads on two objects can land both on one (see `jvm.INSTANCE_CALLS`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from backends.lucene.jvm import INSTANCE_CALLS, autoclass
from backends.threads import FollowUp, Later, run_follow_ups
from ranker import kernels

_INDEX_READER = "(Lorg/apache/lucene/index/IndexReader;)V"


class LuceneTopK:
    """Thread-safe top-k over one Lucene index; `batch` spreads queries over `threads` Python
    threads (the Java calls run outside the GIL, so 2 threads use 2 cores)."""

    def __init__(self, lucene_dir: Path, analyzer, *, k1: float, b: float, threads: int):
        directory = autoclass("org.apache.lucene.store.FSDirectory").open(autoclass("java.io.File")(str(lucene_dir)).toPath())
        self._reader = autoclass("org.apache.lucene.index.DirectoryReader").open(directory)
        try:
            self._open(lucene_dir, analyzer, k1=k1, b=b, threads=threads)
        except BaseException:
            self._reader.close()
            raise

    def _open(self, lucene_dir: Path, analyzer, *, k1: float, b: float, threads: int) -> None:
        self._searcher = autoclass("org.apache.lucene.search.IndexSearcher")(self._reader, signature=_INDEX_READER)
        self._searcher.setSimilarity(autoclass("org.apache.lucene.search.similarities.BM25Similarity")(float(k1), float(b)))
        sort_field = autoclass("org.apache.lucene.search.SortField")
        string_val = autoclass("org.apache.lucene.search.SortField$Type").STRING_VAL
        # Anserini's order: score, then the stored id ascending (its BREAK_SCORE_TIES_BY_DOCID).
        self._sort = autoclass("org.apache.lucene.search.Sort")(sort_field.FIELD_SCORE, sort_field("id", string_val))
        self._generator = autoclass("io.anserini.search.query.BagOfWordsQueryGenerator")()
        self._scored_docs = autoclass("io.anserini.search.ScoredDocs")
        self._ties = autoclass("io.anserini.rerank.lib.ScoreTiesAdjusterReranker")()
        self._threads = max(1, int(threads))
        self._arrays = _helper(self._searcher, self._sort, self._threads)
        self._helper_class = autoclass("drsearch.TopKArrays") if self._arrays is not None else None
        self._doc_positions = _doc_positions(lucene_dir, int(self._reader.maxDoc())) if self._arrays is not None else None
        self._analyzer = analyzer
        self._pool: ThreadPoolExecutor | None = None if self._threads == 1 else _started_pool(self._threads)
        self._lock = threading.Lock()

    @property
    def reader(self):
        """The index's Lucene DirectoryReader, opened once with this object."""
        return self._reader

    @property
    def has_positions(self) -> bool:
        """Whether hits can come as column positions (`search_positions`): builds with the doc-position map."""
        return self._doc_positions is not None

    def _query(self, query: str, wrap: Callable | None):
        # An instance call without the lock: the generator holds no state, so a call that lands on
        # another index's generator builds the same query.
        lucene_query = self._generator.buildQuery("contents", self._analyzer, query)
        return lucene_query if wrap is None else wrap(lucene_query)

    def search(self, query: str, k: int, wrap: Callable | None = None) -> tuple[list[str], list[float]]:
        """(passage ids, scores) best first, as Anserini's `SimpleSearcher.search(query, k)` ranks them.
        `wrap` turns the bag-of-words query into the one searched (e.g. with filter clauses)."""
        lucene_query = self._query(query, wrap)
        if self._arrays is not None:
            result = self._helper_class.search(self._arrays, lucene_query, int(k))
            return result.ids, result.scores
        with INSTANCE_CALLS:
            top = self._searcher.search(lucene_query, int(k), self._sort, True)
            docs = self._ties.rerank(self._scored_docs.fromTopDocs(top, self._searcher), None)
        return docs.docids, docs.scores

    def search_positions(self, query: str, k: int, wrap: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`search` with each hit's column position (int64) in place of its id, scores as float32:
        no id string crosses from Java (requires `has_positions`)."""
        assert self._doc_positions is not None and self._arrays is not None
        result = self._helper_class.searchDocs(self._arrays, self._query(query, wrap), int(k))
        return self._doc_positions[np.asarray(result.docs, dtype=np.int64)].astype(np.int64), np.asarray(result.scores, dtype=np.float32)

    def batch(self, queries: list[str], k: int, wrap: Callable | None = None, *, positions: bool = False) -> list:
        """`search` (or with `positions`, `search_positions`) of each query, over the pool's threads.
        Unwrapped queries' positions come from one Java call that searches on the helper's own threads."""
        if positions and wrap is None and len(queries) > 1:
            return self._batch_positions(queries, k)
        one = self.search_positions if positions else self.search
        with self._lock:
            pool = self._pool
        if len(queries) < 2 or pool is None:
            return [one(q, k, wrap) for q in queries]
        return list(pool.map(lambda q: one(q, k, wrap), queries))

    def positions_later(self, queries: list[str], k: int,
                        guard: Callable[[], AbstractContextManager] = nullcontext) -> Later | JavaLater | None:  # fmt: skip
        """`batch(queries, k, positions=True)` to run on a pool thread once started (`Later.start`),
        for a caller with other work meanwhile (encoding the queries), inside `guard()`; None without
        a pool (one thread) or positions. One query is searched on one of the helper's Java threads
        (`JavaLater`)."""
        with self._lock:
            pool = self._pool
        if pool is None or self._doc_positions is None:
            return None
        if len(queries) == 1:
            return JavaLater(self, queries[0], k, guard)

        def work() -> list:
            with guard():
                return self.batch(queries, k, positions=True)

        return Later(pool.submit, work)

    def _batch_positions(self, queries: list[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        assert self._doc_positions is not None and self._arrays is not None
        packed = self._helper_class.searchDocsBatch(self._arrays, self._generator, self._analyzer, "contents", queries, int(k))
        return self._unpacked(packed, len(queries))

    def _unpacked(self, packed, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (positions, scores) of each of the `n` queries of a `searchDocsBatch`'s bytes."""
        return self._positions_and_scores(np.frombuffer(packed.tostring(), dtype="<i4"), n)

    def _positions_and_scores(self, words: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (positions, scores) of each of the `n` queries whose hits `words` holds: per query its hit
        count, then all doc ids, then all scores (int32/float32, little-endian). One query's in one
        compiled call where the kernels are on (`ranker.kernels`): this runs right after its encode."""
        assert self._doc_positions is not None
        compiled = kernels.active() if n == 1 and words.dtype.isnative else None
        if compiled is not None:
            ok, positions, scores = compiled.unpack_one(words, self._doc_positions)
            if ok:
                return [(positions, scores)]
        docs, scores = words[n:].reshape(2, -1)
        positions = self._doc_positions[docs].astype(np.int64)
        scores = scores.view("<f4").astype(np.float32)
        if n == 1:  # a single query's (`JavaLater`), after its encode: every step counts there
            return [(positions, scores)]
        ends = np.cumsum(words[:n])
        starts = ends - words[:n]
        return [(positions[a:b], scores[a:b]) for a, b in zip(starts.tolist(), ends.tolist())]

    def close(self) -> None:
        if self._arrays is not None:
            self._helper_class.close(self._arrays)
        with self._lock:
            if self._pool is not None:
                _detach_workers(self._pool, self._threads)
                self._pool = None
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._doc_positions = None  # unmapped once no array views it


class JavaLater:
    """One query's `positions_later`, searched on one of the helper's own Java threads: no Python
    thread runs the search or waits for it, so it takes no turn of the interpreter's lock from the
    caller, which encodes the query meanwhile (a Python pool thread cost single-query hybrid p50
    ~0.05x of the encode's; docs/BENCHMARKS.md, issue 14). `Later`'s interface: `start`, `result`,
    `also`; follow-ups run on the thread that asks for the result, after the search (on a Python
    pool thread they brought the cost back).

    Only the thread that made it starts the search (a thread that makes a JNI call stays attached
    to the JVM, and the encoder's short-lived helper threads must not); `result` starts it otherwise."""

    def __init__(self, topk: LuceneTopK, query: str, k: int, guard: Callable[[], AbstractContextManager]):
        self._topk, self._query, self._k, self._guard = topk, query, int(k), guard
        self._owner = threading.get_ident()
        self._lock = threading.Lock()  # guards the fields below
        self._started = None  # the helper's Future, once submitted
        self._after: list[tuple[Future, Callable[[], Any]]] = []
        self._done = False  # once asked for and awaited: its hits or the error every caller gets
        self._hits: list[tuple[np.ndarray, np.ndarray]] = []
        self._error: BaseException | None = None

    def start(self) -> None:
        if threading.get_ident() != self._owner:
            return
        with self._lock:
            self._submit()

    def _submit(self) -> None:
        if self._started is None:
            topk = self._topk
            self._started = topk._helper_class.searchDocsLater(topk._arrays, topk._generator, topk._analyzer,
                                                               "contents", self._query, self._k)  # fmt: skip

    def also(self, fn: Callable[[], Any]) -> FollowUp:
        """`fn()`, to run right after the search, before its result is handed over. Only before it is started."""
        future: Future = Future()
        with self._lock:
            if self._started is not None:
                raise RuntimeError("also after the search was started")
            self._after.append((future, fn))
        return FollowUp(self, future)

    def result(self) -> list[tuple[np.ndarray, np.ndarray]]:
        # Plain fields rather than a Future: this runs right after an encode, where each object made
        # and each call costs several microseconds on flushed caches.
        with self._lock:
            if not self._done:
                try:
                    self._submit()
                    with self._guard():
                        packed = self._topk._helper_class.awaitDocs(self._started)
                    self._hits = self._topk._unpacked(packed, 1)
                except BaseException as exc:  # reaches every caller of result
                    self._error = exc
                self._done = True
                run_follow_ups(self._after)
        if self._error is not None:
            raise self._error
        return self._hits


TIE_MARGIN = 16  # hits collected beyond k, so that a tie at the cut rarely needs the sorted search


def _helper(searcher, sort, threads: int):
    """The project's `drsearch.TopKArrays` over `searcher` (its batch threads started now), or None
    where the JVM lacks it."""
    from jnius import JavaException

    try:
        return autoclass("drsearch.TopKArrays")(searcher, sort, "id", TIE_MARGIN, threads)
    except JavaException:  # the JVM was started before ours, without the helper on its classpath
        return None


DOC_POSITIONS = "doc_positions.npy"  # column position of each Lucene doc id (backends.lucene.writer)


def _doc_positions(lucene_dir: Path, max_doc: int) -> np.ndarray | None:
    """The build's doc id -> column position map, memory-mapped; None for builds without one (their
    hits' ids are looked up in the columns instead) or one that does not fit the index."""
    path = lucene_dir / DOC_POSITIONS
    if not path.is_file():
        return None
    try:
        positions = np.load(path, mmap_mode="r").view(np.ndarray)  # numpy.memmap's own indexing is slower
    except (OSError, ValueError):
        return None
    return positions if positions.ndim == 1 and len(positions) == max_doc else None


def _started_pool(workers: int) -> ThreadPoolExecutor:
    """A pool whose threads all exist now, started by the thread that opens the index: a thread
    inherits its creator's scheduling priority, and a pool started lazily by a low-priority request
    thread (`service.priority`) would run every later request's BM25 leg at that priority."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="lucene-topk")
    barrier = threading.Barrier(workers)
    for _ in range(workers):  # each task waits for the others, so each gets a thread of its own
        pool.submit(barrier.wait, 10)
    return pool


def _detach_workers(pool: ThreadPoolExecutor, workers: int) -> None:
    """Detach each pool thread from the JVM before it exits (an attached thread that exits leaks
    its Java thread). A barrier puts one detach task on each worker."""
    from backends.lucene.jvm import start_jvm

    jnius = start_jvm()
    barrier = threading.Barrier(workers)

    def detach() -> None:
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        jnius.detach()

    for _ in range(workers):
        pool.submit(detach)
    pool.shutdown(wait=True)
