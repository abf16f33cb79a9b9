"""The served index: one immutable pipeline snapshot at a time, swapped atomically on reload.

Requests `acquire()` the current snapshot and `release()` it when done; a reload swaps in a
new snapshot and retires the old one, which is closed only once its last in-flight request
has released it. In-flight requests therefore always finish on the pipeline they started on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cachetools

from indexer import layout
from indexer.errors import IndexFormatError
from service import malloc

log = logging.getLogger("drsearch.service")
REFUSED_RETRY_S = 60.0  # a refused build is opened again after this long, when `current` still names it
_OPEN_TRIES = 3  # builds `current` named one after the other that were removed while they were opened


@dataclass(eq=False)
class Snapshot:
    """One opened build: its pipeline and how many requests are using it."""

    pipeline: Any  # ranker.pipeline.SearchPipeline
    loaded_at: float = field(default_factory=time.time)
    inflight: int = 0
    retired: bool = False
    closed: bool = False

    @property
    def version(self) -> str:
        return self.pipeline.version


class IndexState:
    """Holds the current snapshot; opens, swaps and closes snapshots."""

    def __init__(self, index: Path, opener: Callable[[Path], Any], executor: Executor):
        self.index = Path(index)
        self._opener = opener  # build dir -> opened (and warmed) pipeline; blocking
        self._executor = executor
        self._lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self.current: Snapshot | None = None
        self.refused: tuple[Path, Exception, float] | None = None  # the last build that failed to open, why, and when
        self.on_swap: list[Callable[[Snapshot], None]] = []

    def load(self) -> Snapshot:
        """Open the index's current build (blocking; used once at startup)."""
        snap = Snapshot(self._opener(_resolve(self.index)))
        self._install(snap)
        return snap

    def acquire(self) -> Snapshot | None:
        with self._lock:
            snap = self.current
            if snap is not None:
                snap.inflight += 1
            return snap

    def release(self, snap: Snapshot) -> None:
        with self._lock:
            snap.inflight -= 1
            close = snap.retired and snap.inflight == 0 and not snap.closed
            if close:
                snap.closed = True
        if close:
            self._close(snap)

    async def reload(self, *, force: bool = False, retry_refused: bool = False) -> tuple[bool, str, str]:
        """Open the newest `current` build off the event loop and swap it in. -> (swapped, old, new).

        A build refused before is refused again without being reopened (the watcher asks every few
        seconds) until `REFUSED_RETRY_S` have passed: what refused it may have been mended since (a model
        restored, a file put back). `retry_refused` (an admin's reload) or `force` tries it at once."""
        loop = asyncio.get_running_loop()
        async with self._reload_lock:
            old = self.current
            old_version = old.version if old else ""
            for attempt in range(_OPEN_TRIES):
                build = await loop.run_in_executor(self._executor, _resolve, self.index)
                if old is not None and not force and Path(build) == Path(old.pipeline.build_dir):
                    return False, old_version, old_version
                if not (force or retry_refused) and self.refused is not None and self.refused[0] == Path(build):
                    if time.monotonic() - self.refused[2] < REFUSED_RETRY_S:
                        raise self.refused[1]
                try:
                    pipeline = await loop.run_in_executor(self._executor, self._opener, build)
                    break
                except Exception as exc:
                    # Removed while it opened (an `index use` away from it, then a prune): `current` has moved on.
                    if attempt + 1 < _OPEN_TRIES and not await loop.run_in_executor(self._executor, Path(build).exists):
                        continue
                    self.refused = (Path(build), exc, time.monotonic())
                    raise
            self.refused = None
            new = Snapshot(pipeline)
            self._install(new)
            if old is not None:
                with self._lock:
                    old.retired = True
                    close = old.inflight == 0 and not old.closed
                    if close:
                        old.closed = True
                if close:
                    self._close(old)
            return True, old_version, new.version

    def _install(self, snap: Snapshot) -> None:
        with self._lock:
            self.current = snap
        for callback in self.on_swap:
            callback(snap)

    def _close(self, snap: Snapshot) -> None:
        def close() -> None:
            try:
                snap.pipeline.close()
            except Exception:  # noqa: BLE001 - closing an old snapshot must never fail a request
                log.exception("closing index %s failed", snap.version)
            malloc.release_free_memory()  # the old build's heap pages, back to the system

        try:
            self._executor.submit(close)
        except RuntimeError:  # executor already shut down
            close()

    def close(self) -> None:
        with self._lock:
            snap, self.current = self.current, None
        if snap is not None and not snap.closed:
            snap.closed = True
            snap.pipeline.close()


def _resolve(index: Path) -> Path:
    """The build `current` names; an unreadable manifest refuses it like any other broken leg."""
    from service.validate import IndexInvalidError

    try:
        return layout.resolve_build(index)
    except IndexFormatError as exc:
        raise IndexInvalidError("manifest", exc.message, exc.where or str(index)) from None


_BAD_LINE = re.compile(r"(/.*?)(:[0-9]+: .*)", re.DOTALL)  # a bad line's `file:line: reason`


def public_manifest(value: Any) -> Any:
    """The manifest as shown to clients: an absolute path (e.g. the corpus files it was built from, or
    the file of a bad line's `/data/docs.jsonl:21: field ...`) becomes its last component, so the
    server's file layout is not disclosed; what follows the path is kept (it was cut at its last `/`,
    inside a quoted `'01/12/2024'`)."""
    if isinstance(value, dict):
        return {k: public_manifest(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public_manifest(v) for v in value]
    if isinstance(value, str) and value.startswith("/") and len(value) > 1:
        if bad_line := _BAD_LINE.fullmatch(value):
            return Path(bad_line.group(1)).name + bad_line.group(2)
        return Path(value).name
    return value


ENTRY_OVERHEAD = 256  # bytes an entry costs besides its answer: its key (a sha256 in hex), the LRU's links


class LRUCache(cachetools.LRUCache):
    """The response cache of encoded responses: an LRU (cachetools) bounded in bytes (each entry weighs
    its length plus `ENTRY_OVERHEAD`; a 64-query response with full texts is ~17 MB) and in entries; one
    entry takes at most a quarter of the bytes. Used only from the event loop thread; 0 entries = off."""

    def __init__(self, max_entries: int, max_bytes: int = 64 << 20):
        super().__init__(maxsize=max(0, max_bytes), getsizeof=lambda value: len(value) + ENTRY_OVERHEAD)
        self.max_entries = max_entries

    @property
    def bytes(self) -> int:
        return int(self.currsize)

    def put(self, key: str, value: bytes) -> None:
        if self.max_entries <= 0 or len(value) + ENTRY_OVERHEAD > self.maxsize // 4:
            return
        self[key] = value
        while len(self) > self.max_entries:
            self.popitem()
