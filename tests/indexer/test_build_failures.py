"""`index build` where the index cannot be written (under a regular file, /proc, a file-size limit
standing in for a full disk) and a failed Lucene indexing run: one line naming the path and the
reason, no partial build, the previous `current` kept."""

from __future__ import annotations

import json
import os
import resource

import pytest

from tests.conftest import drsearch
from tests.service.test_cli import assert_one_line_error
from tests.service.test_cli_errors import write_docs


@pytest.mark.parametrize("under", ["file", "proc"])
def test_out_that_cannot_be_created(tmp_path, under):
    write_docs(tmp_path / "docs.jsonl")
    (tmp_path / "file").write_text("x")
    out, reason = {"file": (tmp_path / "file" / "idx", "Not a directory"), "proc": ("/proc/drsearch-x/idx", "No such file")}[under]
    # Under a file shows without writing: said before the model is loaded (seconds), so before a missing --model is found.
    dense = ["--model", tmp_path / "no-model"] if under == "file" else ["--no-dense"]
    proc = drsearch("index", "build", "--corpus", tmp_path / "docs.jsonl", "--out", out, *dense, "-q", timeout=120)
    assert_one_line_error(proc, f"drsearch: error: {out}: cannot write the index: {reason}")
    assert (tmp_path / "file").read_text() == "x"


