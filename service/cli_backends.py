"""What `index build` passes to a backend's writers beyond the build settings (cluster flags,
the authority fields a remote index filters on). Backend names appear here as configuration only."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from indexer.errors import DrsearchError


def writer_options(backend: str, authority: Any, *, es_url: str | None, es_index: str | None) -> dict[str, Any]:
    """Keyword arguments for `registry.writers` (each writer takes the ones it accepts)."""
    if backend != "elasticsearch":
        if es_url or es_index:
            raise DrsearchError("--es-url and --es-index need --backend elasticsearch")
        return {}
    from backends.elastic.config import load_settings

    overrides = {k: v for k, v in (("url", es_url), ("index", es_index)) if v is not None}
    try:
        es = load_settings(**overrides)
    except DrsearchError as exc:
        if exc.field in overrides:  # the bad value came from a flag: name the flag
            raise DrsearchError(f"invalid --es-{exc.field}: {exc.message}") from None
        raise
    return {"es": es, "sources": source_fields(authority)}


def source_fields(authority: Any):
    """url or domain -> (host, site, tier, category) from the authority list, as the pipeline's
    filters see them, for a backend that filters inside its own index."""
    from indexer.domains import normalise_host

    @lru_cache(maxsize=65_536)
    def of_host(host: str) -> tuple[str | None, str | None, int | None, str | None]:
        entry = authority.lookup_host(host)
        site = authority.registrable_domain(host) or host
        return host, site, entry.tier if entry else None, entry.category if entry else None

    def fields(raw: str | None) -> tuple[str | None, str | None, int | None, str | None]:
        host = normalise_host(raw) if raw else None
        return of_host(host) if host else (None, None, None, None)

    return fields
