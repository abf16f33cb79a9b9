"""Per-process temporary folders (`indexer.process_dirs`): what a process that ran no exit handler left
is removed when the next one of its kind makes its own; nothing of a running process is touched.
Real processes: a finished child, a zombie, a process killed outright."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from indexer.process_dirs import new_process_dir, process_alive, remove_orphans
from tests.conftest import REPO, finished_pid


def test_the_folders_of_gone_processes_are_removed_and_no_others(tmp_path, monkeypatch):
    gone, running = finished_pid(), os.getpid()
    left = tmp_path / f"drsearch-x-{gone}-abc"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "model.onnx").write_bytes(b"x" * 1000)
    kept = [tmp_path / f"drsearch-x-{running}-def", tmp_path / "drsearch-x-notapid-ghi", tmp_path / f"drsearch-y-{gone}-jkl"]
    for path in kept:
        path.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"drsearch-x-{gone}-link").symlink_to(elsewhere, target_is_directory=True)  # never followed
    (tmp_path / f"drsearch-x-{gone}-file").write_text("")  # not a folder

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    made = new_process_dir("drsearch-x-")
    assert made.is_dir() and made.parent == tmp_path and made.name.startswith(f"drsearch-x-{running}-")
    assert not left.exists()
    assert all(path.is_dir() for path in kept) and elsewhere.is_dir()
    assert (tmp_path / f"drsearch-x-{gone}-link").is_symlink() and (tmp_path / f"drsearch-x-{gone}-file").exists()
    assert remove_orphans(tmp_path, "drsearch-x-") == []  # nothing more to remove, its own folder kept
    assert made.is_dir()


def test_a_zombie_is_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not process_alive(child.pid) and process_alive(os.getpid())
    child.wait()
    assert not process_alive(child.pid)


MAKE_AND_DIE = """
import os, signal, sys
from backends.faiss.onnx import _process_folder
print(_process_folder(), flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_onnx_export_folder_of_a_killed_process_goes_at_the_next_start(tmp_path):
    """Where the export cache cannot be written, each process exports into a folder of its own: a
    server stopped by SIGTERM (or killed) cannot remove it at exit, the next process does."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}

    def run(mode: str) -> tuple[int, Path]:
        proc = subprocess.run([sys.executable, "-c", MAKE_AND_DIE, mode], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        return proc.returncode, Path(proc.stdout.strip())

    code, killed = run("kill")
    assert code == -9 and killed.parent == tmp_path and killed.is_dir()
    code, ended = run("exit")
    assert code == 0 and not killed.exists()  # removed as the next folder was made
    assert not ended.exists()  # removed at its own exit
