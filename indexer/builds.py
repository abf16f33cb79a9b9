"""The builds of an index ROOT as an operator handles them: listed, made `current` (a rollback, or
forward again) and pruned. What makes a build complete, running or killed is `indexer.layout`'s."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer import layout
from indexer.checksums import Progress
from indexer.errors import DrsearchError, IndexFormatError

COMPLETE, BUILDING, INCOMPLETE, REMOVING = "complete", "building", "incomplete", "removing"


@dataclass(frozen=True)
class Build:
    """One folder under ROOT/builds. `state`: complete (has its manifest), building (a live build writes
    it), incomplete (neither: what a killed build left) or removing (a removal that was interrupted)."""

    name: str
    path: Path
    state: str
    current: bool
    size_bytes: int
    built_at: str | None = None
    documents: int | None = None
    passages: int | None = None
    legs: tuple[str, ...] = ()
    problem: str | None = None  # a complete build whose manifest this drsearch cannot use, and why

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "current": self.current, "state": self.state,
                "built_at": self.built_at, "documents": self.documents, "passages": self.passages,
                "legs": list(self.legs), "size_bytes": self.size_bytes, "problem": self.problem}  # fmt: skip


def index_root(path: str | Path) -> Path:
    """`path` as an index ROOT (ROOT/current counts as ROOT), or IndexFormatError saying why it is not one."""
    with layout.reading(Path(path)):
        return _checked_root(layout.current_link_as_root(path))


def _checked_root(root: Path) -> Path:
    if not root.exists():
        raise IndexFormatError("no such index ROOT", where=str(root))
    if not root.is_dir():
        raise IndexFormatError("not a directory", where=str(root))
    builds = root / layout.BUILDS_DIR
    if not builds.is_dir():
        if (root / layout.MANIFEST).exists():
            raise IndexFormatError("a build directory, not an index ROOT: give the folder holding builds/ and current",
                                   where=str(root))  # fmt: skip
        raise IndexFormatError("not an index ROOT (no builds/ folder)", where=str(root))
    if builds.is_symlink() and not _inside(builds.resolve(), root.resolve()):
        raise IndexFormatError(f"builds/ is a link out of the index ROOT (to {builds.resolve()}): refused", where=str(root))
    os.listdir(builds)  # a folder the user may not read (another user's, umask 077): said, not taken for an empty one
    return root


def list_builds(root: Path) -> list[Build]:
    """Every build folder of ROOT (links and stray files skipped), newest first: by name, the UTC time
    its build started."""
    current = _current_path(root)
    folders = [p for p in _entries(root) if p.is_dir() and not p.is_symlink()]
    return [_describe(p, current) for p in sorted(folders, key=lambda p: p.name.removeprefix(layout.REMOVING), reverse=True)]


def current_problem(root: Path) -> str | None:
    """Why ROOT's `current` names no build, or None: a plain folder or file there (a copy that followed
    links, `cp -rL`) is a copy of a build, no pointer to one; said as `use` and `prune` refuse it."""
    problem = layout.current_link_problem(root)
    return None if problem is None else str(problem)


def use_build(
    root: Path, name: str, progress_for: Callable[[int], Progress] = lambda total: lambda n: None
) -> tuple[str | None, str, bool]:
    """Point `current` at the complete build `name` after its files matched the digests its manifest
    recorded (`progress_for(total bytes)` is asked for a progress callback when their reading starts).
    -> (the build `current` named before or None, the one it names now, whether digests were checked:
    False for a build made before they were recorded)."""
    from backends.manifest import Manifest
    from indexer import checksums

    layout.require_current_link(root)
    with _root_lock(root):
        build = _build_named(root, name)
        if not (build / layout.MANIFEST).is_file():
            state = BUILDING if layout.is_running_build(build) else INCOMPLETE
            raise IndexFormatError(f"build {build.name!r} is not complete ({state}: no manifest.json)", where=str(build))
        manifest = Manifest.read(build)
        if manifest.files is not None and (problems := checksums.verify(
                build, manifest.files, progress_for(sum(f.size for f in manifest.files.values())))):
            first = problems[0]
            raise IndexFormatError(
                f"build {build.name!r} does not match the digests its manifest recorded ({len(problems)} problem(s), "
                f"first {first.path}: {first.detail}); `drsearch index verify {root} --build {build.name}` lists them",
                where=str(build),
            )
        before = _current_path(root)
        if before != build.resolve():
            try:
                layout.switch_current(root, build)
            except OSError as exc:  # a read-only ROOT: `current` stays as it was
                raise DrsearchError(f"cannot switch current: {exc.strerror or exc}", where=str(root)) from None
        return (before.name if before else None), build.name, manifest.files is not None


def prune_plan(root: Path, keep: int) -> list[Build]:
    """What `prune` removes: the complete builds other than `current` after the `keep` newest of them,
    the folders of killed builds (as `layout.remove_debris` decides) and interrupted removals."""
    if keep < 0:
        raise DrsearchError(f"invalid --keep: must be 0 or more, got {keep}")
    layout.require_current_link(root)
    builds = list_builds(root)
    # A complete build whose build still runs is about to become current (`layout.is_publishing`).
    older = [b for b in builds if b.state == COMPLETE and not b.current and not layout.is_publishing(b.path)][keep:]
    debris = [b for b in builds if b.state == REMOVING or (b.state == INCOMPLETE and layout.is_killed_build(b.path))]
    return older + debris


def kept_incomplete(root: Path) -> list[Build]:
    """Incomplete folders `prune` leaves: made by a drsearch from before the `.building` lock, they cannot be
    told from a running build."""
    return [b for b in list_builds(root) if b.state == INCOMPLETE and not layout.is_killed_build(b.path)]


def prune(root: Path, keep: int) -> Iterator[Build]:
    """Remove what `prune_plan` names, yielding each build once it is gone. Each is renamed to a
    `.removing-` name first (`layout.remove_build_dir`), so a crash part-way leaves nothing that looks complete."""
    with _root_lock(root):
        for build in prune_plan(root, keep):
            if build.state == INCOMPLETE:
                if layout.remove_killed_build(build.path):  # checked again under its lock
                    yield build
                continue
            # A build switching `current` to itself is left; asked first, so that once its lock is free
            # the check of `current` sees the switch (by a build, or by hand meanwhile).
            if build.state == COMPLETE and (layout.is_publishing(build.path) or _current_path(root) == build.path.resolve()):
                continue
            try:
                if build.state == REMOVING:
                    layout.delete_tree(build.path)
                else:
                    layout.remove_build_dir(build.path)
            except OSError as exc:  # a read-only ROOT, a file held by another user: what was removed is said
                raise DrsearchError(f"cannot remove build: {exc.strerror or exc}", where=str(build.path)) from None
            yield build


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _describe(path: Path, current: Path | None) -> Build:
    is_current = current is not None and path.resolve() == current
    size = _disk_bytes(path)
    if path.name.startswith(layout.REMOVING):
        return Build(path.name, path, REMOVING, is_current, size)
    if not (path / layout.MANIFEST).is_file():
        state = BUILDING if layout.is_running_build(path) else INCOMPLETE
        return Build(path.name, path, state, is_current, size)
    try:
        manifest = layout.read_manifest(path)
        problem = None
    except IndexFormatError as exc:  # still listed as complete, with why it cannot be used
        problem = exc.message
        try:
            manifest = json.loads((path / layout.MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        manifest = manifest if isinstance(manifest, dict) else {}
    counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else {}
    return Build(
        path.name, path, COMPLETE, is_current, size,
        built_at=_text(manifest.get("built_at")),
        documents=_count(counts.get("documents")), passages=_count(counts.get("passages")),
        legs=tuple(leg for leg in ("bm25", "dense") if manifest.get(leg)), problem=problem,
    )  # fmt: skip


def _build_named(root: Path, name: str) -> Path:
    """ROOT/builds/NAME for a NAME or a path to it; IndexFormatError for any other."""
    builds = root / layout.BUILDS_DIR
    given = Path(name)
    if len(given.parts) > 1 or given.is_absolute():  # a path: it must be a folder right under ROOT/builds
        if not (given.parent.exists() and given.parent.resolve() == builds.resolve()):
            raise IndexFormatError(f"{name!r} is not a build of this ROOT (expected {builds}/NAME)", where=str(root))
        name = given.name
    return folder_named(root, name)


def folder_named(root: Path, name: str) -> Path:
    """The folder ROOT/builds/NAME for a bare NAME (not a link, not a hidden `.removing-` one);
    IndexFormatError naming the complete builds for any other."""
    build = root / layout.BUILDS_DIR / name
    if name in ("", ".", "..") or Path(name).name != name or name.startswith(".") or not build.is_dir() or build.is_symlink():
        complete = ", ".join(b.name for b in list_builds(root) if b.state == COMPLETE) or "none"
        raise IndexFormatError(f"no build named {name!r} (complete builds: {complete})", where=str(root / layout.BUILDS_DIR))
    return build


def _entries(root: Path) -> list[Path]:
    try:
        return list((root / layout.BUILDS_DIR).iterdir())
    except OSError:
        return []


def _current_path(root: Path) -> Path | None:
    link = root / layout.CURRENT
    return link.resolve() if link.exists() else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _disk_bytes(folder: Path) -> int:
    """Bytes the folder's files take on disk (allocated blocks, each file once; links not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(parent, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


@contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """One `index use` or `index prune` at a time per ROOT (flock on the builds/ folder), so a prune never
    removes a build that a `use` is making current."""
    try:
        fd = os.open(root / layout.BUILDS_DIR, os.O_RDONLY)
    except OSError as exc:
        raise DrsearchError(f"cannot open builds/: {exc.strerror or exc}", where=str(root)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
