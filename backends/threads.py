"""One thread budget per process for every compute pool: torch, ONNX Runtime, FAISS (OpenMP) and
the Lucene query pool.

Each library sizes its pool to all cores by default, so a worker that encodes with torch, searches
FAISS and runs Lucene queries, times N workers, oversubscribes a small machine many times over
(an oversubscribed intra-op pool made single-query encoding ~25x slower on a busy 2-core host).
The policy: budget = usable cores // worker processes (at least 1), or $DRSEARCH_THREADS when set;
`drsearch serve --workers N` applies it in each worker. Nothing is imported at module import.

OpenMP pools (torch, FAISS) are told to sleep when idle (`OMP_WAIT_POLICY=PASSIVE`, unless the
environment already says otherwise): by default their threads spin for a while after each parallel
region, burning the cores that the Lucene leg, which runs right after the query is encoded, needs.
Measured on 2 cores: hybrid end to end 0.63x -> 0.67-0.8x the encoder's throughput, single-query
p50 1.34x -> 1.20x the encoder's, encoder alone unchanged (docs/BENCHMARKS.md, issue 14).
OpenMP reads the variable when the library loads, so `set_budget` must run before torch or FAISS
is first imported to have this effect.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_budget: int | None = None
_torch_threads: int | None = None


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity masks
        return os.cpu_count() or 1


def worker_budget(workers: int = 1) -> int:
    """Threads each of `workers` processes may use: $DRSEARCH_THREADS, else cores // workers."""
    env = os.environ.get("DRSEARCH_THREADS", "").strip()  # empty: unset
    if env:
        if not (env.isascii() and env.isdigit() and int(env) > 0):
            from indexer.errors import ConfigError

            raise ConfigError(f"DRSEARCH_THREADS must be a whole number of threads, at least 1, got {env!r} "
                              "(unset it for cores // workers)", field="DRSEARCH_THREADS")  # fmt: skip
        return int(env)
    return max(1, cores() // max(1, workers))


def budget() -> int:
    """The budget set for this process (`set_budget`), else the single-worker budget."""
    return _budget if _budget is not None else worker_budget(1)


def set_budget(n: int, *, torch_threads: int | None = None) -> None:
    """Size every pool of this process to `n` threads (torch to `torch_threads` when given).

    torch's pool is process-wide and set here; FAISS's OpenMP count is per thread, set here for this
    thread and by each FAISS search for its own (`faiss_threads_here`); ONNX Runtime sessions and the
    Lucene query pool read `budget()` when they are created."""
    global _budget, _torch_threads
    _budget = max(1, int(n))
    _torch_threads = torch_threads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by OpenMP when torch / FAISS load
    if "torch" in sys.modules:  # else when it loads (`torch_loaded`): an ONNX build's queries never load it
        torch_loaded()
    try:
        import faiss

        faiss.omp_set_num_threads(_budget)
    except ImportError:
        pass


def torch_loaded() -> None:
    """Size torch's pool to the budget set for this process, if one was: called by `set_budget` where
    torch is loaded, and by the encoder's loader right after it imports torch."""
    if _budget is None:
        return
    import torch

    torch.set_num_threads(_torch_threads or _budget)


def faiss_threads_here(n: int | None = None) -> None:
    """Give FAISS `n` threads (default: the budget) in the calling thread. OpenMP keeps its thread count per thread:
    `omp_set_num_threads` in `set_budget` reached only the thread that called it, and every other
    thread (the service's search threads) ran FAISS on all cores, so N workers oversubscribed them
    N times. Each FAISS search calls this first (two C calls)."""
    import faiss

    n = n or budget()
    if faiss.omp_get_max_threads() != n:
        faiss.omp_set_num_threads(n)


class Later:
    """Work for a core that is not busy yet: `start()` submits it (e.g. called by an encoding
    thread that has run out of runs, `backends.faiss.onnx.OnnxEncoder.encode_each`'s `on_idle`);
    `result()` starts it if no one did and waits for it. Started at most once.

    `submit` runs a function on some thread and returns its Future (`ThreadPoolExecutor.submit`);
    follow-ups added with `also` run on the same thread right after `work`."""

    def __init__(self, submit: Callable[[Callable[[], Any]], Future], work: Callable[[], Any]):
        self._submit = submit
        self._work = work
        self._after: list[tuple[Future, Callable[[], Any]]] = []
        self._future: Future | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._future is None:
                self._future = self._submit(self._run)

    def result(self) -> Any:
        self.start()
        assert self._future is not None
        return self._future.result()

    def also(self, fn: Callable[[], Any]) -> "FollowUp":
        """`fn()`, to run on this work's thread right after it (this work's own result then waits
        for it too). Only before the work is started."""
        future: Future = Future()
        with self._lock:
            if self._future is not None:
                raise RuntimeError("Later.also after the work was started")
            self._after.append((future, fn))
        return FollowUp(self, future)

    def _run(self) -> Any:
        try:
            return self._work()
        finally:
            run_follow_ups(self._after)


def run_follow_ups(after: list[tuple[Future, Callable[[], Any]]]) -> None:
    """Each `(future, fn)` in turn: `fn()`'s result or exception into its future."""
    for future, fn in after:
        try:
            future.set_result(fn())
        except BaseException as exc:  # reaches whoever asks for the follow-up's result
            future.set_exception(exc)


class FollowUp:
    """The outcome of work added with `Later.also`: `result()` starts the work it follows if no one
    did, then waits for both."""

    def __init__(self, first: Later, future: Future):
        self._first = first
        self._future = future

    def result(self) -> Any:
        try:
            self._first.result()  # done once the follow-ups are (they run before it returns)
        except BaseException:
            if not self._future.done():  # never ran: the work was cancelled or could not be submitted
                raise
        return self._future.result()
