"""Micro-batching of concurrent search calls.

Calls on the same pipeline (index snapshot) that arrive within a short window are run together,
whatever their options: the calls sharing identical options run as one `pipeline.batch_search`.
With one set of options (the usual case) that batch encodes its own queries, its BM25 leg running
where the encoding leaves a core free; with several, the queries of every call that needs the
dense model are first encoded in ONE `pipeline.encode` call (the expensive part of a query), and
each group runs with its rows of those vectors. Encoding is batch-invariant, so
a call gets the same hits and scores as when it runs alone. A group that fails (e.g. one query
has no searchable terms) is re-run call by call, so one caller's bad input never fails another's.
A call may bring a `then` (e.g. the service's response formatting), applied to its results in the
same worker run: no second trip to a thread per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ranker import budget

Outcome = Any  # one call's results (list[list[ranker.pipeline.Result]]) or the exception it raised


@dataclass
class SearchCall:
    texts: list[str]
    options: Any  # ranker.pipeline.SearchOptions (frozen, hashable)
    future: asyncio.Future
    then: Callable[[list[list[Any]]], Any] | None = None  # applied to the call's results in the worker


@dataclass
class _Batch:
    pipeline: Any  # ranker.pipeline.SearchPipeline
    calls: list[SearchCall] = field(default_factory=list)
    n_queries: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # the window need not run out


class MicroBatcher:
    """Collects `submit` calls per pipeline for `window_s` and, while every batch slot is busy, until
    one frees up (at most `max_queries` per batch), then runs them with `search_together` on `executor`.
    A batch that already holds `ready_queries` (default: half of `max_queries`) does not wait out the
    window: a call that brings a batch of its own gains nothing from waiting for company.

    At most `max_batches` batches run at once, so under load calls pile up into larger batches
    instead of many small ones competing for the CPU (throughput grows with load); when idle a
    call waits only `window_s`. Lives on one event loop.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        window_s: float = 0.003,
        max_queries: int = 64,
        max_batches: int = 2,
        ready_queries: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        run_batch: Callable[[Any, list[SearchCall]], list[Outcome]] | None = None,
    ):
        self.executor = executor
        self.window_s = window_s
        self.max_queries = max_queries
        self.ready_queries = max(1, max_queries // 2) if ready_queries is None else ready_queries
        self.on_batch = on_batch  # (n_calls, n_queries) per executed batch, for metrics
        self.run_batch = run_batch or search_together  # the service wraps it (service.malloc.then_release)
        self._slots = asyncio.Semaphore(max_batches)
        self._open: dict[int, _Batch] = {}  # id(pipeline) -> the batch still taking calls

    async def submit(self, pipeline: Any, options: Any, texts: list[str],
                     then: Callable[[list[list[Any]]], Any] | None = None) -> Any:  # fmt: skip
        """`pipeline.batch_search(texts, options)`, possibly computed together with other calls; with
        `then`, `then` of those results, computed in the same worker run."""
        loop = asyncio.get_running_loop()
        batch = self._open.get(id(pipeline))
        if batch is not None and batch.n_queries + len(texts) > self.max_queries:
            self._close(batch)
            batch = None
        if batch is None:
            batch = self._open[id(pipeline)] = _Batch(pipeline)
            loop.create_task(self._dispatch(batch)).add_done_callback(_consume)
        call = SearchCall(texts, options, loop.create_future(), then)
        batch.calls.append(call)
        batch.n_queries += len(texts)
        if batch.n_queries >= self.max_queries:
            self._close(batch)
        elif batch.n_queries >= self.ready_queries:
            batch.ready.set()  # runs as soon as a slot is free; calls still join it until then
        return await call.future

    def _close(self, batch: _Batch) -> None:
        """No more calls join `batch`; it runs as soon as a slot is free."""
        if self._open.get(id(batch.pipeline)) is batch:
            del self._open[id(batch.pipeline)]
        batch.ready.set()

    async def _dispatch(self, batch: _Batch) -> None:
        try:
            await asyncio.wait_for(batch.ready.wait(), self.window_s)
        except TimeoutError:
            pass
        async with self._slots:  # calls keep joining the batch while every slot is busy
            self._close(batch)
            calls = [c for c in batch.calls if not c.future.done()]  # drop callers that went away
            if not calls:
                return
            if self.on_batch is not None:
                self.on_batch(len(calls), sum(len(c.texts) for c in calls))
            loop = asyncio.get_running_loop()
            try:
                outcomes = await loop.run_in_executor(self.executor, self.run_batch, batch.pipeline, calls)
            except BaseException as exc:  # noqa: BLE001 - e.g. executor shut down: every waiting caller gets it
                outcomes = [exc] * len(calls)
        for call, outcome in zip(calls, outcomes):
            if call.future.done():
                continue
            if isinstance(outcome, BaseException):
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)


