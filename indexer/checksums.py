"""Size and content digest of every file of a build: recorded in its manifest (`files`) when it is
built, checked by `drsearch index verify` after the folder was copied, restored or left on a disk.

Damage that keeps a file's size and format (random bytes over a memory-mapped column) is not seen
when a build is opened; only its digest shows it. SHA-256, read in 1 MiB blocks: with the SHA
instructions of current x86 and ARM CPUs it hashes faster than BLAKE2b (about 1.4 against 0.8 GB/s).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from indexer import layout

BLOCK_BYTES = 1 << 20
Progress = Callable[[int], object]  # called with the bytes just read, e.g. a tqdm bar's `update`
_NOT_RECORDED = {layout.MANIFEST, layout.BUILDING}  # the manifest holds the digests; BUILDING goes when it is written


class FileRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    size: int
    sha256: str


@dataclass(frozen=True)
class Problem:
    """One file that differs from its record: `kind` is missing, size, digest, unreadable, extra or
    outside (a recorded path that leaves the build folder);
    `detail` says it in words."""

    path: str
    kind: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


def build_files(build_dir: Path) -> list[str]:
    """The paths, relative to `build_dir` and sorted, of the files a build's digests cover. A folder
    removed during the walk (an `index prune` meanwhile) is passed over, as `os.walk` does, where
    `Path.rglob` raised FileNotFoundError out of `index verify`: its files are then missing."""
    found = []
    for folder, _dirs, names in os.walk(build_dir):
        for name in names:
            p = Path(folder) / name
            rel = p.relative_to(build_dir).as_posix()
            if rel not in _NOT_RECORDED and not p.is_symlink() and p.is_file():
                found.append(rel)
    return sorted(found)


def file_sha256(path: Path, progress: Progress = lambda n: None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK_BYTES):
            digest.update(block)
            progress(len(block))
    return digest.hexdigest()


def record(build_dir: Path, progress: Progress = lambda n: None) -> dict[str, FileRecord]:
    """Size and digest of each of `build_files(build_dir)`, keyed by its relative path."""
    return {rel: FileRecord(size=(build_dir / rel).stat().st_size, sha256=file_sha256(build_dir / rel, progress))
            for rel in build_files(build_dir)}  # fmt: skip


def verify(build_dir: Path, recorded: dict[str, FileRecord], progress: Progress = lambda n: None) -> list[Problem]:
    """What differs between `build_dir` and its records, in path order; empty when every file matches.
    Reads the files only: nothing is written or renamed."""
    problems = []
    for rel, want in sorted(recorded.items()):
        path = build_dir / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:  # an edited manifest: never read outside the build
            problems.append(Problem(rel, "outside", "recorded path outside the build folder: not read"))
            continue
        try:
            size = path.stat().st_size
            if not path.is_file():
                problems.append(Problem(rel, "missing", "missing: not a regular file"))
            elif size != want.size:
                problems.append(Problem(rel, "size", f"size changed: {size} bytes, recorded {want.size}"))
                progress(want.size)
            elif (got := file_sha256(path, progress)) != want.sha256:
                detail = f"content changed: sha256 {got[:16]}…, recorded {want.sha256[:16]}…"
                problems.append(Problem(rel, "digest", detail))
        except FileNotFoundError:
            problems.append(Problem(rel, "missing", "missing"))
        except OSError as exc:
            problems.append(Problem(rel, "unreadable", f"unreadable: {exc.strerror or type(exc).__name__}"))
    extra = [rel for rel in build_files(build_dir) if rel not in recorded]
    problems += [Problem(rel, "extra", "extra file: not recorded when the build was made") for rel in extra]
    return sorted(problems, key=lambda p: p.path)
