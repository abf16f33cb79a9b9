"""Lucene BM25 leg writer: store passages -> Anserini JsonCollection shards -> IndexCollection (a Java subprocess).

A subprocess keeps indexing memory out of the serving process and lets a kill at any
moment leave nothing half-written in a live index (builds go to a fresh directory).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import IO, ClassVar

import numpy as np
from tqdm import tqdm

from backends.base import LEXICAL, BuildContext, Leg
from backends.lucene import class_archive
from backends.lucene.jvm import anserini_jar, java_binary, java_env, java_path
from backends.lucene.topk import DOC_POSITIONS
from backends.lucene.section import ANALYZER, FILTER_FIELDS, LuceneSection
from indexer import layout
from indexer.columns import COLUMNS_DIR, Columns, date_token
from indexer.damage import without_package
from indexer.analysis import for_lucene
from indexer.errors import DrsearchError
from indexer.lifeline import child_preexec
from indexer.settings import BuildSettings


class LuceneInputWriter:
    """Writes passages as Anserini JsonCollection shards, round-robin over `shards` files
    (Anserini parallelises indexing by input file)."""

    def __init__(self, directory: Path, shards: int):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._files: list[IO[bytes]] = [
            gzip.open(directory / f"part-{i:05d}.json.gz", "wb", compresslevel=1) for i in range(max(1, shards))
        ]
        self._n = 0

    def add(self, passage_id: str, title: str, text: str, fields: dict[str, str] | None = None) -> None:
        """`fields`: extra indexed fields (Anserini analyses them like `contents`), used as filters."""
        contents = for_lucene(f"{title}\n{text}" if title else text)
        line = json.dumps({"id": passage_id, "contents": contents, **(fields or {})}, ensure_ascii=False) + "\n"
        self._files[self._n % len(self._files)].write(line.encode("utf-8"))
        self._n += 1

    def close(self) -> None:
        for f in self._files:
            f.close()


log = logging.getLogger(__name__)

_INDEXED = re.compile(r"([\d,]+) documents? (?:indexed|added)", re.I)
_TOTAL = re.compile(r"Total ([\d,]+) documents indexed", re.I)


def build_lucene_index(
    input_dir: Path, index_dir: Path, *, threads: int, total: int, quiet: bool, fields: tuple[str, ...] = ()
) -> int:
    """Index `input_dir`'s `total` documents into `index_dir`, all of them or DrsearchError; returns that number.
    `fields`: the extra JSON fields to index besides `contents` (Anserini ignores unnamed ones)."""
    cmd = [
        str(java_binary()), *class_archive.jvm_options(), "-Xmx2g", "-cp", class_archive.classpath(), "io.anserini.index.IndexCollection",
        "-collection", "JsonCollection", "-input", java_path(input_dir), "-index", java_path(index_dir),
        "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
        "-storePositions", "-storeDocvectors", *(["-fields", *fields] if fields else []),
        # One segment: a build is never written again, and each search then walks one set of postings
        # per term, not one per indexing thread's segment (SciFact at k=100: 10-15 % less per query).
        "-optimize",
    ]  # fmt: skip
    log: list[str] = []
    indexed = None
    with tqdm(total=total, desc="index bm25", unit="psg", disable=quiet, dynamic_ncols=True) as bar:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                env=java_env(), preexec_fn=child_preexec())  # killed with the build  # fmt: skip
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.append(line.rstrip())
                if m := _TOTAL.search(line):
                    indexed = int(m.group(1).replace(",", ""))
                    bar.update(indexed - bar.n)
                elif m := _INDEXED.search(line):
                    bar.update(max(0, int(m.group(1).replace(",", "")) - bar.n))
            rc = proc.wait()
        finally:  # not Popen's `with`: on an error it would wait for the indexer, which dies with the build instead
            proc.stdout.close()
    # Anserini can exit 0 after its final merge or commit failed (a full disk): no commit point then.
    if rc != 0 or indexed is None or not any(index_dir.glob("segments_*")):
        raise DrsearchError(indexing_failure(rc, log), where=str(index_dir))
    # It also exits 0 after a document failed (e.g. an immense term), dropping the rest of that input file.
    if indexed != total:
        raise DrsearchError(indexing_failure(rc, log, f"{indexed} of {total} documents indexed"), where=str(index_dir))
    return indexed


_FRAME = re.compile(r"^\s+at\s|^\s*\.\.\. \d+ more\s*$|^\s*Caused by:\s*$")
# An exception line: alone, after "Caused by:" or "Exception in thread ...", or as an ERROR log line's message.
_EXCEPTION = re.compile(r"^(?:Caused by:\s*|Exception in thread \"[^\"]*\"\s+|.*?\sERROR\s.*?\s-\s+)?"
                        r"((?:[\w$]+\.)+[\w$]*(?:Exception|Error)\b.*)$")


def indexing_failure(rc: int, log: list[str], outcome: str | None = None) -> str:
    """One line for a failed IndexCollection run: its exit status (or `outcome`) and the last exception
    line of its log (the innermost cause, e.g. `IOException: No space left on device`), never a stack
    frame; without one, the last line of the log that is not a frame."""
    lines = [line.strip() for line in log if line.strip() and not _FRAME.match(line)]
    exceptions = [m.group(1) for line in lines if (m := _EXCEPTION.match(line))]
    reason = without_package(exceptions[-1]) if exceptions else (lines or ["no output"])[-1]  # as in `LegError`s
    return f"Lucene indexing failed ({outcome or f'exit {rc}'}): {reason[:300]}"


class LuceneWriter:
    """Writes the BM25 leg: the store's passages (title + text) into `lucene/` with BM25(k1, b)."""

    leg: ClassVar[Leg] = LEXICAL

    def __init__(self, settings: BuildSettings):
        self.k1, self.b = settings.bm25_k1, settings.bm25_b
        java_binary(), anserini_jar()  # fail before reading the corpus when Java or Anserini is missing

    def check(self, ctx: BuildContext) -> None:
        java_path(ctx.build_dir)  # before any leg is written, not after the dense leg's encoding

    def write(self, ctx: BuildContext) -> LuceneSection:
        staging = ctx.build_dir / "lucene-input"
        # At least two input files: Anserini parallelises indexing by file.
        shards = LuceneInputWriter(staging, shards=max(2, ctx.threads))
        columns_dir = ctx.build_dir / COLUMNS_DIR
        columns = Columns(columns_dir) if columns_dir.is_dir() else None
        try:
            for idx, passage_id, title, text in ctx.store.iter_passages():
                shards.add(passage_id, title, text, _filter_fields(columns, idx) if columns else None)
        finally:
            shards.close()
        fields = FILTER_FIELDS if columns else ()
        indexed = build_lucene_index(
            staging, ctx.build_dir / layout.LUCENE_DIR, threads=ctx.threads, total=ctx.passages, quiet=ctx.quiet,
            fields=fields,
        )  # fmt: skip
        shutil.rmtree(staging)
        if columns is not None:
            write_doc_positions(ctx.build_dir / layout.LUCENE_DIR, columns)
        return LuceneSection(k1=self.k1, b=self.b, analyzer=ANALYZER, documents=indexed, filter_fields=fields)


