"""Cluster connection settings (env DRSEARCH_ES_*, or CLI flags) and the one place a client is made.

Credentials come from the environment only and never reach a manifest, a log line or an error message.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.errors import BackendUnavailable, ConfigError


class ElasticSettings(BaseSettings):
    """How to reach the cluster. TLS certificates are verified unless explicitly turned off."""

    model_config = SettingsConfigDict(env_prefix="DRSEARCH_ES_", extra="ignore", hide_input_in_errors=True,
                                      env_ignore_empty=True, allow_inf_nan=False)

    url: str | None = None  # e.g. https://es.example.org:9200 (userinfo allowed; kept out of the manifest)
    api_key: SecretStr | None = None  # base64 "id:key" as Kibana shows it
    index: str = "drsearch"  # alias name; builds go to <index>-<version>
    verify_certs: bool = True
    ca_certs: str | None = None  # CA bundle for a private cluster certificate
    request_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0)
    language: str = "en"  # the corpus language: `english` analyzer for en, `chinese_analyzer` for zh
    chinese_analyzer: str = "cjk"  # or "smartcn" when the analysis-smartcn plugin is installed
    bulk_chunk: int = Field(500, ge=1)  # passages per bulk request
    shards: int = Field(1, ge=1)
    replicas: int = Field(0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {public_url(value)!r}")
        return value

    @field_validator("index")
    @classmethod
    def _index_name(cls, value: str) -> str:
        bad = "".join(sorted(set('\\/*?"<>| ,#:') & set(value)))
        if not value or value != value.lower() or value[0] in "-_+" or bad:
            why = f"character(s) {bad!r} not allowed" if bad else "lower case, not starting with -, _ or +"
            raise ValueError(f"not a valid Elasticsearch index name: {value!r} ({why})")
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        from backends.elastic.bodies import analyzer_for

        analyzer_for(value)  # ValueError naming the language when no analyzer is known for it
        return value

    def require_url(self) -> str:
        if not self.url:
            raise ConfigError("no Elasticsearch URL: set DRSEARCH_ES_URL or pass --es-url", field="es_url")
        return self.url


def load_settings(**overrides: Any) -> ElasticSettings:
    """Settings from the environment (and `overrides`); a bad value is a one-line ConfigError naming
    the variable, never a validation traceback (and never the value: it may hold a password)."""
    try:
        return ElasticSettings(**overrides)
    except ValueError as exc:
        err = exc.errors()[0]  # type: ignore[attr-defined]
        name = str(err["loc"][0]) if err.get("loc") else "url"
        raise ConfigError(f"{err['msg'].removeprefix('Value error, ')}", field=name,
                          where=f"DRSEARCH_ES_{name.upper()}" if name not in overrides else None) from None


def public_url(url: str) -> str:
    """The URL without user name or password (what manifests, logs and errors show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def make_client(settings: ElasticSettings) -> Any:
    """An `elasticsearch.Elasticsearch` client with the settings' timeouts, retries and TLS options."""
    from elasticsearch import Elasticsearch

    kwargs: dict[str, Any] = {
        "request_timeout": settings.request_timeout, "max_retries": settings.max_retries,
        "retry_on_timeout": True, "verify_certs": settings.verify_certs,
    }  # fmt: skip
    if settings.ca_certs:
        kwargs["ca_certs"] = settings.ca_certs
    if settings.api_key is not None:
        kwargs["api_key"] = settings.api_key.get_secret_value()
    return Elasticsearch(settings.require_url(), **kwargs)


@contextmanager
def cluster_errors(url: str, action: str) -> Iterator[None]:
    """Turn client errors (refused, timeout, TLS, HTTP errors from the cluster) into one-line
    BackendUnavailable errors that name the cluster without credentials."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError
    from elasticsearch.helpers import BulkIndexError

    where = public_url(url)
    try:
        yield
    except BulkIndexError as exc:
        first = exc.errors[0] if exc.errors else {}
        reason = next(iter(first.values()), {}).get("error", {}) if first else {}
        detail = reason.get("reason", str(reason)) if isinstance(reason, dict) else str(reason)
        raise BackendUnavailable(f"{action}: {len(exc.errors)} passage(s) rejected, first: {detail}", where=where) from None
    except ApiError as exc:
        raise BackendUnavailable(f"{action}: HTTP {exc.meta.status} {_api_reason(exc)}", where=where) from None
    except TransportError as exc:
        raise BackendUnavailable(f"{action}: {_transport_reason(exc)}", where=where) from None


def _api_reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('type', 'error')}: {err.get('reason', '')}".strip()
    return str(getattr(exc, "message", "") or "error")


def _transport_reason(exc: Any) -> str:
    from elastic_transport import ConnectionTimeout, TlsError

    if isinstance(exc, ConnectionTimeout):
        return "timed out"
    if isinstance(exc, TlsError):
        return "TLS verification failed (set DRSEARCH_ES_CA_CERTS to the cluster's CA bundle)"
    text = " ".join(str(getattr(exc, "message", exc)).split())
    if "refused" in text.lower():
        return "connection refused"
    return text[:200] or type(exc).__name__
