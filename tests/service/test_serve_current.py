"""Serving `ROOT/current` is serving ROOT: a reload and the `--workers` watcher move to the build
`current` names now. Serving a build folder stays on that build. Real servers on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from indexer import layout
from tests.conftest import REPO, drsearch
from tests.service.conftest import ADMIN_KEY, new_version, start_server
from tests.service.test_serve_recovery import free_port, healthy, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def root(tiny_bm25_root, tmp_path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(tiny_bm25_root, copy, symlinks=True)
    return copy


def reload_after_a_new_build(index: Path, root: Path) -> tuple[str, str, dict]:
    """Serve `index`, make a new build `current` in ROOT, reload -> (version before, new version, the answer)."""
    server = start_server(index=index, admin_key=ADMIN_KEY, threads=2, warmup=False, cache_size=0)
    try:
        with server.client() as c:
            before = c.get("/readyz").json()["index_version"]
            version = new_version(root)
            r = c.post("/v1/admin/reload", headers=ADMIN)
            assert r.status_code == 200, r.text
            served = c.post("/v1/search", json={"query": "volcano", "k": 1}).json()["index_version"]
            assert served == r.json()["new_version"]
            return before, version, r.json()
    finally:
        server.stop()


def test_reload_follows_the_current_link(root):
    before, version, answer = reload_after_a_new_build(root / layout.CURRENT, root)
    assert answer == {**answer, "reloaded": True, "old_version": before, "new_version": version}


def test_a_served_build_folder_stays_on_its_build(root):
    before, _, answer = reload_after_a_new_build(layout.resolve_build(root), root)
    assert answer == {**answer, "reloaded": False, "old_version": before, "new_version": before}


def test_every_worker_follows_the_current_link(root):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"DRSEARCH_SERVE_WATCH_S": "0.2", "DRSEARCH_SERVE_WARMUP": "false", "HF_HUB_OFFLINE": "1"}
    master = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--index", str(root / layout.CURRENT), "--port", str(port),
         "--workers", "2", "--threads", "1"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: healthy(base), 120, "server did not start")
        wait_until(lambda: _ready_version(base) is not None, 120, "index not loaded")
        version = new_version(root)
        # Each worker's watcher loads the new build on its own time: wait until no answer is the old one
        # (the kernel spreads connections over both workers; one left behind keeps answering its build).
        wait_until(lambda: {_ready_version(base) for _ in range(40)} == {version}, 60, "not every worker followed `current`")
    finally:
        stop(master)


def _ready_version(base: str) -> str | None:
    try:
        r = httpx.get(f"{base}/readyz", timeout=10)
    except httpx.HTTPError:
        return None
    return r.json().get("index_version") if r.status_code == 200 else None


def test_a_watching_server_follows_index_use_back_to_an_older_build(root):
    """`index use` switches `current` as a build does: a server watching it reloads the older build, and a
    prune then removes the newer one it no longer serves."""
    older = layout.resolve_build(root).name
    newer = new_version(root)
    server = start_server(index=root, watch_s=0.2, threads=2, warmup=False, cache_size=0)
    try:
        with server.client() as c:
            assert c.get("/readyz").json()["index_version"] == newer
            proc = drsearch("index", "use", root, older, "-q", timeout=120)
            assert (proc.returncode, proc.stdout) == (0, f"current was {newer}, now {older}\n"), proc.stderr
            wait_until(lambda: c.get("/readyz").json()["index_version"] == older, 60, "the server did not follow `index use`")
            assert drsearch("index", "prune", root, "--keep", "0", timeout=120).stdout.startswith(f"removed {newer} ")
            hits = c.post("/v1/search", json={"query": "magma lava", "k": 1}).json()
            assert hits["index_version"] == older and hits["results"][0]["hits"][0]["doc_id"] == "volcano"
    finally:
        server.stop()
