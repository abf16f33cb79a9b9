"""A real uvicorn server on 127.0.0.1 over a copy of the session's Cranfield index, and tiny real indexes."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from indexer import layout

ADMIN_KEY = "admin-secret-for-tests"


@dataclass
class LiveServer:
    base_url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60.0, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(**settings_kwargs) -> LiveServer:
    from service.app import create_app
    from service.server import uvicorn_options
    from service.settings import ServiceSettings

    settings = ServiceSettings(**settings_kwargs)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on",
                            **uvicorn_options(settings))  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during startup (see log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start within 180 s")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return LiveServer(f"http://127.0.0.1:{port}", app, server, thread)


def failed_startup(env: dict[str, str], marker: str) -> str:
    """Run the app factory under uvicorn (what every worker runs) with `env`; assert it refused to start with
    one line and no traceback, and return the stderr line containing `marker`."""
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory", "--host", "127.0.0.1", "--port", "0"],
        check=False, capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, **env},
    )  # fmt: skip
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Uvicorn running" not in proc.stderr, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if marker in x]
    return line


def new_version(root: Path) -> str:
    """A second complete build in ROOT (a copy of the current one under a new version) made `current`.

    Cheap stand-in for a rebuild: same content, new version, switched exactly as build_index does.
    """
    current = layout.resolve_build(root)
    version = f"{current.name.split('-r')[0]}-r{time.time_ns() % 10**9}"
    target = root / layout.BUILDS_DIR / version
    shutil.copytree(current, target)
    manifest = layout.read_manifest(target)
    manifest["version"] = version
    layout.write_manifest(target, manifest)
    layout.switch_current(root, target)
    return version


def build_tiny_index(root: Path, docs: list[dict], *, dense: bool, chunk_words: int = 200) -> Path:
    """A real index ROOT over `docs` (generic JSONL records), built in seconds."""
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    corpus = root.parent / f"{root.name}-docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    build_index([corpus], root, BuildSettings(chunk_words=chunk_words, quiet=True, dense=DenseSettings(enabled=dense)))
    return root


def tiny_docs() -> list[dict]:
    from tests.text_fixtures import DOCS

    return [{"id": i, "title": title, "text": text} for i, title, text in DOCS]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """The twelve one-topic documents of tests/text_fixtures.py, BM25 + dense."""
    return build_tiny_index(tmp_path_factory.mktemp("tiny") / "index", tiny_docs(), dense=True)


@pytest.fixture(scope="session")
def tiny_bm25_root(tmp_path_factory) -> Path:
    """The same documents built without the dense leg (`index build --no-dense`)."""
    return build_tiny_index(tmp_path_factory.mktemp("tiny-bm25") / "index", tiny_docs(), dense=False)


@pytest.fixture(scope="session")
def service_root(request, tmp_path_factory) -> Path:
    """A private copy of the Cranfield index ROOT (reload tests add builds to it).

    DRSEARCH_TEST_CRANFIELD_INDEX=ROOT reuses an already built Cranfield index (saves a build while iterating).
    """
    prebuilt = os.environ.get("DRSEARCH_TEST_CRANFIELD_INDEX")
    source = Path(prebuilt) if prebuilt else request.getfixturevalue("cranfield_index")
    root = tmp_path_factory.mktemp("service") / "index"
    shutil.copytree(source, root, symlinks=True)
    return root


@pytest.fixture(scope="session")
def live(service_root: Path) -> Iterator[LiveServer]:
    """The shared server: micro-batching on, admin key set, no search key."""
    srv = start_server(index=service_root, admin_key=ADMIN_KEY, api_key=None, threads=4, batch_window_ms=3.0)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def web_root(tmp_path_factory) -> Path:
    """The web-documents corpus of tests/service/web_docs.py, BM25 + dense, ~30-word passages."""
    from tests.service.web_docs import web_docs

    return build_tiny_index(tmp_path_factory.mktemp("web") / "index", web_docs(), dense=True, chunk_words=30)


@pytest.fixture(scope="session")
def web_server(web_root: Path) -> Iterator[LiveServer]:
    """A server over `web_root` shared by the filter tests and the search page tests."""
    srv = start_server(index=web_root, threads=2)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as c:
        yield c


def agent_docs() -> list[dict]:
    """The tiny documents plus sourced ones: URLs on listed hosts (several countries), dates, languages.

    Dates are relative to AGENT_NOW (time_range tests pin `now` to it).
    """
    from tests.text_fixtures import AGENT_DOCS

    return tiny_docs() + [dict(d) for d in AGENT_DOCS]


@pytest.fixture(scope="session")
def agent_root(tmp_path_factory) -> Path:
    """An index of `agent_docs()` (BM25 + dense, ~40-word passages so long documents have several)."""
    return build_tiny_index(tmp_path_factory.mktemp("agent") / "index", agent_docs(), dense=True, chunk_words=40)


@pytest.fixture(scope="session")
def agent_live(agent_root: Path) -> Iterator[LiveServer]:
    """A server over the agent index; loopback fetches allowed (the fixture web runs on 127.0.0.1)."""
    srv = start_server(index=agent_root, api_key=None, threads=4, cache_size=0, fetch_allow_loopback=True,
                       fetch_allow_hosts=["127.0.0.1"], fetch_timeout_s=2.0, fetch_max_bytes=200_000)  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def agent_client(agent_live: LiveServer) -> Iterator[httpx.Client]:
    with agent_live.client() as c:
        yield c