def write_doc_positions(index_dir: Path, columns: Columns, *, chunk: int = 1 << 20) -> bool:
    """`lucene/doc_positions.npy`: the column position of each Lucene doc id, so that the BM25 leg can
    hand the hybrid fusion positions instead of ids to look up per query (`LuceneTopK.search_positions`).

    Anserini indexes with several threads, so doc ids follow no fixed order: a Java pass
    (`drsearch.DocIds`, in the project's helper jar) writes every document's id in doc id order, and
    each is looked up in the columns' hash table. Not written (False, with a warning) if that pass fails
    or a document's id is not in the columns: searches then look ids up per query, as for builds made
    before the map."""
    listing = index_dir / "doc-ids.bin"
    cmd = [str(java_binary()), *class_archive.jvm_options(), "-Xmx512m", "-cp", class_archive.classpath(),
           "drsearch.DocIds", str(index_dir), "id", str(listing)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=java_env(),
                          preexec_fn=child_preexec())
    if proc.returncode != 0 or not listing.is_file():
        tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:] if line)
        log.warning("%s: no doc-position map (listing the Lucene doc ids failed, exit %s: %s); BM25 hits "
                    "are looked up by id", index_dir, proc.returncode, tail)  # fmt: skip
        listing.unlink(missing_ok=True)
        return False
    data = memoryview(listing.read_bytes())
    listing.unlink()
    parts: list[np.ndarray] = []
    ids: list[str | None] = []
    at = 0
    while at < len(data):
        (n,) = _LENGTH.unpack_from(data, at)
        at += 4
        ids.append(str(data[at : at + n], "utf-8") if n >= 0 else None)
        at += max(n, 0)
        if len(ids) == chunk or at >= len(data):
            parts.append(_positions_of(columns, ids))
            ids = []
    positions = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if (positions == _MISSING).any():
        log.warning("%s: no doc-position map (%d Lucene documents have ids the columns lack)", index_dir,
                    int((positions == _MISSING).sum()))  # fmt: skip
        return False
    np.save(index_dir / DOC_POSITIONS, positions.astype(np.int32 if len(columns) < 2**31 else np.int64))
    return True


_LENGTH = struct.Struct(">i")  # DocIds writes each id as a big-endian length and its UTF-8 bytes
_DELETED, _MISSING = -1, -2


def _positions_of(columns: Columns, ids: list[str | None]) -> np.ndarray:
    """Column position per listed id: -1 for a deleted document (never a hit), -2 for an id the columns lack."""
    out = np.full(len(ids), _DELETED, dtype=np.int64)
    live = [i for i, pid in enumerate(ids) if pid is not None]
    found = columns.positions([ids[i] for i in live])
    out[live] = np.where(found >= 0, found, _MISSING)
    return out


def _filter_fields(columns: Columns, idx: int) -> dict[str, str]:
    """The passage's host code and date as single tokens for Lucene filter clauses."""
    fields = {"host": f"h{int(columns.host[idx])}", "language": f"l{int(columns.language[idx])}"}
    if date := date_token(columns.published[int(columns.published_code[idx])]):
        fields["date"] = date
    return fields
