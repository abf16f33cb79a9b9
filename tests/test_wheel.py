"""The wheel an operator installs: it holds every file the code reads at run time, and the installed code
finds them outside any checkout. Built as `python -m build` builds it, from the sdist (setuptools, no build
isolation: ~2 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# What the code reads beside its modules: the authority list, the Lucene helper jar, the search page.
RUN_TIME_FILES = [
    *(f"authority_lists/{p.name}" for p in sorted((REPO / "authority_lists").iterdir()) if p.is_file()),
    "backends/lucene/drsearch-lucene.jar",
    *(f"service/static/{p.name}" for p in sorted((REPO / "service" / "static").iterdir())),
]
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "indexes",
                                      ".pytest_cache", "tests", "bench", "docs")  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from the sdist of a copy of the sources (a build in place would leave build/ in the
    checkout): what the sdist leaves out, the wheel lacks too."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, tmp / "src", ignore=_NOT_SOURCES)
    build_sdist = "from setuptools import build_meta; print(build_meta.build_sdist('.'))"
    sdist = subprocess.run([sys.executable, "-c", build_sdist], cwd=tmp / "src", check=True, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                    "-w", tmp / "dist", tmp / "src" / sdist.stdout.split()[-1]], check=True, capture_output=True,
                   timeout=300)  # fmt: skip
    return next((tmp / "dist").glob("drsearch-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked as pip installs a pure-Python wheel: its files at the root of a site directory."""
    site = tmp_path_factory.mktemp("site-packages")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def test_the_wheel_holds_every_file_the_code_reads_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in RUN_TIME_FILES if f not in names] == []


def _installed_drsearch(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DRSEARCH_AUTHORITY_LIST", "PYTHONPATH")}
    # The unpacked wheel first on the path: `ranker` etc. are imported from it, not from a checkout. No JVM
    # class archive: its jars, elsewhere than the checkout's, would have one made in the background.
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**env, "PYTHONPATH": str(site), "DRSEARCH_JVM_CLASS_ARCHIVE": "0"}, timeout=300)  # fmt: skip


def test_the_installed_code_finds_its_files_outside_the_checkout(installed, tmp_path):
    where = subprocess.run([sys.executable, "-c", "import ranker; print(ranker.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)})
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout + where.stderr
    check = _installed_drsearch(installed, tmp_path, "authority", "check", "--json")
    assert check.returncode == 0, check.stderr
    assert Path(json.loads(check.stdout)["directory"]).is_relative_to(installed)

    # A build and a search run the helper jar and rank the listed source first (the authority prior).
    text = "The consumer price index rose by 2.1 percent in October compared with the same month last year."
    docs = [{"id": "blog", "url": "https://www.example-blog.com/cpi", "title": "CPI", "text": text},
            {"id": "nbs", "url": "https://www.stats.gov.cn/cpi", "title": "CPI", "text": text}]  # fmt: skip
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    build = _installed_drsearch(installed, tmp_path, "index", "build", "--corpus", "docs.jsonl", "--out", "idx",
                                "--no-dense", "--quiet")  # fmt: skip
    assert build.returncode == 0, build.stderr
    # Both copies of the one text shown (--no-dedupe-text), the listed one first.
    search = _installed_drsearch(installed, tmp_path, "search", "consumer price index", "--index", "idx", "--json",
                                 "--no-dedupe-text")  # fmt: skip
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)["hits"]
    assert [(h["doc_id"], (h["authority"] or {}).get("tier")) for h in hits] == [("nbs", 1), ("blog", None)]
