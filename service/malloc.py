"""glibc malloc settings for a long-running search worker.

A worker encodes query batches of every size with torch, and glibc raises its mmap threshold each
time a large block is freed, so later activations come from the heap and stay resident when freed:
the worker's memory climbs by hundreds of MB over its first minutes of traffic and never returns.
A fixed threshold keeps large blocks on mmap (returned to the system on free) and two arenas stop
each thread from keeping its own. Measured in `bench/reliability.py` (docs/BENCHMARKS.md, issue 16):
a worker's peak RSS under 60 s of mixed traffic and a reload fell from 1.81x its start to 1.45x.

Set through mallopt(3) when the worker starts, so no environment variable has to reach the
process before it starts; a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20
ARENAS = 2


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
    """Give freed heap pages back to the system (after a reload closed the previous build)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
