"""The self-describing index folder.

    ROOT/
      builds/<version>/          one complete build, never modified after its manifest exists
        store.sqlite             documents + passages (source of truth for hits)
        lucene/                  Anserini/Lucene BM25 index
        dense/                   FAISS index (+ id map) when built with the dense leg
        manifest.json            written LAST: a build without it is incomplete
      current -> builds/<version>   symlink, replaced atomically (rename) after a build finishes
      embeddings/                 reusable passage-embedding cache shared by builds

Killing a build at any moment leaves `current` pointing at the previous complete build. What the
killed build leaves (its folder, a temporary file or link) the next build removes (`remove_debris`).
A build folder is removed by renaming it `builds/.removing-<version>` first (`remove_build_dir`), so a
crash part-way never leaves a half-deleted folder under a build's name; `remove_debris` finishes it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from indexer.errors import IndexFormatError
from indexer.process_dirs import process_alive

FORMAT_VERSION = 2  # 2: one typed section per leg, each naming its backend
MANIFEST = "manifest.json"
STORE = "store.sqlite"
LUCENE_DIR = "lucene"
DENSE_DIR = "dense"
BUILDS_DIR = "builds"
CURRENT = "current"
EMBEDDING_CACHE_DIR = "embeddings"
BUILDING = ".building"  # in a build folder while its build runs: flock'ed by the build, its pid inside
REMOVING = ".removing-"  # a build folder being removed is first renamed `builds/.removing-<version>`
# The temporary name of a file or link written then renamed into place: `.NAME.tmp-PID[-random]`.
_TEMPORARY = re.compile(r"\..+\.tmp-(\d+)(?:-[0-9a-f]+)?")
_OLD_SWITCH_LINK = re.compile(rf"\.{CURRENT}\.[0-9a-f]{{8}}")  # `switch_current`'s name before it held the pid
_OLD_SWITCH_LINK_AGE_S = 60  # such a link lives for one rename: one older than this is a killed switch's


def new_build_dir(root: Path) -> Path:
    """A fresh, empty, uniquely named build directory under ROOT/builds."""
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
    path = root / BUILDS_DIR / version
    path.mkdir(parents=True, exist_ok=False)
    return path


@contextmanager
def building(build_dir: Path) -> Iterator[None]:
    """Mark `build_dir` as being written by this process until the block ends: its `BUILDING` file,
    flock'ed (the kernel releases the lock when the process dies, however it dies) and holding the
    pid. `remove_debris` removes a build folder only once that lock is free and it has no manifest;
    `write_manifest` removes the file."""
    with open(build_dir / BUILDING, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: the file stays empty, the folder kept if the build is killed
            yield
            return
        fh.write(str(os.getpid()))  # written under the lock: an empty file may be a build that has not locked it yet
        fh.flush()
        yield


def remove_debris(root: Path) -> None:
    """Remove what killed runs left in the index `root`: the folders of killed builds (no manifest,
    their `BUILDING` lock free) and the temporary files and links of killed writes and `current`
    switches. A running build's folder and files, the build `current` names and folders of builds
    from before `BUILDING` existed are kept. Whatever cannot be removed stays: never an error."""
    remove_stale_temporaries(root)
    for link in _list(root):
        if _OLD_SWITCH_LINK.fullmatch(link.name) and link.is_symlink():
            with suppress(OSError):
                if time.time() - link.lstat().st_mtime > _OLD_SWITCH_LINK_AGE_S:
                    link.unlink()
    current = os.path.realpath(root / CURRENT)
    for build in _list(root / BUILDS_DIR):
        if build.name.startswith(REMOVING) and not build.is_symlink():
            shutil.rmtree(build, ignore_errors=True)
        elif os.path.realpath(build) != current and not (build / MANIFEST).exists():
            remove_killed_build(build)


@contextmanager
def _building_lock(build: Path) -> Iterator[tuple[bool, IO[str] | None]]:
    """(held, fh): whether a live build holds `build`'s `BUILDING` lock, and the lock file when the lock
    was free, taken here until the block ends (None: no file, the lock held, a file system without locks)."""
    try:
        fh = open(build / BUILDING, encoding="utf-8")
    except OSError:
        yield False, None
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its build is running
            yield True, None
            return
        except OSError:  # a file system without locks: nothing to tell
            yield False, None
            return
        yield False, fh


@contextmanager
def _killed_build(build: Path) -> Iterator[bool]:
    """True, while holding its free `BUILDING` lock, when `build` is the folder of a killed build: no
    manifest, and a lock file with a pid in it (empty: its build is about to lock it; none: a build from
    before `BUILDING`, which cannot be told from a running one: kept) that no process holds."""
    with _building_lock(build) as (_, fh):
        yield fh is not None and bool(fh.read().strip()) and not (build / MANIFEST).exists()


def is_killed_build(build: Path) -> bool:
    """Whether `remove_killed_build` would remove `build` now."""
    with _killed_build(build) as killed:
        return killed


def is_running_build(build: Path) -> bool:
    """Whether a live build is writing `build`: it holds the `BUILDING` lock, or its file is still empty
    (its build is about to lock it)."""
    if (build / MANIFEST).exists() or not (build / BUILDING).exists():
        return False
    return not is_killed_build(build)


def remove_killed_build(build: Path) -> bool:
    """Remove `build` if it is a killed build's folder (see `_killed_build`); whether it was removed."""
    with suppress(OSError), _killed_build(build) as killed:
        if killed:
            remove_build_dir(build)
            return True
    return False


