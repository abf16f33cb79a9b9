"""Service configuration: one pydantic-settings model (env DRSEARCH_SERVE_*, keys DRSEARCH_API_KEY / DRSEARCH_ADMIN_KEY).

`drsearch serve --workers N` passes its flags to the worker processes through these env vars.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRSEARCH_SERVE_", extra="ignore", populate_by_name=True)

    index: Path = Field(..., description="Index ROOT (its `current` build is served and reloaded)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    threads: int = Field(4, ge=1, le=64, description="threads running blocking pipeline work")
    cache_size: int = Field(10_000, ge=0, description="LRU entries (0 = no cache)")
    batching: bool = Field(True, description="micro-batch concurrent search calls (one query encoding for all of them)")
    batch_window_ms: float = Field(3.0, ge=0.0, le=1000.0)
    batch_max_queries: int = Field(64, ge=1, le=4096)
    batch_max_inflight: int = Field(2, ge=1, le=64, description="merged batches running at once; calls queue up meanwhile")
    max_body_bytes: int = Field(1 << 20, ge=1024)
    watch_s: float = Field(0.0, ge=0.0, description="check `current` every N s and reload on change (0 = off; "
                           "`serve --workers N` turns it on so every worker follows a rebuild)")
    torch_threads: int | None = Field(1, ge=1, le=256, description="torch intra-op threads per process (None = torch's "
                                      "default); parallelism comes from the request threads and batching")
    warmup: bool = Field(True, description="run one query after opening an index (loads the dense model)")
    api_key: str | None = Field(None, validation_alias="DRSEARCH_API_KEY")
    admin_key: str | None = Field(None, validation_alias="DRSEARCH_ADMIN_KEY")

    def to_env(self) -> dict[str, str]:
        """The env vars that rebuild these settings in another process (for uvicorn workers)."""
        env = {}
        for name, value in self.model_dump(exclude={"api_key", "admin_key"}).items():
            if value is None:
                continue
            env[f"DRSEARCH_SERVE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        if self.api_key:
            env["DRSEARCH_API_KEY"] = self.api_key
        if self.admin_key:
            env["DRSEARCH_ADMIN_KEY"] = self.admin_key
        return env
