"""Cluster settings and the `backend_unavailable` path, for real: a real client against a closed
127.0.0.1 port (no fake server). No Elasticsearch is needed."""

from __future__ import annotations

import socket

import pytest

from backends.elastic.config import ElasticSettings, cluster_errors, make_client, public_url
from indexer.errors import BackendUnavailable, ConfigError


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_settings_come_from_env_and_verify_tls_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRSEARCH_ES_URL", "https://es.example.org:9243")
    monkeypatch.setenv("DRSEARCH_ES_API_KEY", "c2VjcmV0OmtleQ==")
    s = ElasticSettings()
    assert s.url == "https://es.example.org:9243" and s.verify_certs is True and s.index == "drsearch"
    assert s.api_key is not None and s.api_key.get_secret_value() == "c2VjcmV0OmtleQ=="
    assert "c2VjcmV0OmtleQ" not in repr(s) and "c2VjcmV0OmtleQ" not in str(s.model_dump())
    client = make_client(s)
    try:
        node = client.transport.node_pool.all()[0].config
        assert node.verify_certs is True and node.scheme == "https"
        assert client._headers["authorization"] == "ApiKey c2VjcmV0OmtleQ=="
    finally:
        client.close()


def test_public_url_drops_credentials() -> None:
    assert public_url("https://elastic:s3cret@es.example.org:9243/") == "https://es.example.org:9243"
    assert public_url("http://[::1]:9200") == "http://[::1]:9200"


@pytest.mark.parametrize("field, value, match", [
    ("url", "es.example.org:9200", "not an http\\(s\\) URL"),
    ("url", "ftp://u:pw@host/", "not an http\\(s\\) URL: 'ftp://host'"),
    ("index", "Drsearch", "not a valid Elasticsearch index name"),
    ("index", "a/b", "not a valid Elasticsearch index name"),
])  # fmt: skip
def test_bad_settings_say_which_and_never_echo_a_password(field: str, value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        ElasticSettings(**{field: value})
    assert "pw" not in str(info.value)


def test_no_url_is_a_config_error_naming_the_variable_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRSEARCH_ES_URL", raising=False)
    with pytest.raises(ConfigError, match="DRSEARCH_ES_URL.*--es-url"):
        make_client(ElasticSettings())


def test_connection_refused_is_one_line_backend_unavailable_without_credentials(closed_port: int) -> None:
    url = f"http://elastic:s3cret@127.0.0.1:{closed_port}"
    settings = ElasticSettings(url=url, request_timeout=5, max_retries=1)
    client = make_client(settings)
    try:
        with pytest.raises(BackendUnavailable) as info, cluster_errors(url, "BM25 search"):
            client.search(index="drsearch", query={"match": {"contents": "x"}})
    finally:
        client.close()
    message = str(info.value)
    assert message == f"http://127.0.0.1:{closed_port}: BM25 search: connection refused"
    assert "\n" not in message and "s3cret" not in message