def remove_build_dir(build: Path) -> None:
    """Remove a build folder so that a crash part-way never leaves a half-deleted folder under its own name:
    it is first renamed `.removing-<version>` (what is left of it under that name the next `remove_debris`
    removes), then deleted. OSError when either step fails."""
    doomed = build.with_name(REMOVING + build.name)
    os.rename(build, doomed)
    _fsync_dir(build.parent)
    delete_tree(doomed)


def delete_tree(folder: Path) -> None:
    """rmtree that leaves to another process (a `remove_debris` or prune beside this one) what it removes
    first, the folder or any file or folder in it; OSError when the folder cannot be removed."""

    def removed_meanwhile(exc: BaseException) -> None:
        if not isinstance(exc, FileNotFoundError):
            raise exc

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=lambda function, path, exc: removed_meanwhile(exc))
    else:
        shutil.rmtree(folder, onerror=lambda function, path, exc_info: removed_meanwhile(exc_info[1]))


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files and links (`.NAME.tmp-PID[-random]`) in `folder` whose process is
    gone: a run killed between writing one and renaming it into place leaves it behind. Those of a
    running process (this one included) are kept, as is anything that cannot be removed."""
    for path in _list(folder):
        found = _TEMPORARY.fullmatch(path.name)
        if found and not process_alive(int(found.group(1))):
            with suppress(OSError):
                path.unlink()


def _list(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` in one rename, so readers see the old or the new file, never a part.

    `durable` also fsyncs the file before and the directory after the rename (survives a power cut).
    """

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write_with(path, write, durable=durable)


