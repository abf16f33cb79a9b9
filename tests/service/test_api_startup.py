"""The service refuses to start on a malformed authority list, with one line naming file, line and field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ranker.authority import DOMAIN_HEADER, AuthorityListError
from service.server import serve
from service.settings import ServiceSettings
from tests.conftest import REPO

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
    env = {**os.environ, "DRSEARCH_AUTHORITY_LIST": str(bad_list), "DRSEARCH_SERVE_INDEX": str(tiny_bm25_root)}
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory", "--host", "127.0.0.1", "--port", "0"],
        check=False, capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Uvicorn running" not in proc.stderr, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if "banks.csv" in x]
    assert "drsearch: cannot serve: banks.csv:2: tier" in line, proc.stderr


def test_serve_checks_the_list_before_starting(tiny_bm25_root, bad_list, monkeypatch):
    monkeypatch.setenv("DRSEARCH_AUTHORITY_LIST", str(bad_list))
    with pytest.raises(AuthorityListError) as err:
        serve(ServiceSettings(index=tiny_bm25_root, port=0))
    assert str(err.value).startswith("banks.csv:2: tier")