def test_a_failed_write_keeps_the_previous_build(tmp_path):
    """The store's SQLite write fails for real (a file-size limit: EFBIG, as ENOSPC on a full disk)."""
    from indexer.build import build_index
    from indexer.errors import DrsearchError
    from indexer.language import document_language
    from indexer.settings import BuildSettings, DenseSettings

    write_docs(tmp_path / "docs.jsonl")
    root = tmp_path / "idx"
    drsearch("index", "build", "--corpus", tmp_path / "docs.jsonl", "--out", root, "--no-dense", "-q", check=True)
    live, current = sorted(os.listdir(root / "builds")), os.readlink(root / "current")
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"id": f"d{i}", "text": " ".join(f"w{i}x{j} lorem ipsum" for j in range(60))}) + "\n"
                           for i in range(600)))  # fmt: skip
    document_language(None, "", "a long enough English sentence to load the language model before the limit")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))  # Python ignores SIGXFSZ: writes fail with EFBIG
    try:
        with pytest.raises(DrsearchError) as failed:
            build_index([big], root, BuildSettings(quiet=True, dense=DenseSettings(enabled=False)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(failed.value) == f"{root}: cannot write the index: disk I/O error"
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert sorted(os.listdir(root / "builds")) == live and os.readlink(root / "current") == current
    out = drsearch("search", "magma lava", "--index", root, "-k", "1", "--json", check=True)
    assert json.loads(out.stdout)["hits"][0]["doc_id"] == "volcano"


DISK_FULL_LOG = """\
2026-12-03 14:00:01,123 INFO  [main] index.IndexCollection (IndexCollection.java:380) - Starting to index...
2026-12-03 14:00:09,000 ERROR [main] index.IndexCollection (IndexCollection.java:410) - Unexpected exception:
Exception in thread "main" org.apache.lucene.index.MergePolicy$MergeException: java.io.IOException: No space left on device
\tat org.apache.lucene.index.IndexWriter.mergeMiddle(IndexWriter.java:5123)
\tat org.apache.lucene.index.IndexWriter.merge(IndexWriter.java:4600)
Caused by: java.io.IOException: No space left on device
\tat java.base/sun.nio.ch.FileDispatcherImpl.write0(Native Method)
\tat org.apache.lucene.store.FSDirectory$FSIndexOutput$1.write(FSDirectory.java:416)
\t... 12 more
"""


def test_lucene_failure_names_the_exception_not_a_frame():
    from backends.lucene.writer import indexing_failure

    assert indexing_failure(1, DISK_FULL_LOG.splitlines()) == "Lucene indexing failed (exit 1): IOException: No space left on device"
    oom = ['Exception in thread "main" java.lang.OutOfMemoryError: Java heap space', "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)"]
    assert indexing_failure(1, oom) == "Lucene indexing failed (exit 1): OutOfMemoryError: Java heap space"
    assert indexing_failure(0, ["Starting to index...", ""]) == "Lucene indexing failed (exit 0): Starting to index..."
    assert indexing_failure(137, []) == "Lucene indexing failed (exit 137): no output"
    anserini = ["2026-12-03 17:06:14,110 ERROR [main] index.AbstractIndexer (AbstractIndexer.java:281) - java.io.IOException: "
                "No space left on device", "2026-12-03 17:06:14,116 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:301) "
                "- Total 5,183 documents indexed in 00:00:01"]  # fmt: skip
    assert indexing_failure(0, anserini) == "Lucene indexing failed (exit 0): IOException: No space left on device"


def test_a_full_disk_fails_the_build_in_one_line_or_the_build_serves(tmp_path, small_disk):
    """Real full disks at several sizes below what a build needs: each build either fails with one line
    (exit 1, nothing published) or ends with an index that searches. Anserini exits 0 when its
    final commit fails, with no index written: that must not publish a build."""
    import gzip
    import shutil

    from tests.conftest import DATA

    corpus = tmp_path / "scifact.jsonl"
    with gzip.open(DATA / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        # 600 documents fail at each size where 1,500 did, in the same line: the store's SQLite, our own writes,
        # Anserini's exit 1, and at 1.1 its exit 0 after a failed commit (300 already fail elsewhere at 0.6)
        corpus.write_text("".join(line for _, line in zip(range(600), fh)), encoding="utf-8")
    whole = drsearch("index", "build", "--corpus", corpus, "--out", tmp_path / "whole", "--no-dense", "-q", check=True)
    assert whole.returncode == 0
    need = sum(f.stat().st_size for f in (tmp_path / "whole").rglob("*") if f.is_file())
    outcomes = []
    for fraction in (0.3, 0.6, 0.8, 0.9, 1.0, 1.1):
        root = small_disk(int(need * fraction)) / "idx"
        proc = drsearch("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "-q", timeout=300)
        if proc.returncode == 0:
            out = drsearch("search", "cancer cells", "--index", root, "-k", "1", "--json", check=True)
            assert json.loads(out.stdout)["hits"], out.stdout
            outcomes.append("built")
        else:
            assert_one_line_error(proc, f"drsearch: error: {root}")
            assert not (root / "current").exists()
            outcomes.append(proc.stderr.strip().rsplit(": ", 1)[-1])
        shutil.rmtree(root, ignore_errors=True)
    assert outcomes[0] != "built" and any("No space left" in o or "disk is full" in o for o in outcomes), outcomes


def test_a_full_disk_stops_index_encode_in_one_line_and_keeps_the_shards_written(tmp_path, small_disk):
    """`index encode` on a disk that fills after two shards (~100 KB each: a shard's size is its vectors',
    whatever the passages' length, so they are kept short): one line, exit 2 (it was a traceback); the two
    shards stay whole and a rerun with room reuses them."""
    import subprocess

    from tests.indexer.test_encode import scifact_jsonl

    corpus = scifact_jsonl(tmp_path / "corpus.jsonl", 200, words=24)
    disk = small_disk(300_000)
    args = ("index", "encode", "--corpus", corpus, "--out", disk / "idx", "--chunk-words", "0", "--shard-size", "64", "--json")
    proc = drsearch(*args, "-q", timeout=300)
    assert_one_line_error(proc, f"drsearch: error: {disk / 'idx'}: cannot write the index: No space left on device")
    (cache,) = (disk / "idx" / "embeddings").iterdir()
    assert len(list(cache.glob("shard-*.npz"))) == 2 and not list(cache.glob(".*tmp*"))
    subprocess.run(["mount", "-o", "remount,size=2000000", str(disk)], check=True)
    again = json.loads(drsearch(*args, "-q", check=True, timeout=300).stdout)
    assert (again["cached"], again["encoded"], again["passages"]) == (128, 72, 200)


def test_a_run_that_drops_documents_fails(tmp_path):
    """Anserini exits 0 when a document fails (an id term past Lucene's 32,766 bytes: the reader refuses
    such ids, but the count is the check that catches any such loss) and drops the rest of its file."""
    from backends.lucene.writer import LuceneInputWriter, build_lucene_index
    from indexer.errors import DrsearchError

    shards = LuceneInputWriter(tmp_path / "input", shards=2)
    for i in range(20):
        shards.add("a" * 40_000 if i == 0 else f"ok{i}", "", f"fine document {i}")
    shards.close()
    with pytest.raises(DrsearchError) as failed:
        build_lucene_index(tmp_path / "input", tmp_path / "lucene", threads=2, total=20, quiet=True)
    message = str(failed.value)
    assert " of 20 documents indexed): " in message and "MaxBytesLengthExceededException" in message and "\n" not in message, message