def atomic_write_with(path: Path, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """As `atomic_write_bytes`, with `write(tmp)` writing the new file itself (e.g. FAISS's
    `write_index`, which streams a multi-GB index instead of serialising a copy in memory first)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        _fsync_dir(path.parent)


def write_manifest(build_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically; its presence marks the build complete. A build's `BUILDING` file
    stays until `current` names the build (`indexer.build`; `is_publishing` meanwhile): a build killed
    after the manifest is complete, one killed before it keeps the lock file that lets the next build
    remove its folder."""
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic_write_bytes(build_dir / MANIFEST, data, durable=True)


def is_publishing(build: Path) -> bool:
    """Whether a live build holds the `BUILDING` lock of complete `build`: it is about to switch `current` to
    it (prune leaves it; once the lock is free, `current` already names it or the build was killed)."""
    if not (build / MANIFEST).exists():
        return False
    with _building_lock(build) as (held, _):
        return held


def switch_current(root: Path, build_dir: Path) -> None:
    """Point ROOT/current at build_dir with one atomic rename of a symlink."""
    target = os.path.relpath(build_dir, root)
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.symlink(target, tmp)
    os.replace(tmp, root / CURRENT)
    _fsync_dir(root)


@contextmanager
def reading(where: Path) -> Iterator[None]:
    """An OSError while finding a build (a folder the user may not enter: an index made by another user
    under umask 077) as one line naming the path, not a traceback."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise IndexFormatError(f"cannot read the index: {reason}", where=str(exc.filename or where)) from None


def require_current_link(root: Path) -> None:
    """Refuse to change a ROOT whose `current` is not a symbolic link (`current_link_problem`)."""
    if (problem := current_link_problem(root)) is not None:
        raise problem


def current_link_problem(root: Path) -> IndexFormatError | None:
    """Why ROOT's `current` is not a symbolic link, else None: a copy that did not keep links (`cp -rL`,
    an object-store sync) made it a plain copy of a build, which serves as it is but can be neither
    switched nor told apart from the builds a prune would remove."""
    link = root / CURRENT
    with reading(link):
        plain = link.exists() and not link.is_symlink()
    if not plain:
        return None
    kind = "a directory" if link.is_dir() else "a file"
    return IndexFormatError(
        f"is {kind}, not a link to a build (copied without its symbolic link?): copy an index with "
        f"`cp -a`, `rsync -a` or `tar`, or replace it with `rm -r {shlex.quote(str(link))}` and "
        f"`drsearch index use {shlex.quote(str(root))} NAME`",
        where=str(link),
    )


def current_link_as_root(path: str | Path) -> Path:
    """ROOT for the path of ROOT's `current` link, else `path` as given.

    Naming `current` means following it: a reader that kept the link itself as its build would
    still see the same path after `current` moved (so never reload), while the files under it change.
    """
    p = Path(path)
    if p.name == CURRENT and p.is_symlink() and (p.parent / BUILDS_DIR).is_dir():
        return p.parent
    return p


def resolve_build(path: str | Path) -> Path:
    """ROOT (follows `current`; so does ROOT/current) or a build directory -> the complete build directory.

    Raises IndexFormatError with a one-line reason when `path` is not a usable index.
    """
    with reading(Path(path)):
        p = current_link_as_root(path)
        if not p.exists():
            raise IndexFormatError("no such index directory", where=str(p))
        if not p.is_dir():
            raise IndexFormatError("not a directory", where=str(p))
        link = p / CURRENT
        if (p / MANIFEST).is_file():
            build = p
        elif link.is_file() and not link.is_symlink():  # a directory copied in place of the link still serves
            raise current_link_problem(p)  # type: ignore[misc]
        elif link.exists():
            build = link.resolve()
        elif link.is_symlink():
            raise IndexFormatError(f"'current' points to {os.readlink(link)}, which is gone: make a build current with "
                                   f"`drsearch index use {shlex.quote(str(p))} NAME`", where=str(p))  # fmt: skip
        elif (p / BUILDS_DIR).is_dir():
            raise IndexFormatError("index root has no complete build yet (no 'current' pointer)", where=str(p))
        else:
            raise IndexFormatError("not a drsearch index (no manifest.json and no 'current' pointer)", where=str(p))
    read_manifest(build)  # validates
    return build


def read_manifest(build_dir: Path) -> dict[str, Any]:
    mpath = build_dir / MANIFEST
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFormatError("incomplete build (no manifest.json)", where=str(build_dir)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFormatError(f"unreadable manifest: {exc}", where=str(mpath)) from None
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise IndexFormatError("manifest has no format_version", where=str(mpath))
    fv = manifest["format_version"]
    if not isinstance(fv, int) or isinstance(fv, bool):
        raise IndexFormatError(f"manifest format_version must be an integer, got {json.dumps(fv)}", where=str(mpath))
    if fv > FORMAT_VERSION:
        raise IndexFormatError(
            f"index format {fv} is newer than this drsearch supports ({FORMAT_VERSION}); upgrade drsearch",
            where=str(mpath),
        )
    if fv < FORMAT_VERSION:
        raise IndexFormatError(
            f"index format {fv} is older than this drsearch reads ({FORMAT_VERSION}); "
            + rebuild_hint(build_dir, manifest),
            where=str(mpath),
        )
    return manifest


def rebuild_hint(build_dir: Path, manifest: dict[str, Any]) -> str:
    """'rebuild it: drsearch index build --corpus ... --out ROOT', from the corpus paths the build's manifest
    recorded (its other options, such as --no-dense or --chunk-words, are in the same manifest.json)."""
    corpus = manifest.get("corpus")
    listed = corpus.get("paths") if isinstance(corpus, dict) else None
    paths = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    shown = " ".join(f"--corpus {shlex.quote(p)}" for p in paths[:4]) or "--corpus CORPUS"
    more = f" (and {len(paths) - 4} more --corpus)" if len(paths) > 4 else ""
    root = build_dir.parent.parent if build_dir.parent.name == BUILDS_DIR else build_dir
    return f"rebuild it: drsearch index build {shown} --out {shlex.quote(str(root))}{more}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
