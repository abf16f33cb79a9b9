"""The JVM's class-data-sharing archive (backends/lucene/class_archive.py): made in the background by the
first JVM start without one, mapped by the next, and a file the JVM cannot map set aside without a word
on stdout. Real JVMs in subprocesses, the archive in a folder of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from backends.lucene import class_archive
from tests.conftest import REPO, drsearch, finished_pid

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STARTS_JVM = "from backends.lucene import jvm; print(jvm.sharing(jvm.start_jvm()))"


def jvm_start(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", STARTS_JVM], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **env})  # fmt: skip


@pytest.fixture
def folder(tmp_path, monkeypatch):
    where = tmp_path / "archives"
    monkeypatch.setenv(class_archive.ENV, str(where))
    return where


def test_the_first_start_makes_the_archive_in_the_background_and_the_next_maps_it(folder, tiny_bm25_root):
    path = class_archive.archive_path()
    assert path is not None and path.parent == folder and not path.exists()
    first = jvm_start({})
    assert (first.returncode, first.stdout) == (0, "False\n"), first.stderr  # the runtime has no archive of its own
    deadline = time.monotonic() + 180
    while not path.is_file() or path.with_suffix(".making").exists():
        assert time.monotonic() < deadline, "no archive made"
        time.sleep(0.2)
    assert jvm_start({}).stdout == "True\n"
    proc = drsearch("search", "volcano", "--index", tiny_bm25_root, "-k", "1", "--json", check=True)
    assert json.loads(proc.stdout)["hits"][0]["doc_id"] == "volcano" and proc.stderr == ""
    assert sorted(folder.iterdir()) == [path, path.with_suffix(".json")]  # its work files gone, its jars named


def test_an_archive_the_jvm_cannot_map_is_set_aside_without_a_word(folder, tiny_bm25_root):
    path = class_archive.archive_path()
    folder.mkdir()
    path.write_bytes(b"not an archive" * 100)
    proc = drsearch("search", "volcano", "--index", tiny_bm25_root, "-k", "1", "--json", check=True)
    assert json.loads(proc.stdout)["hits"][0]["doc_id"] == "volcano" and proc.stderr == ""
    assert not path.exists() and path.with_suffix(".unusable").is_file()
    assert jvm_start({}).stdout == "False\n"
    assert sorted(p.name for p in folder.iterdir()) == [path.with_suffix(".unusable").name]  # not made again


def test_archives_off_and_a_folder_that_cannot_be_written(tmp_path):
    assert jvm_start({class_archive.ENV: "0"}).stdout == "False\n"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = jvm_start({class_archive.ENV: str(blocker / "archives")})  # under a regular file: never writable
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "False\n", "")


def test_a_maker_that_fails_marks_the_archive_unusable_and_archives_of_jars_gone_are_removed(folder, tmp_path, monkeypatch):
    path = class_archive.archive_path()
    folder.mkdir()
    gone = folder / "jvm-classes-0123456789abcdef"  # an installation removed since its archive was made
    gone.with_suffix(".json").write_text(json.dumps({"classpath": [str(tmp_path / "uninstalled" / "a.jar")]}))
    gone.with_suffix(".jsa").write_bytes(b"x")
    kept = folder / "jvm-classes-fedcba9876543210"  # another archive of jars that are still there
    kept.with_suffix(".json").write_text(json.dumps({"classpath": class_archive.classpath().split(os.pathsep)}))
    kept.with_suffix(".unusable").write_bytes(b"x")
    dead = finished_pid()  # a maker killed mid-way left its files
    half_written = folder / f".{path.name}.tmp-{dead}"
    half_written.write_bytes(b"x")
    temp = tmp_path / "temp"
    (temp / f"drsearch-classes-{dead}-abc" / "lists").mkdir(parents=True)
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the recording run fails
    assert class_archive.make(path) is False
    assert not path.exists() and path.with_suffix(".unusable").is_file()
    assert not half_written.exists() and list(temp.iterdir()) == []  # the killed maker's files and its own work gone
    assert class_archive.jvm_options() == [] and not path.with_suffix(".making").exists()  # no maker started
    monkeypatch.undo()
    monkeypatch.setenv(class_archive.ENV, str(folder))
    assert class_archive.main([]) == 0 and path.is_file()  # asked for explicitly, it tries again
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [path.name, path.with_suffix(".json").name, kept.with_suffix(".json").name, kept.with_suffix(".unusable").name])
