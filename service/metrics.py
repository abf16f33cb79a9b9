"""Prometheus metrics, one `CollectorRegistry` per app (never the process-global one)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector, generate_latest,
)  # fmt: skip

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("drsearch_http_requests", "HTTP requests by endpoint and status", ["endpoint", "method", "status"], registry=r)
        self.errors = Counter("drsearch_http_errors", "HTTP error responses (status >= 400) by endpoint, status and code", ["endpoint", "status", "code"], registry=r)
        self.latency = Histogram("drsearch_http_request_seconds", "Request latency by endpoint and search mode", ["endpoint", "mode"], buckets=LATENCY_BUCKETS, registry=r)
        self.queries = Counter("drsearch_search_queries", "Queries searched (cache misses and hits)", ["mode"], registry=r)
        self.cache_hits = Counter("drsearch_cache_hits", "Search responses served from the cache", registry=r)
        self.cache_misses = Counter("drsearch_cache_misses", "Search requests not in the cache", registry=r)
        self.cache_entries = Gauge("drsearch_cache_entries", "Entries in the search cache", registry=r)
        self.batch_calls = Histogram("drsearch_batch_calls", "Search calls merged into one pipeline batch", buckets=BATCH_BUCKETS, registry=r)
        self.batch_queries = Histogram("drsearch_batch_queries", "Queries per pipeline batch", buckets=BATCH_BUCKETS, registry=r)
        self.index_info = Info("drsearch_index", "The index build being served", registry=r)
        self.reloads = Counter("drsearch_index_reloads", "Index reloads by outcome", ["outcome"], registry=r)
        self.cache_bytes = Gauge("drsearch_cache_bytes", "Bytes held by the search cache", registry=r)
        self.queue_units = Gauge("drsearch_queue_units", "Cost units of admitted search requests in flight (queue depth)", registry=r)
        self.queue_requests = Gauge("drsearch_queue_requests", "Admitted search requests in flight", registry=r)
        self.rejected = Counter("drsearch_rejected_requests", "Search requests refused at once, by reason", ["reason"], registry=r)
        self.jvm_heap = Gauge("drsearch_jvm_heap_bytes", "JVM heap (BM25 searcher): used and max (-Xmx)", ["kind"], registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, CPU seconds, open fds
        self.inflight = Gauge("drsearch_inflight_requests", "HTTP requests being handled (a scrape counts itself)", registry=r)  # fmt: skip

    def observe_batch(self, n_calls: int, n_queries: int) -> None:
        self.batch_calls.observe(n_calls)
        self.batch_queries.observe(n_queries)

    def set_index(self, version: str, build_dir: str, default_mode: str, authority_hash: str) -> None:
        self.index_info.info({"version": version, "build_dir": build_dir, "default_mode": default_mode,
                              "authority_hash": authority_hash})  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
