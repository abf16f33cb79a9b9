"""Serving `ROOT/current` is serving ROOT: a reload moves to the build `current` names now.
Serving a build folder stays on that build. Real servers on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from indexer import layout
from tests.service.conftest import ADMIN_KEY, new_version, start_server

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
