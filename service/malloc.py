"""glibc malloc settings for a long-running search worker.

A worker encodes query batches of every size with torch, and glibc raises its mmap threshold each
time a large block is freed, so later activations come from the heap and stay resident when freed:
the worker's memory climbs by hundreds of MB over its first minutes of traffic and never returns.
So each worker (docs/BENCHMARKS.md, issues 14 and 16):

- fixes the mmap threshold at 8 MiB: blocks above it (a long batch's activations) go to mmap and
  back to the system on free;
- returns the heap's free pages to the system after a search job (`then_release`: one
  `malloc_trim`, ~1-4 ms, at most every 0.2 s), so the activations below 8 MiB that the batches
  freed do not stay resident;
- keeps two arenas, so that each thread does not keep its own.

A lower threshold alone (1 MiB) held memory as well but cost speed: a 32-query batch allocates
1.5-6 MB activations per layer, and each became a fresh mapping whose every page faulted (~800
faults per query, query encoding ~12 % slower). Reusing the heap within a job and trimming after it
faults ~200 per query.

Set through mallopt(3) when the worker starts, so no environment variable has to reach the
process before it starts; a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 8 << 20
ARENAS = 2
RELEASE_EVERY_S = 0.2  # trims after search jobs at most this often (single-query traffic runs ~100 jobs/s)


@functools.cache
def _libc():
    """glibc through ctypes, looked up once (find_library runs ldconfig), or None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune() -> bool:
    """Apply the settings above; False where mallopt is not available (not glibc)."""
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    libc.mallopt(M_ARENA_MAX, ARENAS)
    return True


def release_free_memory() -> None:
    """Give freed heap pages back to the system (after a search job, and after a reload closed the previous build)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


_last_release = [0.0]
_release_lock = threading.Lock()


def then_release(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, followed in the same thread by `release_free_memory` unless another job did that in the
    last RELEASE_EVERY_S (for the search jobs a worker's executor runs)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            now = time.monotonic()
            with _release_lock:
                due = now - _last_release[0] >= RELEASE_EVERY_S
                if due:
                    _last_release[0] = now
            if due:
                release_free_memory()

    return run
