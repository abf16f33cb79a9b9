"""`index encode` on a real local Ray cluster (two encoder actors, bound to 127.0.0.1).

The vectors must equal a local encode, and a shard whose actor process is killed mid-run must be
redone, not lost. Real SciFact documents, the real bundled model, real Ray worker processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is the optional extra drsearch[distributed] (make install adds it via [test])")

from backends.faiss.cache import EmbeddingCache  # noqa: E402
from backends.faiss.encoder import bundled_model_path  # noqa: E402
from backends.faiss.ray_pool import LOCAL, RayEncoderPool, connect  # noqa: E402
from indexer.encode import encode_corpus  # noqa: E402
from indexer.errors import ConfigError  # noqa: E402
from indexer.settings import BuildSettings, DenseSettings  # noqa: E402
from tests.indexer.test_encode import scifact_jsonl  # noqa: E402

pytestmark = pytest.mark.timeout(600)


REPO = Path(__file__).resolve().parents[2]


def test_ray_vectors_equal_local_and_a_killed_actor_shard_is_redone(tmp_path):
    """Runs the scenario in a fresh interpreter: Ray's core worker installs its own SIGSEGV handler in
    the driver, replacing the JVM's, and the JVM raises SIGSEGV on purpose for implicit null checks, so
    a later Lucene call in the same process (any test after this one) would crash the whole run."""
    code = "import sys; from tests.backends.test_ray_encode import scenario; scenario(sys.argv[1])"
    ray_temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # its session, not left in /tmp/ray; short for its sockets
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                              timeout=540, env={**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": ray_temp})  # fmt: skip
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "scenario passed" in proc.stdout, proc.stdout[-2000:]


def cached(root: Path) -> EmbeddingCache:
    (folder,) = (root / "embeddings").iterdir()
    return EmbeddingCache(folder, 384)


def scenario(tmp: str) -> None:
    """Two encoder actors on a local cluster; actor 0 is killed mid-shard. Asserts, then prints a marker."""
    tmp_path = Path(tmp)
    ray = connect(LOCAL, num_cpus=2)
    try:
        _encode_with_a_killed_actor(tmp_path)
        _an_actor_that_cannot_load_its_model_says_why(tmp_path)
    finally:
        ray.shutdown()
    print("scenario passed")


def _an_actor_that_cannot_load_its_model_says_why(tmp_path: Path) -> None:
    """The error names what the actor raised (Ray's message starts with the actor's repr and pid)."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as err:
        RayEncoderPool(DenseSettings(device="cpu", model=str(tmp_path / "empty")), workers=1, max_restarts=0)
    assert "encoder actors failed to start:" in str(err.value) and "not a sentence-transformers model" in str(err.value)
    assert "\n" not in str(err.value)


def _encode_with_a_killed_actor(tmp_path: Path) -> None:
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
    keys = local_cache.keys()
    assert len(keys) == len(remote_cache) == 80
    diff = max(float(np.abs(remote_cache.get(k) - local_cache.get(k)).max()) for k in keys)
    assert diff <= 1e-5


def test_an_encoder_actor_keeps_its_pools_to_its_threads():
    """An actor is one CPU slot of the node: its ONNX sessions run on `threads` threads, not on every
    core of the machine (torch's pool alone was sized before)."""
    from backends import threads
    from backends.faiss.ray_pool import EncoderActor

    before = threads.budget()
    try:
        actor = EncoderActor(DenseSettings(device="cpu", encoder="onnx").model_dump(), threads=1)
        assert actor.model._session.get_session_options().intra_op_num_threads == 1
        assert actor.encode(["tides follow the moon", "jazz"]).shape == (2, 384)
    finally:
        threads.set_budget(before)


def test_a_head_that_ray_start_runs_on_loopback_is_joined_by_host_and_port(tmp_path):
    """`--ray 127.0.0.1:PORT` dials loopback as given; Ray alone rewrote it to the machine's external
    address, where the head (bound to loopback) never answers, and retried for minutes. A `--model`
    relative to the driver's folder is found by the head's workers, which run in another."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0: on SIGTERM the head would otherwise wait up to 30 s for the node to
    # drain (a wait for serving traffic to move elsewhere) before stopping its processes; nothing here drains.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}  # fmt: skip
    ray_cli = Path(sys.executable).with_name("ray")
    session_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
         "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", session_dir],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "head.log").open("w"), start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None, (tmp_path / "head.log").read_text()[-3000:]
                time.sleep(0.5)
        corpus = scifact_jsonl(tmp_path / "corpus.jsonl", 3)
        driver_env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
        driver_env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "minilm").symlink_to(bundled_model_path())
        proc = subprocess.run(  # a --model relative to the driver's folder: the head's workers run elsewhere
            [Path(sys.executable).with_name("drsearch"), "index", "encode", "--corpus", corpus, "--out", tmp_path / "index",
             "--ray", f"127.0.0.1:{port}", "--model", "minilm"],
            env=driver_env, capture_output=True, text=True, timeout=240, cwd=tmp_path / "models",
        )  # fmt: skip
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(session_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    passages = len(cached(tmp_path / "index"))
    assert passages >= 3 and f"encoded {passages} of {passages} passages" in proc.stdout
    assert "on 1 cpu worker(s)" in proc.stdout  # the head's one CPU slot: encoded there, not locally
