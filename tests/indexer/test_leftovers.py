"""What a killed run leaves on disk (a temporary file not yet renamed into place, a build folder that
never became current, a `current` link not yet swapped in) is removed by the next run of the same
operation, and only that: a running process's temporary files and build folder, the current build
and folders of builds from before the `.building` lock are kept. The leftovers are made by the real
code in a process killed with SIGKILL, or named with the pid of a process that has ended."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import layout
from indexer.build import build_index
from indexer.encode import encode_corpus
from indexer.settings import BuildSettings, DenseSettings
from tests.conftest import REPO
from tests.service.test_cli_errors import write_docs


def ended_pid() -> int:
    """The pid of a process that has ended (and been reaped): no process has it now."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def running_pid() -> Iterator[int]:
    """The pid of another process that runs throughout the test, as a second build or export would."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


def killed_while_writing(path: Path) -> Path:
    """The temporary file `layout.atomic_write_with` leaves when its process is killed (SIGKILL) before the rename."""
    before = set(path.parent.iterdir())
    code = ("import os, signal, sys\nfrom pathlib import Path\nfrom indexer import layout\n"
            "layout.atomic_write_with(Path(sys.argv[1]), lambda tmp: (tmp.write_bytes(b'x' * 100),"
            " os.kill(os.getpid(), signal.SIGKILL)))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (left,) = set(path.parent.iterdir()) - before
    assert left.name.startswith(f".{path.name}.tmp-") and not path.exists()
    return left


def started_build(root: Path, corpus: Path) -> tuple[subprocess.Popen, Path]:
    """A real `index build` into `root`, once it has made its build folder and is reading the corpus."""
    before = set((root / layout.BUILDS_DIR).iterdir())
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "index", "build", "--corpus", str(corpus), "--out",
                             str(root), "--no-dense", "-q"], cwd=REPO, stderr=subprocess.DEVNULL)  # fmt: skip
    while True:
        started = [b for b in (root / layout.BUILDS_DIR).iterdir() if b not in before and (b / layout.STORE).exists()]
        if started:
            return proc, started[0]
        assert proc.poll() is None, "the build ended before it could be stopped"
        time.sleep(0.01)


def test_the_next_build_removes_what_killed_builds_left(tmp_path: Path, running_pid: int) -> None:
    write_docs(tmp_path / "docs.jsonl")
    big = tmp_path / "big.jsonl"  # read for long enough to stop its builds while they read it
    big.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i} " + "lorem ipsum dolor " * 40}) + "\n"
                           for i in range(20_000)))  # fmt: skip
    root = tmp_path / "idx"
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    previous = build_index([tmp_path / "docs.jsonl"], root, settings).build_dir
    builds = root / layout.BUILDS_DIR

    running, running_build = started_build(root, big)
    running.send_signal(signal.SIGSTOP)  # a build still running: its folder is kept
    try:
        killed_proc, killed = started_build(root, big)
        killed_proc.send_signal(signal.SIGKILL)
        killed_proc.wait()
        older = builds / "20260101T000000-abcdef"  # killed before builds held `.building`: cannot tell, kept
        older.mkdir()
        killed_write = killed_while_writing(root / "settings.json")
        killed_switch = root / f".current.tmp-{ended_pid()}-0a1b2c3d"
        running_switch = root / f".current.tmp-{running_pid}-0a1b2c3d"
        # named as before the pid was in the name: removed once older than a switch can take
        old_killed_switch, old_running_switch = root / ".current.12345678", root / ".current.9abcdef0"
        for link in (killed_switch, running_switch, old_killed_switch, old_running_switch):
            os.symlink(os.path.relpath(previous, root), link)
        an_hour_ago = time.time() - 3600
        os.utime(old_killed_switch, (an_hour_ago, an_hour_ago), follow_symlinks=False)
        assert not (killed / layout.MANIFEST).exists() and not (running_build / layout.MANIFEST).exists()

        new = build_index([tmp_path / "docs.jsonl"], root, settings).build_dir

        assert not killed.exists() and not killed_write.exists()
        assert not killed_switch.is_symlink() and not old_killed_switch.is_symlink()
        assert running_switch.is_symlink() and old_running_switch.is_symlink()
        assert sorted(builds.iterdir()) == sorted([previous, new, older, running_build])
        assert (running_build / layout.STORE).is_file()
        assert os.path.realpath(root / layout.CURRENT) == str(new) and sorted(os.listdir(new)) == sorted(os.listdir(previous))
    finally:
        running.kill()
        running.wait()


def test_a_build_whose_current_has_no_manifest_is_kept(tmp_path: Path) -> None:
    """Never the build `current` names, even one that looks killed."""
    write_docs(tmp_path / "docs.jsonl")
    root = tmp_path / "idx"
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    named = build_index([tmp_path / "docs.jsonl"], root, settings).build_dir
    (named / layout.MANIFEST).unlink()
    (named / layout.BUILDING).write_text(str(ended_pid()))
    build_index([tmp_path / "docs.jsonl"], root, settings)
    assert (named / layout.STORE).is_file()


def test_the_next_encode_removes_a_killed_shard_write(tmp_path: Path, tiny_model: Path) -> None:
    write_docs(tmp_path / "docs.jsonl")
    root = tmp_path / "idx"
    settings = BuildSettings(quiet=True, dense=DenseSettings(model=str(tiny_model), device="cpu", encoder="st"))
    cache = encode_corpus([tmp_path / "docs.jsonl"], root, settings).cache_dir
    killed = killed_while_writing(cache / "shard-00001-abcdef.npz")
    ours = cache / f".shard-00002-012345.npz.tmp-{os.getpid()}-abcdef"  # this process writing a shard
    ours.write_bytes(b"x")

    again = encode_corpus([tmp_path / "docs.jsonl"], root, settings)
    assert not killed.exists() and ours.exists()
    assert again.encoded == 0  # the finished shards are all read

    killed = killed_while_writing(cache / "shard-00001-abcdef.npz")
    build_index([tmp_path / "docs.jsonl"], root, settings)  # a build opens the same cache
    assert not killed.exists() and ours.exists()


def test_the_next_onnx_use_removes_a_killed_export(tmp_path: Path, tiny_model: Path, running_pid: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from backends.faiss.encoder import load_encoder

    monkeypatch.setenv("DRSEARCH_CACHE", str(tmp_path / "cache"))
    settings = DenseSettings(model=str(tiny_model), device="cpu", encoder="onnx-int8")
    folder = load_encoder(settings).path.parent
    (folder / "model-int8.onnx").unlink()  # killed while quantising: its temporary file, no int8 model
    dead = ended_pid()
    killed = [folder / f".model-int8.onnx.tmp-{dead}", folder / f".model.onnx.tmp-{dead}"]
    other = folder / f".model-int8.onnx.tmp-{running_pid}"  # another process quantising now
    for path in [*killed, other]:
        path.write_bytes(b"x" * 100)

    assert load_encoder(settings).path == folder / "model-int8.onnx"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["model.onnx", "model-int8.onnx", "runtime.json", other.name])


def test_a_build_killed_as_it_writes_its_manifest_is_removed_by_the_next(tmp_path: Path) -> None:
    """Killed in the last step, writing its manifest: the folder still holds its `.building` lock file (with the
    pid of a process now gone), so the next build can tell it from a running one and remove it."""
    write_docs(tmp_path / "docs.jsonl")
    root = tmp_path / "idx"
    code = ("import os, signal, sys\nfrom pathlib import Path\nfrom indexer import layout\n"
            "from indexer.build import build_index\nfrom indexer.settings import BuildSettings, DenseSettings\n"
            "write = layout.atomic_write_bytes\n"
            "def killed(path, data, **kw):\n"
            "    if path.name == layout.MANIFEST:\n        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    return write(path, data, **kw)\n"
            "layout.atomic_write_bytes = killed\n"
            "build_index([Path(sys.argv[1])], Path(sys.argv[2]), BuildSettings(quiet=True, dense=DenseSettings(enabled=False)))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "docs.jsonl"), str(root)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (killed,) = (root / layout.BUILDS_DIR).iterdir()
    assert not (killed / layout.MANIFEST).exists()
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    build = build_index([tmp_path / "docs.jsonl"], root, settings)
    assert list((root / layout.BUILDS_DIR).iterdir()) == [build.build_dir]
