"""`drsearch index verify` with the real CLI over a real BM25 build: the digests recorded at build time
show a file overwritten with random bytes of its own size (which the build still opens and searches),
a lost file and a stray one; it changes nothing and runs on a read-only copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import drsearch
from tests.service.test_cli import assert_one_line_error
from tests.text_fixtures import DOCS


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """An index ROOT over the twelve one-topic documents, BM25 only."""
    base = tmp_path_factory.mktemp("verify")
    corpus = base / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    drsearch("index", "build", "--corpus", corpus, "--out", base / "idx", "--no-dense", "-q", check=True)
    return base / "idx"


@pytest.fixture
def build(tmp_path, tiny_root):
    """A copy of the tiny build's folder, free to damage."""
    copy = tmp_path / "build"
    shutil.copytree((tiny_root / "current").resolve(), copy)
    return copy


def verify(*args) -> subprocess.CompletedProcess:
    return drsearch("index", "verify", *map(str, args), "-q", timeout=120)


def overwrite_with_random_bytes(path) -> None:
    size = path.stat().st_size
    path.write_bytes(os.urandom(size))
    assert path.stat().st_size == size


def test_a_fresh_build_records_every_file_and_verifies_clean(tiny_root):
    build = (tiny_root / "current").resolve()
    manifest = json.loads((build / "manifest.json").read_text())
    on_disk = {p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"store.sqlite", "columns/ids.bin"} <= on_disk and any(p.startswith("lucene/segments_") for p in on_disk)
    assert manifest["files"]["store.sqlite"]["size"] == (build / "store.sqlite").stat().st_size
    assert "checksums_s" in manifest["timings"]
    proc = verify(tiny_root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"all match: {len(on_disk)} files") and proc.stderr == ""
    info = drsearch("index", "info", tiny_root, check=True).stdout
    assert f"digests     {len(on_disk)} files recorded" in info


@pytest.mark.parametrize("target", ["columns/ids.bin", "lucene/*.fdt", "store.sqlite"])
def test_same_size_random_bytes_are_a_content_change(build, target):
    (damaged,) = build.glob(target)
    overwrite_with_random_bytes(damaged)
    proc = verify(build)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{damaged}: content changed: sha256 ")
    assert lines[1].startswith("1 problem(s) in ")
    report = json.loads(drsearch("index", "verify", build, "--json").stdout)
    assert report["ok"] is False
    assert [(p["path"], p["kind"]) for p in report["problems"]] == [(damaged.relative_to(build).as_posix(), "digest")]


def test_a_deleted_a_truncated_and_an_extra_file_are_each_named(build):
    (segments,) = build.glob("lucene/segments_*")
    segments.unlink()
    with open(build / "columns" / "ids.bin", "r+b") as fh:
        fh.truncate(fh.seek(0, os.SEEK_END) - 1)
    (build / "columns" / "notes.txt").write_text("left by a copy tool")
    proc = verify(build)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[:3] == [
        f"{build / 'columns' / 'ids.bin'}: size changed: {(build / 'columns' / 'ids.bin').stat().st_size} bytes, "
        f"recorded {(build / 'columns' / 'ids.bin').stat().st_size + 1}",
        f"{build / 'columns' / 'notes.txt'}: extra file: not recorded when the build was made",
        f"{segments}: missing",
    ]
    kinds = [p["kind"] for p in json.loads(drsearch("index", "verify", build, "--json").stdout)["problems"]]
    assert kinds == ["size", "extra", "missing"]


def test_a_build_from_before_digests_gets_one_line_and_still_searches(build):
    manifest = json.loads((build / "manifest.json").read_text())
    del manifest["files"], manifest["timings"]["checksums_s"]
    (build / "manifest.json").write_text(json.dumps(manifest, indent=2))
    proc = verify(build)
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"drsearch: {build}: no file digests recorded")
    assert "digests     not recorded" in drsearch("index", "info", build, check=True).stdout
    hits = json.loads(drsearch("search", "magma lava", "--index", build, "-k", "1", "--json", check=True).stdout)["hits"]
    assert hits[0]["doc_id"] == "volcano"


def test_a_recorded_path_outside_the_build_is_reported_not_read(build):
    manifest = json.loads((build / "manifest.json").read_text())
    record = manifest["files"]["store.sqlite"]
    shutil.copy(build / "store.sqlite", build.parent / "store.sqlite")  # would match if it were read
    manifest["files"] = {"../store.sqlite": record, str(build / "store.sqlite"): record, **manifest["files"]}
    (build / "manifest.json").write_text(json.dumps(manifest))
    proc = verify(build)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[:2] == [
        f"{build / '..' / 'store.sqlite'}: recorded path outside the build folder: not read",
        f"{build / 'store.sqlite'}: recorded path outside the build folder: not read",
    ]


def test_build_option_names_a_build_of_the_root(tiny_root):
    name = (tiny_root / "current").resolve().name
    assert verify(tiny_root, "--build", name).returncode == 0
    assert_one_line_error(verify(tiny_root, "--build", "20000101T000000-000000"), "no build named", name)
    assert_one_line_error(verify(tiny_root, "--build", "../builds"), "no build named")
    assert_one_line_error(verify((tiny_root / "current").resolve(), "--build", name), "--build needs an index ROOT")
    assert_one_line_error(verify(tiny_root.parent / "docs.jsonl"), "not a directory")


def _mtimes(folder) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in [folder, *folder.rglob("*")]}


def test_verify_changes_nothing(build):
    overwrite_with_random_bytes(build / "columns" / "ids.bin")
    before = _mtimes(build)
    assert verify(build).returncode == 1
    assert _mtimes(build) == before


def test_verify_runs_on_a_read_only_copy(build, small_disk):
    overwrite_with_random_bytes(build / "columns" / "ids.bin")
    disk = small_disk("4m")
    shutil.copytree(build, disk / "build")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    proc = verify(disk / "build")
    assert proc.returncode == 1 and proc.stdout.startswith(f"{disk / 'build' / 'columns' / 'ids.bin'}: content changed")


def test_the_dense_leg_files_are_recorded_and_checked(tmp_path, tiny_model):
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS[:10]))
    settings = BuildSettings(quiet=True, dense=DenseSettings(model=str(tiny_model), device="cpu", encoder="st"))
    build = build_index([corpus], tmp_path / "idx", settings).build_dir
    dense_files = sorted(p for p in (build / "dense").iterdir() if p.is_file())
    assert dense_files and verify(build).returncode == 0
    overwrite_with_random_bytes(dense_files[0])
    proc = verify(build)
    assert proc.returncode == 1 and proc.stdout.startswith(f"{dense_files[0]}: content changed")


def test_a_folder_removed_while_the_build_is_walked_is_passed_over(tmp_path, monkeypatch):
    """`index verify` racing `index prune`: a folder of the build removed during the walk for extra files
    raised FileNotFoundError out of `Path.rglob`, a traceback where the command says the build was removed."""
    from pathlib import Path

    from indexer.checksums import build_files

    build = tmp_path / "build"
    for name in "abcd":
        (build / name).mkdir(parents=True)
        (build / name / "segment").write_text(name)
    is_file = Path.is_file

    def pruned_meanwhile(self: Path) -> bool:  # the first look at a path: every other folder goes
        for name in "abcd":
            if name != self.name and name != self.parent.name:
                shutil.rmtree(build / name, ignore_errors=True)
        return is_file(self)

    monkeypatch.setattr(Path, "is_file", pruned_meanwhile)
    files = build_files(build)
    assert len(files) == 1 and files[0].endswith("/segment")
