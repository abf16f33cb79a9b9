"""Shared fixtures: the real collections in ../shared/data (override: DRSEARCH_DATA) and
indexes built over them once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRSEARCH_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def data_dir(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"collection {name} not found under {DATA} (set DRSEARCH_DATA)")
    return path


def drsearch(*args: str, check: bool = False, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `drsearch` CLI in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"drsearch {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _share_embedding_cache(root: Path) -> None:
    """Point ROOT's embedding cache at DRSEARCH_TEST_EMBEDDINGS when set, so repeated local runs
    (and parallel checkouts) encode each collection once. Shards are written atomically under
    unique names, so several processes may share the folder. CI leaves it unset."""
    from indexer import layout

    shared = os.environ.get("DRSEARCH_TEST_EMBEDDINGS")
    link = root / layout.EMBEDDING_CACHE_DIR
    if shared and not link.exists():
        Path(shared).mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(shared).resolve(), target_is_directory=True)


def _build(root: Path, corpus: Path, *, chunk_words: int, dense: bool) -> Path:
    """Build into ROOT; returns the build directory (ROOT's embedding cache is shared by its builds)."""
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    _share_embedding_cache(root)

    settings = BuildSettings(chunk_words=chunk_words, quiet=True, dense=DenseSettings(enabled=dense))
    return build_index([corpus], root, settings).build_dir


@pytest.fixture(scope="session")
def scifact_root(tmp_path_factory) -> Path:
    """One index ROOT for both SciFact builds: documents that stay one passage when chunked
    are embedded once (the cache is keyed by model + text)."""
    return tmp_path_factory.mktemp("scifact")


@pytest.fixture(scope="session")
def cranfield_index(tmp_path_factory) -> Path:
    """Cranfield, default paragraph chunking, BM25 + dense (an index ROOT)."""
    root = tmp_path_factory.mktemp("cranfield")
    _build(root, data_dir("cranfield"), chunk_words=200, dense=True)
    return root


@pytest.fixture(scope="session")
def scifact_flat_index(scifact_root) -> Path:
    """SciFact, each document one passage, BM25 + dense (a build directory)."""
    return _build(scifact_root, data_dir("scifact"), chunk_words=0, dense=True)


@pytest.fixture(scope="session")
def scifact_chunked_index(scifact_root, scifact_flat_index) -> Path:
    """SciFact, default paragraph chunking, BM25 + dense (a build directory; built after the flat one)."""
    return _build(scifact_root, data_dir("scifact"), chunk_words=200, dense=True)


@pytest.fixture(scope="session")
def scale_index(tmp_path_factory) -> Path:
    """1,200 passages of the synthetic scale corpus (bench/scale_corpus.py: real SciFact/Cranfield
    sentences, planted domains; for mechanisms, never quality), BM25 + exact dense (a build directory)."""
    from bench.scale_corpus import write
    from indexer.build import build_index
    from indexer.settings import BuildSettings

    data_dir("scifact"), data_dir("cranfield")
    base = tmp_path_factory.mktemp("scale")
    write(1200, base / "corpus", seed=7)
    (base / "index").mkdir()
    _share_embedding_cache(base / "index")
    return build_index([base / "corpus"], base / "index", BuildSettings(quiet=True)).build_dir
