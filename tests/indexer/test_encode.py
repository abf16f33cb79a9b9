"""`index encode` without Ray: the vectors land where `index build` looks, so the build encodes nothing.

Real SciFact documents (a few dozen, written as JSONL here), the real bundled model, a real build.
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from backends.base import VECTOR
from indexer.build import build_index
from indexer.encode import encode_corpus
from indexer.settings import BuildSettings, DenseSettings
from tests.conftest import data_dir, drsearch


def scifact_jsonl(path: Path, n: int, *, words: int | None = None) -> Path:
    """The first `n` SciFact documents as a corpus file of their own (no copy kept beyond the test's tmp);
    `words` keeps only the first words of each text (the encode of short passages takes a fraction of the time)."""
    with gzip.open(data_dir("scifact") / "corpus.jsonl.gz", "rt", encoding="utf-8") as src:
        lines = list(itertools.islice(src, n))
    if words is not None:
        docs = [json.loads(line) for line in lines]
        lines = [json.dumps({**d, "text": " ".join(d["text"].split()[:words])}) + "\n" for d in docs]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_build_after_encode_encodes_nothing(tmp_path):
    corpus = scifact_jsonl(tmp_path / "corpus.jsonl", 30)
    root = tmp_path / "index"
    settings = BuildSettings(chunk_words=60, quiet=True, dense=DenseSettings(device="cpu", shard_size=64))

    first = encode_corpus([corpus], root, settings)
    assert first.encoded == first.passages > 64 and first.shards == -(-first.passages // 64)
    assert first.cache_dir.parent == root / "embeddings"

    again = encode_corpus([corpus], root, settings)
    assert (again.encoded, again.cached, again.shards) == (0, first.passages, 0)

    built = build_index([corpus], root, settings).manifest
    dense = built.section(VECTOR)
    assert built.counts["passages"] == first.passages
    assert (dense.encoded, dense.reused) == (0, first.passages)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--device", "cuda"], "CUDA is not available here"),
        (["--device", "tpu"], "invalid --device: must be cpu, cuda or cuda:N, got 'tpu'"),
        (["--shard-size", "10"], "--shard-size"),
        (["--ray", "127.0.0.1:1"], "127.0.0.1:1: no Ray cluster answers there"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, says):
    import torch

    if "--ray" in args:
        pytest.importorskip("ray", reason="Ray is the optional extra drsearch[distributed]")
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA is available here: the error path cannot be reached")
    corpus = scifact_jsonl(tmp_path / "corpus.jsonl", 2)
    proc = drsearch("index", "encode", "--corpus", corpus, "--out", tmp_path / "index", "-q", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "index" / "embeddings").exists()


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"])
def test_a_port_where_no_ray_head_answers_is_refused_in_seconds(answer):
    """A listener that accepts and stays silent (or speaks HTTP/1) is no Ray head: Ray would retry it
    for minutes; the check reads the gRPC server's greeting and gives up after its timeout."""
    import socket
    import threading

    from backends.faiss.ray_pool import _check_reachable
    from indexer.errors import ConfigError

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        address = "127.0.0.1:%d" % server.getsockname()[1]

        def reply_once() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(answer)

        if answer is not None:
            threading.Thread(target=reply_once, daemon=True).start()
        with pytest.raises(ConfigError) as refused:
            _check_reachable(address, timeout_s=1.0)
    says = "nothing came back within 1 s" if answer is None else "does not speak gRPC"
    assert says in str(refused.value) and str(refused.value).startswith(address)


def test_out_under_a_regular_file_is_a_one_line_error(tmp_path):
    """As `index build` says it for the same --out: the path and the system's reason, exit 2; said before
    the model is loaded (seconds), so before a missing --model is found."""
    corpus = scifact_jsonl(tmp_path / "corpus.jsonl", 2)
    (tmp_path / "afile").write_text("")
    proc = drsearch("index", "encode", "--corpus", corpus, "--out", tmp_path / "afile" / "sub", "--model", tmp_path / "no-model", "-q")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'afile' / 'sub'}: cannot write the index: Not a directory" in lines[0]
