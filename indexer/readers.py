"""Streaming corpus readers: BEIR layout and the generic documents JSONL (also the crawler's output).

Memory does not grow with corpus size except for the set of seen ids (for duplicate detection).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from indexer.errors import CorpusError
from indexer.schema import Document, published_problem, untypeset

BEIR_FILES = ("corpus.jsonl", "corpus.jsonl.gz")
BEIR_OTHER_FILES = ("queries.jsonl", "queries.jsonl.gz")  # the layout's own; a BEIR read skips them
DOCUMENT_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")  # NDJSON is JSON Lines by another name
_GENERIC_KNOWN = {"id", "_id", "title", "text", "url", "published", "source", "metadata", "domain", "language"}
_UTF8_BOM = b"\xef\xbb\xbf"  # RFC 8259: a parser may ignore one at the start of a file
_MAX_DEPTH = 100  # JSON nesting levels of a record; deeper cannot be stored and read back reliably
# A passage's id is its document's id plus "#" and its ordinal, and must fit Elasticsearch's 512-byte
# `_id` (Lucene itself drops a document whose id term passes 32,766 bytes, and the rest of its shard).
MAX_ID_BYTES = 500
MAX_LINE_BYTES = 64 << 20  # one record; a longer line is a bad line, never held in memory whole
_LINE_END = re.compile(rb"\r\n|\r|\n")
_TOO_DEEP = f"malformed JSON (nesting too deep: more than {_MAX_DEPTH} levels)"


@dataclass
class ReadReport:
    """What a read saw: counts of documents, skips and (with skip_bad) the bad lines."""

    documents: int = 0
    skipped_empty: int = 0
    skipped_bad: int = 0
    bad_lines: list[str] = field(default_factory=list)  # "file:line: reason", first 100
    # sha256 of each file's name and bytes (compressed, as stored) in reading order: the corpus the read
    # indexed, taken as it was read (read again after the build, a line appended meanwhile counted)
    sha256: Any = field(default_factory=hashlib.sha256, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "skipped_empty": self.skipped_empty,
            "skipped_bad": self.skipped_bad,
            "bad_lines": self.bad_lines[:100],
        }


def corpus_files(path: str | Path) -> tuple[str, list[Path]]:
    """(layout, files) for a corpus path.

    - a BEIR directory (holds corpus.jsonl[.gz]) -> ("beir", [that file]); CorpusError naming them if it
      holds other *.jsonl[.gz] files besides queries.jsonl[.gz] (they would not be read)
    - a directory of *.jsonl[.gz] / *.ndjson[.gz], else the ones in its docs/ (as the crawler writes) -> ("generic", sorted files)
    - a single such file -> ("beir" if its name starts with "corpus", else "generic")
    """
    p = Path(path)
    try:
        return _corpus_files(p)
    except OSError as exc:  # e.g. a directory we may not list or enter
        raise CorpusError(f"cannot read corpus path: {exc.strerror or exc}", where=str(exc.filename or p)) from None


def _corpus_files(p: Path) -> tuple[str, list[Path]]:
    if not p.exists():
        raise CorpusError("corpus path does not exist", where=str(p))
    if p.is_dir():
        for name in BEIR_FILES:
            if (p / name).is_file():
                _refuse_beir_extras(p, p / name)
                return "beir", [p / name]
        # A directory of shards, or a crawl's output folder, whose shards are in docs/.
        files = _shards_in(p) or (_shards_in(p / "docs") if (p / "docs").is_dir() else [])
        if not files:
            raise CorpusError(
                "no corpus.jsonl[.gz] (BEIR layout) and no *.jsonl[.gz] or *.ndjson[.gz] document files in directory or its docs/",
                where=str(p),
            )
        return "generic", files
    if not p.name.endswith(DOCUMENT_SUFFIXES):
        raise CorpusError("corpus file must be .jsonl, .jsonl.gz, .ndjson or .ndjson.gz", where=str(p))
    if not p.is_file():  # a duplicate id's first line is found by reading it again: a pipe would hang that read
        raise CorpusError("not a regular file (a named pipe or a device): write the documents to a file first", where=str(p))
    return ("beir" if p.name.startswith("corpus.") else "generic"), [p]


def corpus_paths(corpora: list[str | Path]) -> list[Path]:
    """`corpora` as paths, at least one; one path given alone (a str is a sequence of characters) refused."""
    if isinstance(corpora, (str, os.PathLike)):
        raise CorpusError(f"corpora must be a list of paths, not one path: [{str(corpora)!r}]")
    paths = [Path(c) for c in corpora]
    if not paths:
        raise CorpusError("no corpus given (--corpus PATH)")
    return paths


def check_corpora(paths: list[Path]) -> None:
    """Fail on a bad corpus path, or a file that two of them would read (`--corpus a.jsonl --corpus
    a.jsonl`, a folder and a file in it), before anything is loaded or created: read twice, each of its
    documents would be its own duplicate."""
    given: dict[str, Path] = {}
    for path in paths:
        for file in corpus_files(path)[1]:
            first = given.setdefault(os.path.realpath(file), path)
            if first is not path:
                also = "given twice" if Path(first) == Path(path) else f"in both --corpus {first} and --corpus {path}"
                raise CorpusError(f"corpus file {also}: each file is read once", where=str(file))


def unread_files(path: str | Path) -> list[Path]:
    """Files in a folder of shards given as a corpus that look like documents but are not read: a name
    with `.json` or `.ndjson` in it (`docs.json`, `part.JSONL`, `part.jsonl.zst`) that is not read, in
    the folder whose shards are read, and, when that is the folder itself, in its `docs/` too (whose
    shards its own leave out; beside a `docs/` that is read stand a crawl's own files, `report.json`).
    Empty for a file, a BEIR folder or a folder that cannot be listed (reading it says why)."""
    try:
        layout, files = _corpus_files(Path(path))
        if layout != "generic" or not Path(path).is_dir():
            return []
        read = set(files)
        folders = [files[0].parent] + ([Path(path) / "docs"] if files[0].parent == Path(path) and (Path(path) / "docs").is_dir() else [])
        return sorted(f for folder in folders for f in folder.iterdir()
                      if f not in read and not f.name.startswith(".") and (".json" in f.name.lower() or ".ndjson" in f.name.lower())
                      and f.is_file())  # fmt: skip
    except (OSError, CorpusError):
        return []


def _refuse_beir_extras(folder: Path, corpus: Path) -> None:
    """A BEIR directory is read as its corpus file alone: other document files beside it (a second
    corpus.jsonl[.gz], more *.jsonl[.gz] shards) would be silently left out, so they are refused."""
    extras = [f.name for f in _shards_in(folder) if f != corpus and f.name not in BEIR_OTHER_FILES]
    if extras:
        shown = ", ".join(extras[:5]) + (f" and {len(extras) - 5} more" if len(extras) > 5 else "")
        raise CorpusError(
            f"BEIR directory (has {corpus.name}) also holds other document files, which a BEIR read leaves out: "
            f"{shown}; pass the files to index as their own --corpus (e.g. --corpus {corpus} --corpus "
            f"{folder / extras[0]}) or move the other files out of the directory",
            where=str(folder),
        )


def _shards_in(folder: Path) -> list[Path]:
    shards = []
    for f in folder.iterdir():
        if f.name.endswith(DOCUMENT_SUFFIXES):
            if f.is_file():
                shards.append(f)
            elif f.is_symlink() and not f.exists():  # a shard missing, not a file that is no shard
                raise CorpusError("a broken symbolic link: the shard it names does not exist", where=str(f))
    return sorted(shards)


@contextlib.contextmanager
def _open_binary(path: Path, hasher: Any = None) -> Iterator[BinaryIO]:
    """The file's bytes, decompressed when it is .gz; `hasher` is fed its bytes as stored, as they are read."""
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise CorpusError(f"cannot read corpus file: {exc.strerror or exc}", where=str(path)) from None
    with raw:
        stream = raw if hasher is None else _Hashed(raw, hasher)
        yield gzip.GzipFile(fileobj=stream, mode="rb") if path.name.endswith(".gz") else stream


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class _Hashed(io.RawIOBase):
    """A file read through, every byte it gives also fed to `hasher` (closing it leaves the file to its owner)."""

    def __init__(self, raw: BinaryIO, hasher: Any):
        self._raw, self._hasher = raw, hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self._hasher.update(memoryview(buffer)[:n])
        return n


def _iter_lines(path: Path, block_bytes: int = 1 << 20, hasher: Any = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw bytes) of each line of a plain or gzip file, a UTF-8 BOM at its start dropped.

    Lines end at \\n, \\r\\n or \\r (as text mode's universal newlines did). Bytes are decoded per line
    by the caller, so that a line that is not UTF-8 is reported at its own line and can be skipped;
    only an unreadable file or corrupt/truncated gzip data stops the read. A line over MAX_LINE_BYTES
    comes as None, its bytes dropped as they are read: a small gzip file can hold a line of gigabytes.
    `hasher` is fed the file's bytes as stored, as they are read."""
    with _open_binary(path, hasher) as fh:
        lineno, pending, too_long, after_cr = 0, bytearray(), False, False
        size_at_open = _size(path)
        try:
            block = fh.read(max(block_bytes, len(_UTF8_BOM)))
            if block.startswith(_UTF8_BOM):
                block = block[len(_UTF8_BOM) :] or fh.read(block_bytes)
            while block:
                if after_cr and block.startswith(b"\n"):  # a \r\n split between two blocks
                    block = block[1:]
                after_cr = block.endswith(b"\r")
                *lines, rest = _LINE_END.split(block) if b"\r" in block else block.split(b"\n")
                for piece in lines:
                    lineno += 1
                    too_long = too_long or len(pending) + len(piece) > MAX_LINE_BYTES
                    yield lineno, None if too_long else bytes(pending + piece) if pending else piece
                    pending.clear()
                    too_long = False
                too_long = too_long or len(pending) + len(rest) > MAX_LINE_BYTES
                if too_long:
                    pending.clear()
                else:
                    pending += rest
                block = fh.read(block_bytes)
            if pending and _size(path) != size_at_open:  # no line end yet: a writer may be half-way through it
                raise CorpusError("the file changed while it was read (another process still writing it?): its last "
                                  "line is incomplete; build again once it is written", where=f"{path}:{lineno + 1}")  # fmt: skip
            if pending or too_long:
                yield lineno + 1, None if too_long else bytes(pending)
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise CorpusError(f"corrupt or unreadable data: {exc}", where=f"{path}:{lineno + 1}") from None


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a plain or gzip UTF-8 file (`_iter_lines`), for files read
    whole (queries, qrels); CorpusError at file:line for a line that is not UTF-8."""
    for lineno, raw in _iter_lines(path):
        try:
            line = _decode_line(raw)
        except ValueError as exc:
            raise CorpusError(str(exc), where=f"{path}:{lineno}") from None
        yield lineno, line


def _decode_line(line: bytes | None) -> str:
    if line is None:
        raise ValueError(f"line longer than {MAX_LINE_BYTES >> 20} MiB (one document's JSON must fit in that)")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line: {exc.reason})"
        ) from None


def _parse_json(text: str) -> Any:
    if (alone := text.strip()) in ("{", "["):  # the first line of a pretty-printed object or array
        raise ValueError(f"malformed JSON (a line holding only '{alone}': each document must be one JSON object "
                         "on one line, not pretty-printed)")  # fmt: skip
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None
    except ValueError:  # Python's int parsing limit (sys.get_int_max_str_digits), reached inside json
        raise ValueError(f"malformed JSON (a number of more than {sys.get_int_max_str_digits()} digits)") from None


def _path_part(key: str) -> str:
    """A metadata key as it appears in an error: JSON-escaped (ASCII, one line), without quotes."""
    return json.dumps(key)[1:-1]


def _check_field_value(name: str, value: Any) -> None:
    """Raise ValueError if `value` (a field of the record; for objects and arrays every string and key
    inside them, however nested) holds a string that is not encodable as UTF-8 (an unpaired surrogate
    from a JSON escape such as \\ud800), or nests deeper than _MAX_DEPTH. Iterative: no recursion limit.
    A value's path is kept as a link to its parent's and written out only for an error: written out for
    each value, a long key above many values made paths of the line's size times the values' number."""
    field = _path_part(name)
    # a path: (its parent's path, a key or an index), None for the field itself
    stack: list[tuple[Any, tuple | None, int]] = [(value, None, 2)]  # the record is level 1
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            _check_encodable(item, lambda: _written(field, path), field)
        elif isinstance(item, (dict, list)):
            if depth > _MAX_DEPTH:
                raise ValueError(_TOO_DEEP)
            if isinstance(item, dict):
                for key, sub in item.items():
                    _check_encodable(key, lambda: f"a key in {_written(field, path)}", field)
                    stack.append((sub, (path, key), depth + 1))
            else:
                stack.extend((sub, (path, i), depth + 1) for i, sub in enumerate(item))


def _written(field: str, path: tuple | None) -> str:
    """`path` inside `field` as an error names it: `metadata.a.b[3]`."""
    parts: list[str] = []
    while path is not None:
        path, part = path
        parts.append(f"[{part}]" if isinstance(part, int) else f".{_path_part(part)}")
    return field + "".join(reversed(parts))


def _check_encodable(text: str, where: str | Callable[[], str], field: str) -> None:
    """Raise ValueError naming `field` (escaped) if `text` has an unpaired surrogate; `where` is the
    escaped path of `text` inside the field, or the field itself (or a function that writes it)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = f"\\u{ord(text[exc.start]):04x}"
        where = where() if callable(where) else where
        of = "" if where == field else f" of {where}"
        raise ValueError(
            f"field '{field}' has an unpaired surrogate ({char} at character {exc.start}{of})"
        ) from None


def _str_field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and name in ("_id", "id"):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"field '{name}' must be a string, got {type(value).__name__}")
    return value


def _published_field(record: dict[str, Any]) -> str | None:
    """The `published` date, surrounding blanks stripped ("" and blanks: undated); a value that is not
    an ISO date (`published_problem`) is a bad line, as a value of the wrong type is."""
    value = _str_field(record, "published")
    value = value.strip() if value is not None else None
    if not value:
        return None
    if problem := published_problem(value):
        raise ValueError(f"field 'published' {problem}")
    return value


def _to_document(record: Any, layout: str) -> Document:
    if not isinstance(record, dict):
        raise ValueError("line is not a JSON object")
    for name, value in record.items():  # every field that reaches the Document (generic: extras too)
        if layout == "generic" or name in _GENERIC_KNOWN:
            _check_encodable(name, "a key", _path_part(name))
            _check_field_value(name, value)
    preferred, alternative = ("_id", "id") if layout == "beir" else ("id", "_id")
    id_field = alternative if preferred not in record and alternative in record else preferred
    doc_id = _str_field(record, id_field)
    if doc_id is None:
        raise ValueError(f"missing field '{id_field}'")
    doc_id = doc_id.strip()
    if not doc_id:
        raise ValueError(f"empty field '{id_field}'")
    if len(doc_id) * 4 > MAX_ID_BYTES and (size := len(doc_id.encode("utf-8"))) > MAX_ID_BYTES:
        raise ValueError(f"field '{id_field}' is {size} bytes long (at most {MAX_ID_BYTES} in UTF-8)")
    if "text" not in record:  # e.g. the text under `body` or `content`: never indexable, so a bad line, not an empty one
        shown = ", ".join(sorted(_path_part(k) for k in record)[:10])
        raise ValueError(f"missing field 'text' (this line has: {shown})")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("field 'metadata' must be an object")
    if layout == "generic":
        extras = {k: v for k, v in record.items() if k not in _GENERIC_KNOWN}
        metadata = {**extras, **metadata}
    url = _str_field(record, "url") or (metadata.get("url") if isinstance(metadata.get("url"), str) else None)
    language = _str_field(record, "language") or (metadata.get("language") if isinstance(metadata.get("language"), str) else None)
    return Document(
        doc_id=doc_id,
        # SQLite's text functions end a string at U+0000, which would cut the passages after it.
        text=untypeset((_str_field(record, "text") or "").replace("\0", " ")),
        title=untypeset((_str_field(record, "title") or "").strip()),
        url=url,
        domain=_str_field(record, "domain"),
        published=_published_field(record),
        source=_str_field(record, "source"),
        language=language,
        metadata=metadata,
    )


def read_documents(
    paths: list[str | Path], *, skip_bad: bool = False, report: ReadReport | None = None
) -> Iterator[Document]:
    """Yield every non-empty document of every corpus path, in order.

    A malformed line (not UTF-8, not JSON, nested deeper than _MAX_DEPTH), a missing/empty id, no
    `text` field, a duplicate id, a field of the wrong type or holding an unpaired surrogate (a JSON
    escape such as \\ud800, which cannot be stored as UTF-8) or a `published` that is not an ISO date
    raises CorpusError naming file:line, unless skip_bad is set (then it is counted in `report`). A
    UTF-8 BOM at the start of a file is ignored.
    Documents whose text is empty or blank are skipped and counted.
    """
    report = report if report is not None else ReadReport()
    seen: set[str] = set()
    for path in paths:
        layout, files = corpus_files(path)
        for file in files:
            report.sha256.update(file.name.encode())
            for lineno, line in _iter_lines(file, hasher=report.sha256):
                where = f"{file}:{lineno}"
                try:
                    text = _decode_line(line)
                    if not text.strip():
                        continue
                    record = _parse_json(text)
                    doc = _to_document(record, layout)
                    if doc.doc_id in seen:
                        first = "" if skip_bad else f" (first at {_first_line_of(doc.doc_id, paths)})"
                        raise ValueError(f"duplicate document id '{doc.doc_id}'{first}")
                except ValueError as exc:
                    if not skip_bad:
                        raise CorpusError(f"{exc} (use --skip-bad to skip bad lines)", where=where) from None
                    report.skipped_bad += 1
                    if len(report.bad_lines) < 100:
                        report.bad_lines.append(f"{where}: {exc}")
                    continue
                seen.add(doc.doc_id)
                if not doc.text.strip():
                    report.skipped_empty += 1
                    continue
                report.documents += 1
                yield doc


def _first_line_of(doc_id: str, paths: list[str | Path]) -> str:
    """file:line of the first document with `doc_id`, read again from the start: only the ids are
    kept while reading, so this runs once, for the error that stops the read."""
    for path in paths:
        layout, files = corpus_files(path)
        for file in files:
            for lineno, line in _iter_lines(file):
                try:
                    if _to_document(_parse_json(_decode_line(line)), layout).doc_id == doc_id:
                        return f"{file}:{lineno}"
                except ValueError:
                    continue
    return "?"


def corpus_bytes(paths: list[str | Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in corpus_files(p)[1])
