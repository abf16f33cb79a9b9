"""Streaming corpus readers: BEIR layout and the generic documents JSONL (also the crawler's output).

Memory does not grow with corpus size except for the set of seen ids (for duplicate detection).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.errors import CorpusError
from indexer.schema import Document, published_problem

BEIR_FILES = ("corpus.jsonl", "corpus.jsonl.gz")
_GENERIC_KNOWN = {"id", "_id", "title", "text", "url", "published", "source", "metadata", "domain", "language"}


@dataclass
class ReadReport:
    """What a read saw: counts of documents, skips and (with skip_bad) the bad lines."""

    documents: int = 0
    skipped_empty: int = 0
    skipped_bad: int = 0
    bad_lines: list[str] = field(default_factory=list)  # "file:line: reason", first 100

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "skipped_empty": self.skipped_empty,
            "skipped_bad": self.skipped_bad,
            "bad_lines": self.bad_lines[:100],
        }


def corpus_files(path: str | Path) -> tuple[str, list[Path]]:
    """(layout, files) for a corpus path.

    - a BEIR directory (holds corpus.jsonl[.gz]) -> ("beir", [that file])
    - a directory of *.jsonl / *.jsonl.gz (also DIR/docs/ as the crawler writes) -> ("generic", sorted files)
    - a single .jsonl / .jsonl.gz file -> ("beir" if its name starts with "corpus", else "generic")
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
                return "beir", [p / name]
        search = p / "docs" if (p / "docs").is_dir() else p
        files = sorted(f for f in search.iterdir() if f.name.endswith((".jsonl", ".jsonl.gz")) and f.is_file())
        if not files:
            raise CorpusError(
                "no corpus.jsonl[.gz] (BEIR layout) and no *.jsonl[.gz] document files in directory", where=str(p)
            )
        return "generic", files
    if not p.name.endswith((".jsonl", ".jsonl.gz")):
        raise CorpusError("corpus file must be .jsonl or .jsonl.gz", where=str(p))
    return ("beir" if p.name.startswith("corpus.") else "generic"), [p]


def _open_text(path: Path) -> io.TextIOBase:
    try:
        if path.name.endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise CorpusError(f"cannot read corpus file: {exc.strerror or exc}", where=str(path)) from None


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path) as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                yield lineno, line
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise CorpusError(f"corrupt or unreadable data: {exc}", where=f"{path}:{lineno + 1}") from None


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
    preferred, alternative = ("_id", "id") if layout == "beir" else ("id", "_id")
    id_field = alternative if preferred not in record and alternative in record else preferred
    doc_id = _str_field(record, id_field)
    if doc_id is None:
        raise ValueError(f"missing field '{id_field}'")
    doc_id = doc_id.strip()
    if not doc_id:
        raise ValueError(f"empty field '{id_field}'")
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
        text=_str_field(record, "text") or "",
        title=(_str_field(record, "title") or "").strip(),
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

    A malformed line, a missing/empty id, a duplicate id, a field of the wrong type or a `published`
    that is not an ISO date raises CorpusError naming file:line, unless skip_bad is set (then it is
    counted in `report`).
    Documents with empty text are skipped and counted.
    """
    report = report if report is not None else ReadReport()
    seen: set[str] = set()
    for path in paths:
        layout, files = corpus_files(path)
        for file in files:
            for lineno, line in _iter_lines(file):
                if not line.strip():
                    continue
                where = f"{file}:{lineno}"
                try:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"malformed JSON ({exc.msg} at column {exc.colno})") from None
                    doc = _to_document(record, layout)
                    if doc.doc_id in seen:
                        raise ValueError(f"duplicate document id '{doc.doc_id}'")
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


def corpus_bytes(paths: list[str | Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in corpus_files(p)[1])
