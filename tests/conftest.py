"""Shared fixtures: the real collections in ../shared/data (override: DRSEARCH_DATA) and
indexes built over them once per test session."""

from __future__ import annotations

import faulthandler
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


EXIT_GRACE_S = 180


def pytest_unconfigure(config: pytest.Config) -> None:
    """Python's exit joins every non-daemon thread: one left waiting made the process outlive its last
    test until CI's limit. Past EXIT_GRACE_S, every thread's stack is printed and the run fails instead."""
    faulthandler.dump_traceback_later(EXIT_GRACE_S, exit=True)


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


def finished_pid() -> int:
    """The pid of a process that has ended and been reaped: a process that is gone."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


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
def cranfield_index(tmp_path_factory) -> Path:
    """Cranfield, default paragraph chunking, BM25 + dense (an index ROOT)."""
    root = tmp_path_factory.mktemp("cranfield")
    _build(root, data_dir("cranfield"), chunk_words=200, dense=True)
    return root


@pytest.fixture(scope="session")
def cranfield_bm25_index(tmp_path_factory) -> Path:
    """Cranfield, default paragraph chunking, BM25 only, built by `index build --no-dense` (an index ROOT).
    Shared: a test that adds builds or changes files works on a copy."""
    root = tmp_path_factory.mktemp("cranfield-bm25") / "idx"
    drsearch("index", "build", "--corpus", data_dir("cranfield"), "--out", root, "--no-dense", "--quiet", check=True)
    return root


def write_scifact_subset(out: Path, *, every: int = 4) -> Path:
    """A real subset of SciFact in BEIR layout (corpus, queries, test qrels): every document a test
    query judges, and every `every`-th of the others as distractors. Encoding the whole corpus takes
    minutes; its figures are benchmarks (docs/BENCHMARKS.md)."""
    import gzip
    import json
    import shutil

    scifact = data_dir("scifact")
    rows = (scifact / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    judged = {row.split("\t")[1] for row in rows}
    (out / "qrels").mkdir(parents=True)
    shutil.copyfile(scifact / "queries.jsonl", out / "queries.jsonl")
    shutil.copyfile(scifact / "qrels" / "test.tsv", out / "qrels" / "test.tsv")
    others = 0
    with gzip.open(scifact / "corpus.jsonl.gz", "rt", encoding="utf-8") as src, open(out / "corpus.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            if json.loads(line)["_id"] not in judged:
                others += 1
                if others % every:
                    continue
            dst.write(line)
    return out


@pytest.fixture(scope="session")
def scifact_subset(tmp_path_factory) -> Path:
    """`write_scifact_subset`, written once (a BEIR folder for `drsearch eval --beir`)."""
    return write_scifact_subset(tmp_path_factory.mktemp("scifact-subset") / "beir")


@pytest.fixture(scope="session")
def scifact_root(tmp_path_factory) -> Path:
    """One index ROOT for both SciFact subset builds: documents that stay one passage when chunked
    are embedded once (the cache is keyed by model + text)."""
    return tmp_path_factory.mktemp("scifact")


@pytest.fixture(scope="session")
def scifact_flat_index(scifact_root, scifact_subset) -> Path:
    """The SciFact subset, each document one passage, BM25 + dense (a build directory)."""
    return _build(scifact_root, scifact_subset, chunk_words=0, dense=True)


@pytest.fixture(scope="session")
def scifact_chunked_index(scifact_root, scifact_subset, scifact_flat_index) -> Path:
    """The SciFact subset, default paragraph chunking, BM25 + dense (a build directory; built after the flat one)."""
    return _build(scifact_root, scifact_subset, chunk_words=200, dense=True)


@pytest.fixture(scope="session")
def scifact_bm25_index(tmp_path_factory) -> Path:
    """All of SciFact, each document one passage, BM25 only (a build directory; seconds to build)."""
    return _build(tmp_path_factory.mktemp("scifact-bm25"), data_dir("scifact"), chunk_words=0, dense=False)


@pytest.fixture(scope="session")
def scale_index(tmp_path_factory) -> Path:
    """1,200 passages of the synthetic scale corpus (bench/scale_corpus.py: real SciFact/Cranfield
    sentences, planted domains; for mechanisms, never quality), BM25 + exact dense (a build directory).
    Encoded with int8 ONNX, the faster passage encoder (~2x): its tests compare rankings over the build's
    own vectors (approximate with exact search, filtered with exhaustive), whatever encoded them."""
    from bench.scale_corpus import write
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    data_dir("scifact"), data_dir("cranfield")
    base = tmp_path_factory.mktemp("scale")
    write(1200, base / "corpus", seed=7)
    (base / "index").mkdir()
    _share_embedding_cache(base / "index")
    settings = BuildSettings(quiet=True, dense=DenseSettings(encoder="onnx-int8"))
    return build_index([base / "corpus"], base / "index", settings).build_dir


def write_mixed_subset(out: Path, *, zh_queries: int = 8, en_docs: int = 60) -> dict[str, object]:
    """A small real mixed-language library: the rgb_zh documents judged for its first `zh_queries`
    questions (relevant and hard negatives) plus the first `en_docs` SciFact documents, as two
    documents JSONL files. Returns the chosen queries, their qrels and the counts per language."""
    import csv
    import gzip
    import json

    rgb, scifact = data_dir("rgb_zh"), data_dir("scifact")
    queries = {}
    with open(rgb / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if len(queries) < zh_queries:
                queries[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = {}
    wanted: set[str] = set()
    for name in ("qrels/test.tsv", "judged_nonrelevant.tsv"):
        with open(rgb / name, encoding="utf-8") as fh:
            for row in csv.reader(fh, delimiter="\t"):
                if row[0] in queries:
                    wanted.add(row[1])
                    if row[2] == "1":
                        qrels.setdefault(row[0], set()).add(row[1])
    out.mkdir(parents=True, exist_ok=True)
    n_zh = n_en = 0
    with open(rgb / "corpus.jsonl", encoding="utf-8") as src, open(out / "zh.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            if json.loads(line)["_id"] in wanted:
                dst.write(line)
                n_zh += 1
    with gzip.open(scifact / "corpus.jsonl.gz", "rt", encoding="utf-8") as src, open(out / "en.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            if n_en == en_docs:
                break
            dst.write(line)
            n_en += 1
    return {"queries": queries, "qrels": qrels, "counts": {"zh": n_zh, "en": n_en}}


@pytest.fixture(scope="session")
def mixed_zh(tmp_path_factory) -> dict[str, object]:
    """The mixed subset built once with BM25 + the bundled (English) dense model: an index ROOT."""
    base = tmp_path_factory.mktemp("mixed-zh")
    subset = write_mixed_subset(base / "corpus")
    root = base / "index"
    root.mkdir()
    return {**subset, "corpus": base / "corpus", "root": root,
            "build": _build(root, base / "corpus", chunk_words=200, dense=True)}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny RoBERTa sentence-transformers model, no token_type_ids (tests/model_fixtures.py).
    Shared: a test that changes it works on a copy."""
    from tests.model_fixtures import tiny_roberta

    return tiny_roberta(tmp_path_factory.mktemp("tiny-model") / "roberta")


@pytest.fixture(scope="session")
def tiny_dense_model(tmp_path_factory) -> Path:
    """The tiny RoBERTa with a Dense module after pooling (32 -> 16 dimensions)."""
    from tests.model_fixtures import tiny_roberta

    return tiny_roberta(tmp_path_factory.mktemp("tiny-dense-model") / "roberta-dense", dense=16)


@pytest.fixture
def small_disk(tmp_path):
    """A function that mounts a tmpfs of a given size (bytes or "32k") and returns its path; root only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = []

    def mount(size: int | str):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)
