"""The service refuses to start on a malformed authority list, with one line naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ranker.authority import DOMAIN_HEADER, AuthorityListError
from service.server import serve
from service.settings import ServiceSettings
from tests.service.conftest import failed_startup

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def bad_list(tmp_path) -> Path:
    directory = tmp_path / "authority"
    directory.mkdir()
    rows = [",".join(DOMAIN_HEADER), "examplebank.org,Example Bank,central_bank,us,7,tier out of range"]
    (directory / "banks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


def test_app_startup_fails_with_one_line(tiny_bm25_root, bad_list):
    """`create_app`'s lifespan (what every uvicorn worker runs) stops the server before it binds."""
    line = failed_startup({"DRSEARCH_AUTHORITY_LIST": str(bad_list), "DRSEARCH_SERVE_INDEX": str(tiny_bm25_root)}, "banks.csv")
    assert "drsearch: cannot serve: banks.csv:2: tier" in line, line


def test_serve_checks_the_list_before_starting(tiny_bm25_root, bad_list, monkeypatch):
    monkeypatch.setenv("DRSEARCH_AUTHORITY_LIST", str(bad_list))
    with pytest.raises(AuthorityListError) as err:
        serve(ServiceSettings(index=tiny_bm25_root, port=0))
    assert str(err.value).startswith("banks.csv:2: tier")


def test_workers_rebuild_the_settings_they_were_given(tmp_path):
    """`serve --workers N` hands its settings to each worker process as DRSEARCH_SERVE_* variables: a
    list (fetch hosts) and a None that is not the default (no query cap) must come back as given."""
    import json
    import os
    import subprocess
    import sys

    given = ServiceSettings(index=tmp_path, fetch_allow_hosts=["example.com", "stats.example.org"], max_query_chars=None,
                            torch_threads=None, rate_limit_qps=2.5, batching=False, api_key="k1")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRSEARCH_SERVE_")} | given.to_env()
    code = "from service.settings import ServiceSettings; print(ServiceSettings().model_dump_json())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == json.loads(given.model_dump_json())


def test_a_query_cap_of_zero_is_no_cap_in_the_environment_too(tmp_path, monkeypatch):
    monkeypatch.setenv("DRSEARCH_SERVE_MAX_QUERY_CHARS", "0")  # as `--max-query-chars 0`
    assert ServiceSettings(index=tmp_path).max_query_chars is None


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_one_line_before_the_index_loads(tiny_bm25_root, workers):
    """A second `serve` on a port another server holds: one line naming the address, exit 2, and nothing
    loaded first (one process used to load the whole index, log that it was serving, then fail to bind)."""
    import socket

    from tests.conftest import drsearch

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = drsearch("serve", "--index", tiny_bm25_root, "--host", "127.0.0.1", "--port", port, "--workers", workers,
                        timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"drsearch: error: cannot listen on 127.0.0.1:{port} (Address already in use)"]


def test_fetch_hosts_are_hosts_an_internationalised_one_in_both_forms(tmp_path):
    from pydantic import ValidationError

    hosts = ServiceSettings(index=tmp_path, fetch_allow_hosts=["Bücher.de.", "xn--caf-dma.fr", "[::1]", "127.0.0.1"]).fetch_allow_hosts
    assert hosts == ["bücher.de", "xn--bcher-kva.de", "xn--caf-dma.fr", "::1", "127.0.0.1"]
    for entry in ("http://127.0.0.1:8000/", "*.example.org", "example.org:8080", "a b.org"):
        with pytest.raises(ValidationError, match="is not a host name or IP address"):
            ServiceSettings(index=tmp_path, fetch_allow_hosts=[entry])


@pytest.mark.parametrize(("heap", "ok"), [("48m", True), ("512M", True), ("2g", True), ("64g", True), ("1073741824", True),
                                          ("32m", False), ("1k", False), ("0", False), ("2 g", False)])  # fmt: skip
def test_a_jvm_heap_is_checked_as_the_jvm_takes_it(tmp_path, heap, ok):
    """Bigger than the machine's memory is the JVM's to allow (it reserves address space): 2g on a 1 GB host."""
    from pydantic import ValidationError

    if ok:
        assert ServiceSettings(index=tmp_path, jvm_heap=heap).jvm_heap == heap
    else:
        with pytest.raises(ValidationError):
            ServiceSettings(index=tmp_path, jvm_heap=heap)


@pytest.mark.parametrize(("value", "threads"), [("", None), (" 3 ", 3), ("1", 1)])
def test_threads_from_the_environment(monkeypatch, value, threads):
    from backends.threads import cores, worker_budget

    monkeypatch.setenv("DRSEARCH_THREADS", value)
    assert worker_budget(1) == (threads or cores())
