"""Service configuration: one pydantic-settings model (env DRSEARCH_SERVE_*, keys DRSEARCH_API_KEY / DRSEARCH_ADMIN_KEY).

A flag given to `drsearch serve` (or `search`, `fetch`, `mcp`) beats its DRSEARCH_SERVE_* variable, which beats
the default here. `drsearch serve --workers N` passes its settings to the worker processes through these env vars.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ranker.query import MAX_QUERY_CHARS


ENV_PREFIX = "DRSEARCH_SERVE_"


def env_var(field: str) -> str:
    """The environment variable of a settings field (`threads` -> DRSEARCH_SERVE_THREADS)."""
    return f"{ENV_PREFIX}{field.upper()}"


class QuerySettings(BaseSettings):
    """What every command that takes queries shares with the server: the query-length cap
    (`serve`, `search`, `fetch`, `mcp`; env DRSEARCH_SERVE_MAX_QUERY_CHARS)."""

    # "null" in a variable means None (e.g. DRSEARCH_SERVE_MAX_QUERY_CHARS=null: no cap), so that `to_env`
    # can hand a None that is not the default on to the workers.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True,
                                      env_parse_none_str="null", allow_inf_nan=False)

    max_query_chars: int | None = Field(MAX_QUERY_CHARS, ge=1, description="longest query accepted, in characters (None = no cap)")

    @field_validator("max_query_chars", mode="before")
    @classmethod
    def _zero_is_no_cap(cls, value: object) -> object:
        return None if value in (0, "0") else value  # as the CLI's --max-query-chars 0


class ServiceSettings(QuerySettings):
    index: Path = Field(..., description="Index ROOT (its `current` build is served and reloaded)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    threads: int = Field(4, ge=1, le=64, description="threads running blocking pipeline work")
    cache_size: int = Field(10_000, ge=0, description="LRU entries (0 = no cache)")
    cache_max_bytes: int = Field(64 << 20, ge=0, description="LRU bytes of encoded responses; one entry at most a quarter")
    queue_units: int = Field(256, ge=2, le=1_000_000, description="admission: cost units (queries x ceil(k/10) x 2 for "
                             "hybrid) of search requests in flight per worker; beyond it 429 overloaded at once")
    retry_after_s: float = Field(1.0, ge=0.0, le=3600.0, description="Retry-After given with a 429")
    rate_limit_qps: float | None = Field(None, gt=0.0, description="per API key: queries per second (token bucket; "
                                         "a batch costs one token per query; only when DRSEARCH_API_KEY is set)")
    rate_limit_burst: float = Field(128.0, ge=1.0, description="per API key: bucket size in queries")
    jvm_heap: str = Field("2g", description="JVM -Xmx of the BM25 searcher, more than 32m (reported in /metrics)")
    batching: bool = Field(True, description="micro-batch concurrent search calls (one query encoding for all of them)")
    batch_window_ms: float = Field(3.0, ge=0.0, le=1000.0)
    batch_max_queries: int = Field(64, ge=1, le=4096)
    batch_max_inflight: int = Field(2, ge=1, le=64, description="merged batches running at once; calls queue up meanwhile")
    bulk_nice: int = Field(10, ge=0, le=19, description="niceness of the threads that compute large requests (over "
                           "1/8 of queue_units): they run on the CPU ordinary requests leave (0 = same priority)")
    max_body_bytes: int = Field(1 << 20, ge=1024)
    deadline_ms: float = Field(10_000.0, gt=0.0, le=600_000.0, description="most time one search request may take "
                               "(a request's timeout_ms may ask for less); 504 deadline_exceeded after it")
    max_candidates: int = Field(1000, ge=1, le=1_000_000, description="candidates per query and retrieval leg at most: a "
                                "filtered list is deepened up to this and then returned short (`exhausted: false`)")
    header_timeout_s: float = Field(10.0, gt=0.0, le=3600.0, description="a request head must arrive within this (slow clients)")
    body_timeout_s: float = Field(30.0, gt=0.0, le=3600.0, description="a request body must arrive within this (408 otherwise)")
    idle_timeout_s: float = Field(5.0, gt=0.0, le=3600.0, description="an idle keep-alive connection is closed after this")
    drain_timeout_s: float = Field(30.0, gt=0.0, le=3600.0, description="on SIGTERM or Ctrl-C, requests in flight have this "
                                   "long to finish; then they are cancelled and the process exits")
    watch_s: float = Field(0.0, ge=0.0, description="check `current` every N s and reload on change (0 = off; "
                           "`serve --workers N` turns it on so every worker follows a rebuild)")
    torch_threads: int | None = Field(1, ge=1, le=256, description="torch intra-op threads per process (None = torch's "
                                      "default); parallelism comes from the request threads and batching")
    fetch_any_host: bool = Field(False, description="/v1/fetch may fetch any public host, not only authority-list hosts")
    fetch_allow_hosts: list[str] = Field(default_factory=list, description="hosts fetchable besides the authority list")
    fetch_allow_loopback: bool = Field(False, description="let /v1/fetch reach 127.0.0.1/::1 (tests and local ops only)")
    fetch_timeout_s: float = Field(10.0, gt=0, le=120, description="deadline of one live fetch (robots.txt and redirects included)")
    fetch_max_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="largest response body a live fetch reads")
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    fetch_cache_ttl_s: float = Field(600.0, ge=0, description="how long a fetched page (and a host's robots.txt) is reused")
    fetch_extract_threads: int = Field(2, ge=1, le=64, description="threads that extract fetched pages; a fetch still "
                                       "waiting for one at its deadline is a timeout and is not extracted")
    warmup: bool = Field(True, description="run one query after opening an index (loads the dense model)")
    api_key: str | None = Field(None, validation_alias="DRSEARCH_API_KEY")
    admin_key: str | None = Field(None, validation_alias="DRSEARCH_ADMIN_KEY")

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _hosts_only(cls, hosts: list[str]) -> list[str]:
        """Hosts as the live fetch compares them (lower case, no trailing dot; an internationalised name
        in both its forms, as a URL may write either); a URL, a port or a wildcard matched no host and
        was taken without a word."""
        from indexer.domains import host_of, ip_or_none, is_dns_name

        out = []
        for entry in hosts:
            host = entry.strip().lower().rstrip(".").strip("[]")  # an IPv6 address with or without its brackets
            ascii_host = host if host.isascii() else host_of(host)
            if not (ip_or_none(host) is not None or (ascii_host and is_dns_name(ascii_host))):
                raise ValueError(f"{entry!r} is not a host name or IP address (give hosts only, e.g. data.example.org: "
                                 "no scheme, port, path or wildcard)")  # fmt: skip
            out += dict.fromkeys((host, ascii_host or host))
        return out

    @field_validator("jvm_heap")
    @classmethod
    def _heap_the_jvm_takes(cls, value: str) -> str:
        from backends.lucene.jvm import heap_problem

        if problem := heap_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("api_key", "admin_key")
    @classmethod
    def _no_empty_key(cls, value: str | None, info) -> str | None:
        name = "DRSEARCH_API_KEY" if info.field_name == "api_key" else "DRSEARCH_ADMIN_KEY"
        if value is not None and not value.strip():
            raise ValueError(f"{name} is set but empty; unset it to serve without a key, or give a real key")
        if value is not None and value != value.strip():  # HTTP strips a header value: no client could send it
            raise ValueError(f"{name} begins or ends with whitespace, which no HTTP header can carry: remove it")
        return value

    @field_validator("host")
    @classmethod
    def _no_empty_host(cls, value: str) -> str:
        if not value.strip():  # an empty host binds every interface
            raise ValueError("is empty (an unset shell variable?): give an address, 127.0.0.1 for this machine "
                             "only or 0.0.0.0 for every interface")  # fmt: skip
        return value

    @field_validator("index", mode="before")
    @classmethod
    def _no_empty_index(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():  # Path("") is the current folder
            raise ValueError("is empty (an unset shell variable?)")
        return value

    def to_env(self) -> dict[str, str]:
        """The env vars that rebuild these settings in another process (for uvicorn workers)."""
        env = {}
        for name, value in self.model_dump(mode="json", exclude={"api_key", "admin_key"}).items():
            # JSON for lists and None, which pydantic-settings parses back (a list's str() is not JSON)
            text = json.dumps(value) if value is None or isinstance(value, (list, dict)) else str(value)
            env[env_var(name)] = text.lower() if isinstance(value, bool) else text
        if self.api_key:
            env["DRSEARCH_API_KEY"] = self.api_key
        if self.admin_key:
            env["DRSEARCH_ADMIN_KEY"] = self.admin_key
        return env
