"""`drsearch index list | use | prune` over a ROOT of real BM25 builds (copies of one tiny build under
names in time order), a build killed mid-way, one being built (its `.building` lock held here) and one
from before that lock: the real CLI for the commands' output and errors, direct calls for the rest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from indexer import builds, layout
from tests.conftest import drsearch
from tests.indexer.test_checksums import overwrite_with_random_bytes
from tests.indexer.test_leftovers import ended_pid
from tests.service.test_cli import assert_one_line_error
from tests.text_fixtures import DOCS

OLDEST, OLDER, NEWER, NEWEST = (f"2026010{d}T000000-00000{d}" for d in range(1, 5))
KILLED = "20260105T120000-dead00"  # newer than every complete one: order is by name, not state
RUNNING = "20260106T000000-live00"
PRE_LOCK = "20251231T000000-old000"  # a killed build from a drsearch before `.building`: cannot be told from a live one


def add_build(root: Path, source: Path, name: str) -> Path:
    """A complete build `name` in ROOT: a copy of `source` with its manifest's version renamed (digests still match)."""
    target = root / layout.BUILDS_DIR / name
    shutil.copytree(source, target)
    manifest = layout.read_manifest(target)
    manifest["version"] = name
    layout.write_manifest(target, manifest)
    return target


@pytest.fixture
def root(tiny_bm25_root: Path, tmp_path: Path) -> Path:
    """ROOT with four complete builds, `current` the newest; none of the original build's own."""
    root = tmp_path / "index"
    (root / layout.BUILDS_DIR).mkdir(parents=True)
    source = layout.resolve_build(tiny_bm25_root)
    for name in (OLDEST, OLDER, NEWER, NEWEST):
        add_build(root, source, name)
    layout.switch_current(root, root / layout.BUILDS_DIR / NEWEST)
    return root


@pytest.fixture
def debris(root: Path) -> Iterator[Path]:
    """A killed build (lock file with an ended pid, no manifest), a running one (its lock held here, as
    `layout.building` holds it) and a lock-less incomplete folder, added to `root`."""
    folders = root / layout.BUILDS_DIR
    for name in (KILLED, RUNNING, PRE_LOCK):
        (folders / name / "lucene").mkdir(parents=True)
        (folders / name / layout.STORE).write_bytes(b"\0" * 10_000)
    (folders / KILLED / layout.BUILDING).write_text(str(ended_pid()))
    with layout.building(folders / RUNNING):
        yield root


def current_name(root: Path) -> str:
    return Path(os.path.realpath(root / layout.CURRENT)).name


def cli(*args: object) -> subprocess.CompletedProcess:
    return drsearch("index", *map(str, args), timeout=120)


def test_list_shows_every_build_and_its_state_newest_first(debris: Path) -> None:
    found = builds.list_builds(debris)
    assert [(b.name, b.state, b.current) for b in found] == [
        (RUNNING, "building", False), (KILLED, "incomplete", False), (NEWEST, "complete", True),
        (NEWER, "complete", False), (OLDER, "complete", False), (OLDEST, "complete", False),
        (PRE_LOCK, "incomplete", False),
    ]  # fmt: skip
    newest = found[2]
    assert (newest.documents, newest.passages, newest.legs) == (12, 12, ("bm25",))
    assert newest.built_at == layout.read_manifest(debris / layout.BUILDS_DIR / NEWEST)["built_at"]
    assert newest.size_bytes >= sum(f.stat().st_size for f in newest.path.rglob("*") if f.is_file())
    assert found[1].size_bytes >= 10_000 and found[1].built_at is None and found[1].legs == ()

    proc = cli("list", debris, "--json")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"builds": [b.as_json() for b in found], "current_problem": None}
    lines = cli("list", debris).stdout.splitlines()
    assert len(lines) == 1 + len(found)
    assert lines[0].split() == ["NAME", "STATE", "BUILT", "AT", "DOCUMENTS", "PASSAGES", "LEGS", "SIZE"]
    assert [line.split()[:3] for line in lines[2:4]] == [[KILLED, "incomplete", "-"], ["*", NEWEST, "complete"]]
    assert lines[0].index("STATE") == lines[2].index("incomplete") == lines[3].index("complete")  # aligned


