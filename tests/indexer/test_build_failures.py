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
    proc = drsearch("index", "build", "--corpus", tmp_path / "docs.jsonl", "--out", out, "--no-dense", "-q", timeout=120)
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

    assert indexing_failure(1, DISK_FULL_LOG.splitlines()) == "Lucene indexing failed (exit 1): java.io.IOException: No space left on device"
    oom = ['Exception in thread "main" java.lang.OutOfMemoryError: Java heap space', "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)"]
    assert indexing_failure(1, oom) == "Lucene indexing failed (exit 1): java.lang.OutOfMemoryError: Java heap space"
    assert indexing_failure(0, ["Starting to index...", ""]) == "Lucene indexing failed (exit 0): Starting to index..."
    assert indexing_failure(137, []) == "Lucene indexing failed (exit 137): no output"
