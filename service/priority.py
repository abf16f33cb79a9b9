"""Low-priority threads for bulk search requests.

A bulk request (one the admission queue counts as large: over 1/8 of its units, e.g. 16 hybrid
queries at k=10 or 64 at k=100) is searched and formatted on threads of their own whose scheduling
priority is lowered (nice, per thread on Linux). While ordinary requests have work, the CPU goes to
them first and a bulk request runs on the cycles they leave; on an idle server it runs as fast as
before. Without this, one bulk request at a time held a whole core of a 2-core worker and ordinary
latency under a bulk load doubled (docs/BENCHMARKS.md, issue 16).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("drsearch.service")


def lower_this_thread(nice: int) -> bool:
    """Raise the calling thread's niceness by `nice` (Linux schedules threads one by one); False where
    the platform does not allow it. Unprivileged threads cannot lower it again: only ever call this
    on a thread that keeps the lower priority for life."""
    if nice <= 0:
        return True
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
        return True
    except (AttributeError, OSError) as exc:  # not Linux, or a sandbox that forbids it
        log.warning("bulk requests run at normal priority: could not lower a thread's priority (%s)", exc)
        return False


def bulk_executor(threads: int, nice: int) -> ThreadPoolExecutor:
    """Threads for bulk requests, each `nice` steps below the process's priority."""
    return ThreadPoolExecutor(max(1, threads), thread_name_prefix="drsearch-bulk", initializer=lower_this_thread,
                              initargs=(nice,))  # fmt: skip