def test_use_rolls_back_and_forward(root: Path) -> None:
    proc = cli("use", root, OLDER, "-q")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"current was {NEWEST}, now {OLDER}\n", "")
    assert current_name(root) == OLDER and os.readlink(root / layout.CURRENT) == f"{layout.BUILDS_DIR}/{OLDER}"
    proc = cli("use", root / layout.CURRENT, root / layout.BUILDS_DIR / NEWEST, "-q")  # ROOT/current and a path to the build
    assert (proc.returncode, proc.stdout) == (0, f"current was {OLDER}, now {NEWEST}\n"), proc.stderr
    assert cli("use", root, NEWEST, "-q").stdout == f"current already names {NEWEST}: unchanged\n"
    assert current_name(root) == NEWEST


def test_use_refuses_what_is_not_a_complete_build_of_the_root(debris: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(debris / layout.BUILDS_DIR / OLDEST, other / layout.BUILDS_DIR / OLDEST)
    cases = [
        ((debris, "20000101T000000-000000"), ("no build named '20000101T000000-000000'", f"complete builds: {NEWEST}, {NEWER}")),
        ((debris, KILLED), (f"build '{KILLED}' is not complete (incomplete: no manifest.json)",)),
        ((debris, RUNNING), (f"build '{RUNNING}' is not complete (building: no manifest.json)",)),
        ((debris, ".."), ("no build named '..'",)),
        ((debris, "/"), ("'/' is not a build of this ROOT",)),
        ((debris, other / layout.BUILDS_DIR / OLDEST), ("is not a build of this ROOT",)),
        ((debris / layout.BUILDS_DIR / OLDEST, OLDEST), ("a build directory, not an index ROOT",)),
        ((tmp_path / "nowhere", OLDEST), ("no such index ROOT",)),
        ((tmp_path, OLDEST), ("not an index ROOT (no builds/ folder)",)),
    ]
    for args, fragments in cases:
        assert_one_line_error(cli("use", *args), *fragments)
    assert current_name(debris) == NEWEST


def test_use_refuses_a_build_whose_files_changed(root: Path) -> None:
    overwrite_with_random_bytes(root / layout.BUILDS_DIR / OLDER / "columns" / "ids.bin")
    assert_one_line_error(cli("use", root, OLDER, "-q"), f"build '{OLDER}' does not match the digests",
                          "first columns/ids.bin: content changed", f"--build {OLDER}")  # fmt: skip
    assert current_name(root) == NEWEST


def test_use_of_a_build_without_digests_warns_and_switches(root: Path) -> None:
    build = root / layout.BUILDS_DIR / OLDER
    manifest = layout.read_manifest(build)
    del manifest["files"]
    layout.write_manifest(build, manifest)
    proc = cli("use", root, OLDER, "-q")
    assert (proc.returncode, proc.stdout) == (0, f"current was {NEWEST}, now {OLDER}\n")
    assert proc.stderr == (f"drsearch: warning: {OLDER}: no file digests recorded (built before they were kept); "
                           "switched without checking its files\n")
    assert current_name(root) == OLDER


def test_prune_keeps_current_the_newest_others_and_a_running_build(debris: Path) -> None:
    layout.switch_current(debris, debris / layout.BUILDS_DIR / OLDER)  # rolled back: the newer builds are not current
    before = {b.name: b.size_bytes for b in builds.list_builds(debris)}
    dry = cli("prune", debris, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(p.name for p in (debris / layout.BUILDS_DIR).iterdir()) == sorted(before)  # nothing removed
    gone = [NEWER, OLDEST, KILLED]  # keep 1: NEWEST, the newest complete build besides current
    freed = sum(before[name] for name in gone)
    assert [line.split()[:2] for line in dry.stdout.splitlines()[:3]] == [["would", "remove"]] * 3
    assert [line.split()[2] for line in dry.stdout.splitlines()[:3]] == gone
    assert dry.stdout.splitlines()[3].startswith(f"kept {PRE_LOCK}  (incomplete, without a .building lock")
    assert dry.stdout.splitlines()[4].startswith(f"would free {freed:,} bytes")

    proc = cli("prune", debris)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == dry.stdout.replace("would remove", "removed").replace("would free", "freed")
    assert sorted(p.name for p in (debris / layout.BUILDS_DIR).iterdir()) == sorted([NEWEST, OLDER, RUNNING, PRE_LOCK])
    assert current_name(debris) == OLDER and (debris / layout.BUILDS_DIR / RUNNING / layout.BUILDING).exists()


def test_prune_keep_zero_and_a_bad_keep(root: Path) -> None:
    assert [b.name for b in builds.prune(root, keep=0)] == [NEWER, OLDER, OLDEST]
    assert [b.name for b in builds.list_builds(root)] == [NEWEST]
    assert_one_line_error(cli("prune", root, "--keep", "-1"), "--keep")
    assert_one_line_error(cli("prune", root / layout.BUILDS_DIR / NEWEST), "a build directory, not an index ROOT")


def test_an_interrupted_removal_never_looks_complete(root: Path) -> None:
    """A removal renames the build `.removing-<version>` before deleting it: what a crash leaves there is
    never a build `use` accepts, and the next prune (or build) removes it."""
    folders = root / layout.BUILDS_DIR
    (folders / OLDER).rename(folders / f"{layout.REMOVING}{OLDER}")  # a removal killed right after its rename
    half_deleted = (folders / OLDEST).rename(folders / f"{layout.REMOVING}{OLDEST}")  # killed during the rmtree
    shutil.rmtree(half_deleted / "lucene")
    (half_deleted / layout.MANIFEST).unlink()
    assert [(b.name, b.state) for b in builds.list_builds(root)][2:] == [
        (f"{layout.REMOVING}{OLDER}", "removing"), (f"{layout.REMOVING}{OLDEST}", "removing")]  # fmt: skip
    assert_one_line_error(cli("use", root, f"{layout.REMOVING}{OLDER}"), "no build named")
    assert [b.name for b in builds.prune(root, keep=1)] == [f"{layout.REMOVING}{OLDER}", f"{layout.REMOVING}{OLDEST}"]
    (folders / f"{layout.REMOVING}{NEWER}").mkdir()
    layout.remove_debris(root)
    assert sorted(p.name for p in folders.iterdir()) == [NEWER, NEWEST]


def test_prune_removes_nothing_outside_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.copytree(root / layout.BUILDS_DIR / OLDEST, outside / OLDEST)
    (root / layout.BUILDS_DIR / "20250101T000000-link00").symlink_to(outside / OLDEST)  # a link in builds/: skipped
    assert [b.name for b in builds.prune(root, keep=0)] == [NEWER, OLDER, OLDEST]
    assert (outside / OLDEST / layout.MANIFEST).is_file()

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / layout.BUILDS_DIR).symlink_to(outside)
    for command in ("prune", "list"):
        assert_one_line_error(cli(command, linked), "builds/ is a link out of the index ROOT")
    assert (outside / OLDEST / layout.MANIFEST).is_file()


def test_a_build_being_built_is_never_pruned(root: Path) -> None:
    """Its `.building` lock held, or its lock file still empty: kept even with `--keep 0`."""
    running = root / layout.BUILDS_DIR / RUNNING
    running.mkdir()
    with ExitStack() as stack:
        stack.enter_context(layout.building(running))
        assert [b.name for b in builds.prune_plan(root, keep=0)] == [NEWER, OLDER, OLDEST]
    (running / layout.BUILDING).write_text("")  # a build that has made its lock file but not yet locked it
    assert RUNNING not in [b.name for b in builds.prune_plan(root, keep=0)]


def test_a_prune_while_a_build_is_switching_current_to_it_keeps_that_build(root: Path, monkeypatch) -> None:
    """`prune --keep 0` run between a build's manifest and its switch of `current` (the build complete, not
    yet current) removed it, and `current` then named a removed folder. The build now holds its lock
    until `current` names it, and prune leaves a complete build whose lock is held."""
    from indexer import build as build_module
    from tests.service.conftest import build_tiny_index, tiny_docs

    switch, pruned, planned = layout.switch_current, [], []

    def prune_then_switch(where: Path, build_dir: Path) -> None:
        planned.extend(b.name for b in builds.prune_plan(where, keep=0))  # what --dry-run shows
        pruned.extend(b.name for b in builds.prune(where, keep=0))
        switch(where, build_dir)

    monkeypatch.setattr(build_module.layout, "switch_current", prune_then_switch)
    build_tiny_index(root, tiny_docs()[:2], dense=False)
    new = layout.resolve_build(root)
    assert sorted(pruned) == sorted(planned) == [OLDEST, OLDER, NEWER] and new.name not in pruned
    assert layout.read_manifest(new)["version"] == new.name and not (new / layout.BUILDING).exists()


def test_a_prune_beside_a_build_removing_the_same_folder_removes_it(root: Path, monkeypatch) -> None:
    """A build's `remove_debris` deletes an interrupted removal's `.removing-` folder without the `use`/`prune`
    lock, so it can delete the folder a prune is deleting at the same time: a file it removed first made the
    prune's rmtree fail (`cannot remove build: No such file or directory`, exit 2, the rest not pruned)."""
    unlink, taken = os.unlink, []

    def removed_first_by_the_other(path, *, dir_fd=None):  # rmtree's unlinks name an entry of an open folder
        if dir_fd is not None and not taken:
            taken.append(path)
            unlink(path, dir_fd=dir_fd)  # the other process got there first
        return unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", removed_first_by_the_other)
    assert sorted(b.name for b in builds.prune(root, keep=0)) == [OLDEST, OLDER, NEWER] and taken
    assert sorted(p.name for p in (root / layout.BUILDS_DIR).iterdir()) == [NEWEST]


def test_a_served_build_answers_every_query_after_prune_removed_it(root: Path) -> None:
    """A server still on a build that is no longer current (no watcher, a reload not yet run) keeps answering
    after `prune` removed its folder: every file is opened when the build is opened (the SQLite store, the
    Lucene readers, the memory-mapped columns, FAISS on validation), none afterwards."""
    from ranker.options import SearchOptions
    from service.validate import open_validated

    served = open_validated(root / layout.BUILDS_DIR / OLDER, load_model=False)
    try:
        assert OLDER in [b.name for b in builds.prune(root, keep=0)] and not (root / layout.BUILDS_DIR / OLDER).exists()
        long_query = " ".join(f"word{i}" for i in range(300)) + " magma lava"  # bounded by document frequencies
        for query in ("magma lava", long_query):
            (result,) = served.batch_search([query], SearchOptions(k=1, mode="bm25"))
            assert result[0].hit.doc_id == "volcano" and result[0].passage.doc_id == "volcano"
    finally:
        served.close()


def test_a_verify_whose_build_a_prune_removes_meanwhile_says_so_in_one_line(root: Path, monkeypatch) -> None:
    """A prune removing the build `index verify` was reading (no longer current) made every file not yet read
    `missing`: exit 1, damage reported for a build that was not damaged but gone. Now one line, exit 2."""
    from indexer import checksums
    from indexer.errors import IndexFormatError
    from service.cli_verify import verify_command

    file_sha256, pruned = checksums.file_sha256, []

    def prune_then_hash(path: Path, progress=lambda n: None) -> str:
        if not pruned:
            pruned.extend(b.name for b in builds.prune(root, keep=0))
        return file_sha256(path, progress)

    monkeypatch.setattr(checksums, "file_sha256", prune_then_hash)
    with pytest.raises(IndexFormatError, match="build removed while it was verified") as refused:
        verify_command(root, build_name=OLDER, as_json=False, quiet=True)
    assert OLDER in pruned and refused.value.where == str(root / layout.BUILDS_DIR / OLDER)


def test_a_reload_whose_build_a_prune_removes_while_it_opens_follows_current_again(root: Path) -> None:
    """A server reloading to a build that `use` moved away from and `prune` removed while it was being opened
    refused it (`incomplete build (no manifest.json)`: a 409 to an admin reload, a failed reload counted and
    logged by a watcher) for a ROOT with nothing wrong. It now reads `current` again and goes on to the build
    it names, here the one it serves."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from service.index_state import IndexState
    from service.validate import open_validated

    folders, opened = root / layout.BUILDS_DIR, []

    def open_while_pruned(build: Path):
        opened.append(build.name)
        if build.name == NEWER:
            layout.switch_current(root, folders / OLDER)
            assert NEWER in [b.name for b in builds.prune(root, keep=1)]
        return open_validated(build, load_model=False)

    async def reload(state: IndexState) -> tuple[bool, str, str]:
        layout.switch_current(root, folders / NEWER)
        return await state.reload()

    with ThreadPoolExecutor(2) as executor:
        state = IndexState(root, open_while_pruned, executor)
        try:
            assert state.load().version == NEWEST
            assert asyncio.run(reload(state)) == (True, NEWEST, OLDER) and opened == [NEWEST, NEWER, OLDER]
            assert state.current is not None and state.current.version == OLDER and state.refused is None
        finally:
            state.close()


@pytest.fixture
def immutable() -> Iterator[object]:
    """`chattr +i` on a folder for the test (its entries can be neither added, removed nor renamed, even by
    root): a read-only ROOT. Skipped where the file system or the user cannot set the flag."""
    marked: list[Path] = []

    def mark(folder: Path) -> None:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
            pytest.skip("chattr +i is not available here")
        marked.append(folder)

    yield mark
    for folder in marked:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_root_is_one_line_and_nothing_changes(root: Path, immutable) -> None:
    immutable(root / layout.BUILDS_DIR)
    assert_one_line_error(cli("prune", root), f"{root / layout.BUILDS_DIR / OLDER}: cannot remove build: Operation not permitted")
    assert [b.name for b in builds.list_builds(root)] == [NEWEST, NEWER, OLDER, OLDEST]
    immutable(root)
    assert_one_line_error(cli("use", root, OLDER, "-q"), f"{root}: cannot switch current: Operation not permitted")
    assert current_name(root) == NEWEST


def test_a_build_of_an_older_format_is_listed_as_unusable_and_refused(root: Path) -> None:
    build = root / layout.BUILDS_DIR / OLDEST
    manifest = json.loads((build / layout.MANIFEST).read_text())
    (build / layout.MANIFEST).write_text(json.dumps({**manifest, "format_version": 1}))
    (listed,) = [b for b in builds.list_builds(root) if b.name == OLDEST]
    assert (listed.state, listed.documents) == ("complete", 12)
    assert listed.problem and listed.problem.startswith("index format 1 is older than this drsearch reads")
    line = cli("list", root).stdout.splitlines()[-1]
    assert line.split()[:2] == [OLDEST, "complete"] and line.endswith(f"unusable: {listed.problem}")
    assert_one_line_error(cli("use", root, OLDEST, "-q"), "index format 1 is older", "rebuild it")
    assert current_name(root) == NEWEST


def test_list_of_a_root_copied_without_its_link_says_why_no_build_is_current(root: Path) -> None:
    link = root / layout.CURRENT
    link.unlink()
    shutil.copytree(root / layout.BUILDS_DIR / NEWEST, link)
    text = cli("list", root)
    assert text.returncode == 0  # listing only reads: the hint is a warning
    (warning,) = text.stderr.splitlines()
    assert warning.startswith(f"drsearch: warning: {link}: is a directory, not a link to a build") and "cp -a" in warning
    assert [line.split()[0] for line in text.stdout.splitlines()[1:]] == [NEWEST, NEWER, OLDER, OLDEST]  # no `*`
    as_json = cli("list", root, "--json")
    assert (as_json.returncode, as_json.stderr) == (0, text.stderr)
    listed = json.loads(as_json.stdout)
    assert listed["current_problem"] == warning.removeprefix("drsearch: warning: ")
    assert [(b["name"], b["current"]) for b in listed["builds"]] == [(n, False) for n in (NEWEST, NEWER, OLDER, OLDEST)]


def test_a_root_copied_without_its_link_serves_but_refuses_changes(root: Path, tmp_path: Path) -> None:
    """`cp -rL` or an object-store sync turns `current` into a plain folder: a copy of a build, served as
    it was, but no longer a pointer to one (a build's switch and `use` failed only after their work,
    and `prune --keep 0` removed every build)."""
    link = root / layout.CURRENT
    link.unlink()
    shutil.copytree(root / layout.BUILDS_DIR / NEWEST, link)
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    searched = drsearch("search", "magma lava", "--index", root, "-k", "1", "--json", timeout=120)
    assert searched.returncode == 0 and json.loads(searched.stdout)["hits"][0]["doc_id"] == "volcano"
    for refused in (("build", "--corpus", corpus, "--out", root, "--no-dense", "--quiet"),
                    ("use", root, OLDER, "-q"), ("prune", root, "--keep", "0")):  # fmt: skip
        assert_one_line_error(cli(*refused), f"{link}: is a directory, not a link to a build", "cp -a")
    assert sorted(os.listdir(root)) == [layout.BUILDS_DIR, layout.CURRENT] and not link.is_symlink()
    assert [b.name for b in builds.list_builds(root)] == [NEWEST, NEWER, OLDER, OLDEST]


def test_a_refused_build_is_opened_again_once_what_refused_it_may_have_been_mended(root: Path, monkeypatch) -> None:
    """Refused once (a model changed in place), a build was refused for good: the watcher and a plain admin
    reload raised the old error after the model was restored, until a forced reload."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from indexer.errors import ConfigError
    from service import index_state
    from service.index_state import IndexState
    from service.validate import open_validated

    folders, opened, broken = root / layout.BUILDS_DIR, [], {"yes": True}

    def opener(build: Path):
        opened.append(build.name)
        if build.name == NEWER and broken["yes"]:
            raise ConfigError("the model's files changed since this index was built")
        return open_validated(build, load_model=False)

    with ThreadPoolExecutor(2) as executor:
        state = IndexState(root, opener, executor)
        try:
            layout.switch_current(root, folders / NEWEST)
            assert state.load().version == NEWEST
            layout.switch_current(root, folders / NEWER)
            for _ in range(2):  # the watcher's ticks: opened once, then refused from memory
                with pytest.raises(ConfigError, match="model's files changed"):
                    asyncio.run(state.reload())
            assert opened == [NEWEST, NEWER]
            broken["yes"] = False  # the model restored
            with pytest.raises(ConfigError):
                asyncio.run(state.reload())  # within REFUSED_RETRY_S: not reopened yet
            assert asyncio.run(state.reload(retry_refused=True)) == (True, NEWEST, NEWER)  # an admin's reload tries now
            layout.switch_current(root, folders / NEWEST)
            broken["yes"] = True
            assert asyncio.run(state.reload()) == (True, NEWER, NEWEST)
            layout.switch_current(root, folders / NEWER)
            with pytest.raises(ConfigError):
                asyncio.run(state.reload())
            broken["yes"] = False
            monkeypatch.setattr(index_state, "REFUSED_RETRY_S", 0.0)  # the watcher, once the time has passed
            assert asyncio.run(state.reload()) == (True, NEWEST, NEWER) and state.refused is None
        finally:
            state.close()
            layout.switch_current(root, folders / NEWEST)
