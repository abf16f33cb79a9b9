"""Micro-batching of concurrent search calls.

Calls that arrive within a short window and share the same pipeline and options are merged
into one `pipeline.batch_search(all_queries, options)` call, so query encoding and BM25 run
batched and throughput grows with load. A batch that fails (e.g. one query has no
searchable terms) is re-run call by call, so one caller's bad input never fails another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

SearchFn = Callable[[list[str]], list[list[Any]]]


@dataclass
class _Group:
    run: Callable[[list[str]], list[list[Any]]]
    calls: list[tuple[list[str], asyncio.Future]] = field(default_factory=list)
    n_queries: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)


class MicroBatcher:
    """Collects `submit` calls per key for `window_s` and, while every batch slot is busy, until one
    frees up (at most `max_queries` per batch), then runs them as one call on `executor`.

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
        on_batch: Callable[[int, int], None] | None = None,
    ):
        self.executor = executor
        self.window_s = window_s
        self.max_queries = max_queries
        self.on_batch = on_batch  # (n_calls, n_queries) per executed batch, for metrics
        self._slots = asyncio.Semaphore(max_batches)
        self._groups: dict[Hashable, _Group] = {}

    async def submit(self, key: Hashable, run: SearchFn, queries: list[str]) -> list[list[Any]]:
        """Results of `run(queries)`, possibly computed together with other calls of the same `key`.

        `run` must be a pure function of its queries for a given key (same key -> same pipeline and options).
        """
        loop = asyncio.get_running_loop()
        group = self._groups.get(key)
        if group is not None and group.n_queries + len(queries) > self.max_queries:
            self._close(key, group)
            group = None
        if group is None:
            group = self._groups[key] = _Group(run=run)
            task = loop.create_task(self._dispatch(key, group))
            task.add_done_callback(_consume)
        fut: asyncio.Future = loop.create_future()
        group.calls.append((queries, fut))
        group.n_queries += len(queries)
        if group.n_queries >= self.max_queries:
            self._close(key, group)
        return await fut

    def _close(self, key: Hashable, group: _Group) -> None:
        """No more calls join `group`; it runs as soon as a slot is free."""
        if self._groups.get(key) is group:
            del self._groups[key]
        group.full.set()

    async def _dispatch(self, key: Hashable, group: _Group) -> None:
        try:
            await asyncio.wait_for(group.full.wait(), self.window_s)
        except asyncio.TimeoutError:
            pass
        async with self._slots:  # calls keep joining the group while every slot is busy
            self._close(key, group)
            calls = [(q, f) for q, f in group.calls if not f.done()]  # drop callers that went away
            if calls:
                await self._run_group(asyncio.get_running_loop(), group.run, calls)

    async def _run_group(self, loop, run: SearchFn, calls: list[tuple[list[str], asyncio.Future]]) -> None:
        try:
            per_call = await self._compute(loop, run, [q for q, _ in calls])
        except BaseException as exc:  # noqa: BLE001 - delivered to every waiting caller
            for _, fut in calls:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), outcome in zip(calls, per_call):
            if fut.done():
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    async def _compute(self, loop, run: SearchFn, query_lists: list[list[str]]) -> list[Any]:
        """One result list (or exception) per call; batch first, call by call if the batch fails."""
        flat = [q for qs in query_lists for q in qs]
        if self.on_batch is not None:
            self.on_batch(len(query_lists), len(flat))
        try:
            results = await loop.run_in_executor(self.executor, run, flat)
        except Exception as exc:  # noqa: BLE001
            if len(query_lists) == 1:
                return [exc]
            out: list[Any] = []
            for qs in query_lists:  # isolate the failing call(s); errors then name the caller's own fields
                try:
                    out.append(await loop.run_in_executor(self.executor, run, qs))
                except Exception as one:  # noqa: BLE001
                    out.append(one)
            return out
        per_call, i = [], 0
        for qs in query_lists:
            per_call.append(results[i : i + len(qs)])
            i += len(qs)
        return per_call


def _consume(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