def search_together(pipeline: Any, calls: list[SearchCall]) -> list[Outcome]:
    """One outcome per call: one pipeline batch per distinct options, dense queries encoded once for all calls."""
    outcomes: list[Outcome] = [None] * len(calls)
    by_options: dict[Any, list[int]] = {}
    for i, call in enumerate(calls):  # grouped by options except the deadline, which differs per call
        by_options.setdefault(call.options.model_copy(update={"deadline": None}), []).append(i)
    # One group (the usual case) is one batch, which encodes its queries itself, its BM25 leg beside (`on_idle`).
    vectors = _encode_once(pipeline, calls) if len(by_options) > 1 else [None] * len(calls)
    for options, members in by_options.items():
        # The group runs to the latest of its deadlines; each call then keeps its own.
        deadlines = [calls[i].options.deadline for i in members]
        latest = None if None in deadlines else max(deadlines)
        group = _search_isolated(pipeline, options.model_copy(update={"deadline": latest}), [calls[i] for i in members],
                                 [vectors[i] for i in members])  # fmt: skip
        for i, outcome in zip(members, group):
            if not isinstance(outcome, BaseException) and not options.partial and budget.passed(calls[i].options.deadline):
                outcome = budget.DeadlineExceeded("search deadline passed while batched with others", field="timeout_ms")
            outcomes[i] = _then(calls[i], outcome)
    return outcomes


def _then(call: SearchCall, outcome: Outcome) -> Outcome:
    if call.then is None or isinstance(outcome, BaseException):
        return outcome
    try:
        return call.then(outcome)
    except Exception as exc:  # noqa: BLE001 - delivered to the caller it belongs to
        return exc


def _encode_once(pipeline: Any, calls: list[SearchCall]) -> list[np.ndarray | None]:
    """Per call: its rows of one shared `pipeline.encode` matrix, or None (no vector leg, or encoding failed)."""
    dense = [i for i, c in enumerate(calls) if pipeline.needs_vectors(c.options.mode)]
    out: list[np.ndarray | None] = [None] * len(calls)
    if not dense:
        return out
    try:
        matrix = pipeline.encode([q for i in dense for q in calls[i].texts])
    except Exception:  # noqa: BLE001 - each call then meets (and reports) the problem in its own search
        return out
    start = 0
    for i in dense:
        out[i] = matrix[start : start + len(calls[i].texts)]
        start += len(calls[i].texts)
    return out


def _search_isolated(pipeline: Any, options: Any, calls: list[SearchCall], vectors: list[np.ndarray | None]
                     ) -> list[Outcome]:  # fmt: skip
    """The calls as one batch; if that fails, call by call, so a bad call fails alone (and its error names its own fields)."""
    try:
        return _search(pipeline, options, calls, vectors)
    except Exception as exc:  # noqa: BLE001 - delivered to the caller it belongs to
        if len(calls) == 1:
            return [exc]
        return [_search_isolated(pipeline, options, [c], [v])[0] for c, v in zip(calls, vectors)]


def _search(pipeline: Any, options: Any, calls: list[SearchCall], vectors: list[np.ndarray | None]) -> list[Outcome]:
    """The calls (same options) as one pipeline batch, split back per call."""
    texts = [q for c in calls for q in c.texts]
    stacked = None if any(v is None for v in vectors) else np.concatenate(vectors)
    results = pipeline.batch_search(texts, options, vectors=stacked)
    per_call, start = [], 0
    for c in calls:
        per_call.append(results[start : start + len(c.texts)])
        start += len(c.texts)
    return per_call


def _consume(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
