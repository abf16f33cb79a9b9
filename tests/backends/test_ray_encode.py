"""`index encode` on a real local Ray cluster (two encoder actors, bound to 127.0.0.1).

The vectors must equal a local encode, and a shard whose actor process is killed mid-run must be
redone, not lost. Real SciFact documents, the real bundled model, real Ray worker processes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is the optional extra drsearch[distributed] (make install adds it via [test])")

from backends.faiss.cache import EmbeddingCache  # noqa: E402
from backends.faiss.ray_pool import LOCAL, RayEncoderPool, connect  # noqa: E402
from indexer.encode import encode_corpus  # noqa: E402
from indexer.settings import BuildSettings, DenseSettings  # noqa: E402
from tests.indexer.test_encode import scifact_jsonl  # noqa: E402

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def ray_cluster():
    """A two-CPU Ray cluster on this machine for the module; always shut down."""
    before = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    ray = connect(LOCAL, num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)


def cached(root: Path) -> EmbeddingCache:
    (folder,) = (root / "embeddings").iterdir()
    return EmbeddingCache(folder, 384)


def test_ray_vectors_equal_local_and_a_killed_actor_shard_is_redone(tmp_path, ray_cluster):
    # Whole abstracts (one passage each, up to 256 tokens): shard 0 (64 passages) takes seconds on one
    # CPU, so actor 0 is still encoding it when it is killed; shard 1 (16) goes to actor 1.
    corpus = scifact_jsonl(tmp_path / "corpus.jsonl", 80)
    settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(device="cpu", shard_size=64))

    pool = RayEncoderPool(settings.dense, workers=2, max_restarts=0)  # a dead actor stays dead: only actor 1 can redo it
    pids = pool.pids()
    submitted: list[tuple[int, int]] = []

    def kill_first_actor_mid_shard(shard: int, actor: int) -> None:
        submitted.append((shard, actor))
        if (shard, actor) == (0, 0):
            time.sleep(0.3)  # let the shard reach the actor and start encoding
            os.kill(pids[0], signal.SIGKILL)

    try:
        report = encode_corpus([corpus], tmp_path / "ray", settings, pool=pool, on_submit=kill_first_actor_mid_shard)
    finally:
        pool.close()
    assert submitted[:2] == [(0, 0), (1, 1)]
    assert (0, 1) in submitted[2:], f"shard 0 was not redone on the other actor: {submitted}"
    assert report.retried >= 1 and report.workers == 2
    assert (report.passages, report.encoded, report.shards) == (80, 80, 2)

    local = encode_corpus([corpus], tmp_path / "local", settings)
    assert local.encoded == 80
    remote_cache, local_cache = cached(tmp_path / "ray"), cached(tmp_path / "local")
    assert remote_cache.dir.name == local_cache.dir.name  # the same model key: a build reuses these
    assert len(list(remote_cache.dir.glob("shard-*.npz"))) == 2  # the killed shard was written once, by the driver
    keys = list(local_cache._lookup)
    assert len(keys) == len(remote_cache) == 80
    diff = max(float(np.abs(remote_cache.get(k) - local_cache.get(k)).max()) for k in keys)
    assert diff <= 1e-5
