"""Cluster settings and the `backend_unavailable` path, for real: a real client against a closed
127.0.0.1 port (no fake server). No Elasticsearch is needed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

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


# ---- the same failure through the CLI and the HTTP service --------------------------------------------

CORPUS = [{"id": "volcano", "title": "Volcanoes", "text": "Magma erupts as lava from a volcanic vent."},
          {"id": "tides", "title": "Tides", "text": "The Moon raises and lowers sea levels twice a day."}]  # fmt: skip


def test_build_against_a_closed_port_fails_in_one_line_before_reading(tmp_path, closed_port: int) -> None:
    from tests.conftest import drsearch

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    out = tmp_path / "idx"
    proc = drsearch("index", "build", "--backend", "elasticsearch", "--es-url", f"http://elastic:s3cret@127.0.0.1:{closed_port}",
                    "--corpus", corpus, "--out", out, "-q", env={"DRSEARCH_ES_MAX_RETRIES": "0"})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"drsearch: error: http://127.0.0.1:{closed_port}: cannot reach the cluster: connection refused\n"
    assert not out.exists()  # nothing written, nothing read


@pytest.mark.parametrize("args, env, expected", [
    (["--es-url", "es.example.org:9200"], {}, "invalid --es-url: not an http(s) URL: 'es.example.org:9200'"),
    (["--es-index", "a/b", "--es-url", "http://127.0.0.1:9"], {},
     "invalid --es-index: not a valid Elasticsearch index name: 'a/b' (character(s) '/' not allowed)"),
    ([], {"DRSEARCH_ES_URL": "ftp://elastic:s3cret@es.example.org"}, "DRSEARCH_ES_URL: not an http(s) URL: 'ftp://es.example.org'"),
    ([], {"DRSEARCH_ES_URL": ""}, "no Elasticsearch URL: set DRSEARCH_ES_URL or pass --es-url"),
    (["--es-url", "http://127.0.0.1:9"], {"DRSEARCH_ES_LANGUAGE": "tlh"},
     "DRSEARCH_ES_LANGUAGE: no Elasticsearch analyzer for language 'tlh' (known: en, zh)"),
])  # fmt: skip
def test_bad_cluster_settings_are_one_line_naming_flag_or_variable(tmp_path, args, env, expected) -> None:
    from tests.conftest import drsearch

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps(CORPUS[0]) + "\n")
    proc = drsearch("index", "build", "--backend", "elasticsearch", *args, "--corpus", corpus, "--out", tmp_path / "x",
                    env=env)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (2, f"drsearch: error: {expected}\n")
    assert not (tmp_path / "x").exists()


def test_es_flags_without_the_backend_are_refused(tmp_path) -> None:
    from tests.conftest import drsearch

    proc = drsearch("index", "build", "--es-url", "http://127.0.0.1:9200", "--corpus", tmp_path, "--out", tmp_path / "x")
    assert proc.returncode == 2 and proc.stderr.strip() == "drsearch: error: --es-url and --es-index need --backend elasticsearch"


@pytest.fixture(scope="module")
def down_cluster_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A real BM25-only build whose lexical leg is then pointed at an Elasticsearch index on a port
    nothing listens on: what serving sees when its cluster goes away."""
    from backends.elastic.section import ElasticSection
    from backends.manifest import Manifest
    from indexer import layout
    from tests.service.conftest import build_tiny_index

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = build_tiny_index(tmp_path_factory.mktemp("down"), CORPUS, dense=False)
    build = layout.resolve_build(root)
    manifest = Manifest.read(build)
    section = ElasticSection(url=f"http://127.0.0.1:{port}", index="drsearch-gone", alias="drsearch", documents=2,
                             analyzer="english", language="en", k1=0.9, b=0.4)  # fmt: skip
    manifest.model_copy(update={"bm25": section}).write(build)
    return root, port


def test_search_cli_when_the_cluster_is_down(down_cluster_index: tuple[Path, int]) -> None:
    from tests.conftest import drsearch

    root, port = down_cluster_index
    proc = drsearch("search", "volcanic lava", "--index", root, env={"DRSEARCH_ES_MAX_RETRIES": "0"})
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"drsearch: error: http://127.0.0.1:{port}: ") and proc.stderr.endswith(
        ": connection refused\n") and proc.stderr.count("\n") == 1  # fmt: skip


def test_http_search_when_the_cluster_is_down_is_503_backend_unavailable(down_cluster_index, monkeypatch) -> None:
    from tests.service.conftest import start_server

    root, port = down_cluster_index
    monkeypatch.setenv("DRSEARCH_ES_MAX_RETRIES", "0")
    server = start_server(index=root)
    try:
        with server.client() as client:
            r = client.post("/v1/search", json={"queries": ["volcanic lava", "sea levels"], "k": 3})
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] == "backend_unavailable" and err["message"].startswith(f"http://127.0.0.1:{port}: ")
            assert err["message"].endswith("connection refused") and "\n" not in err["message"]
            again = client.post("/v1/search", json={"queries": ["volcanic lava"], "k": 3})
            assert again.status_code == 503  # errors are not cached
    finally:
        server.stop()
