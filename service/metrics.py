"""Prometheus metrics, one `CollectorRegistry` per app (never the process-global one).

Under `serve --workers N` every worker writes its values to the shared directory named by
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode; `service.server` sets it), so a
scrape answered by any worker shows the sums over all of them."""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector, generate_latest,
)  # fmt: skip
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from indexer.process_dirs import new_process_dir, process_alive, remove_orphans

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHARED_DIR_PREFIX = "drsearch-metrics-"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.shared_dir = os.environ.get(SHARED_DIR_ENV) or None
        self.registry = r = CollectorRegistry(auto_describe=True)
        # This worker's own: the build it serves (workers reload on their own time) and, alone, its process.
        own = CollectorRegistry(auto_describe=True) if self.shared_dir else r
        gauge = partial(Gauge, registry=r, multiprocess_mode="livesum")  # across workers: the sum over the live ones
        self.requests = Counter("drsearch_http_requests", "HTTP requests by endpoint and status", ["endpoint", "method", "status"], registry=r)
        self.errors = Counter("drsearch_http_errors", "HTTP error responses (status >= 400) by endpoint, status and code", ["endpoint", "status", "code"], registry=r)
        self.latency = Histogram("drsearch_http_request_seconds", "Request latency by endpoint and search mode", ["endpoint", "mode"], buckets=LATENCY_BUCKETS, registry=r)
        self.queries = Counter("drsearch_search_queries", "Queries searched (cache misses and hits)", ["mode"], registry=r)
        self.cache_hits = Counter("drsearch_cache_hits", "Search responses served from the cache", registry=r)
        self.cache_misses = Counter("drsearch_cache_misses", "Search requests not in the cache", registry=r)
        self.cache_entries = gauge("drsearch_cache_entries", "Entries in the search cache")
        self.batch_calls = Histogram("drsearch_batch_calls", "Search calls merged into one pipeline batch", buckets=BATCH_BUCKETS, registry=r)
        self.batch_queries = Histogram("drsearch_batch_queries", "Queries per pipeline batch", buckets=BATCH_BUCKETS, registry=r)
        self.index_info = Info("drsearch_index", "The index build being served", registry=own)
        self.reloads = Counter("drsearch_index_reloads", "Index reloads by outcome", ["outcome"], registry=r)
        self.cache_bytes = gauge("drsearch_cache_bytes", "Bytes held by the search cache")
        self.queue_units = gauge("drsearch_queue_units", "Cost units of admitted search requests in flight (queue depth)")
        self.queue_requests = gauge("drsearch_queue_requests", "Admitted search requests in flight")
        self.rejected = Counter("drsearch_rejected_requests", "Search requests refused at once, by reason", ["reason"], registry=r)
        self.jvm_heap = gauge("drsearch_jvm_heap_bytes", "JVM heap (BM25 searcher): used and max (-Xmx)", ["kind"])
        if self.shared_dir:
            own.register(_WorkerProcesses(Path(self.shared_dir)))
        else:
            ProcessCollector(registry=r)  # process_resident_memory_bytes, CPU seconds, open fds
        self.inflight = gauge("drsearch_inflight_requests", "HTTP requests being handled (a scrape counts itself)")  # fmt: skip
        self._own = own

    def observe_batch(self, n_calls: int, n_queries: int) -> None:
        self.batch_calls.observe(n_calls)
        self.batch_queries.observe(n_queries)

    def set_index(self, version: str, build_dir: str, default_mode: str, authority_hash: str) -> None:
        self.index_info.info({"version": version, "build_dir": build_dir, "default_mode": default_mode,
                              "authority_hash": authority_hash})  # fmt: skip

    def render(self) -> bytes:
        if not self.shared_dir:
            return generate_latest(self.registry)
        for pid in _worker_pids(Path(self.shared_dir), live=False):
            mark_process_dead(pid, self.shared_dir)  # a killed worker's gauges leave the sums; its counters stay
        workers = CollectorRegistry()
        MultiProcessCollector(workers, path=self.shared_dir)
        return generate_latest(workers) + generate_latest(self._own)


_SHARED_FILE = re.compile(r"_(\d+)\.db$")


def new_shared_dir() -> Path:
    """A fresh shared directory for one `serve --workers N` master, its pid in the name; the master removes
    it when it stops. A master killed outright (`kill -9`) cannot remove its own: those of dead masters are
    removed here first, so that restarts after crashes do not pile them up in the temporary folder."""
    return new_process_dir(SHARED_DIR_PREFIX)


def remove_orphaned_shared_dirs(parent: Path) -> list[Path]:
    """Remove this user's shared directories in `parent` whose master is no longer running; returns them."""
    return remove_orphans(parent, SHARED_DIR_PREFIX)


def _worker_pids(shared_dir: Path, *, live: bool) -> set[int]:
    """Workers (live or dead) that wrote to the shared directory: their pid ends each file name."""
    pids = {int(found[1]) for path in shared_dir.glob("*.db") if (found := _SHARED_FILE.search(path.name))}
    return {pid for pid in pids if process_alive(pid) == live}  # a worker not reaped yet is dead too


class _WorkerProcesses:
    """`process_*` metrics (memory, CPU seconds, open fds) of every live worker, labelled by its `pid`."""

    def __init__(self, shared_dir: Path):
        self.shared_dir = shared_dir

    def collect(self):
        families: dict[str, Metric] = {}
        for pid in sorted(_worker_pids(self.shared_dir, live=True)):
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(families.values())
