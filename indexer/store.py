"""SQLite store: documents and passages, the single source of truth for what a hit returns."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from indexer.errors import IndexFormatError
from indexer.schema import Document, Passage
from indexer.urls import url_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    idx        INTEGER PRIMARY KEY,
    doc_id     TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL,
    url        TEXT,
    domain     TEXT,
    published  TEXT,
    source     TEXT,
    metadata   TEXT NOT NULL,
    text       TEXT NOT NULL,
    language   TEXT,                  -- ISO 639-1; absent in stores built before languages were kept
    url_key    TEXT                   -- canonical URL (indexer.urls), indexed; absent in stores built before it
);
CREATE TABLE IF NOT EXISTS passages (
    idx        INTEGER PRIMARY KEY,   -- dense vector id
    passage_id TEXT NOT NULL UNIQUE,  -- Lucene document id
    doc_idx    INTEGER NOT NULL REFERENCES documents(idx),
    ordinal    INTEGER NOT NULL,
    start      INTEGER NOT NULL,      -- character offsets into the document's text:
    end        INTEGER NOT NULL       -- a passage's text is stored once, in its document
);
CREATE INDEX IF NOT EXISTS passages_by_doc ON passages(doc_idx, ordinal);
"""


class PassageRow(NamedTuple):
    """A passage joined with its document's display fields (a named tuple: a search response reads
    hundreds, and a frozen dataclass took ~1.5 µs more to build each)."""

    idx: int
    passage_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str
    url: str | None
    domain: str | None
    published: str | None


class StoreWriter:
    """Appends documents and their passages in one transaction per batch."""

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        self._doc_idx = 0
        self._passage_idx = 0
        self._pending = 0

    def add(self, doc: Document, passages: list[Passage]) -> list[int]:
        """Store one document and its passages; returns the passages' integer ids."""
        self._db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (self._doc_idx, doc.doc_id, doc.title, doc.url, doc.domain, doc.published, doc.source,
             json.dumps(doc.metadata, ensure_ascii=False), doc.text, doc.language, url_key(doc.url) if doc.url else None),
        )
        ids = list(range(self._passage_idx, self._passage_idx + len(passages)))
        self._db.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?)",
            [(i, p.passage_id, self._doc_idx, p.ordinal, p.start, p.end) for i, p in zip(ids, passages)],
        )
        self._doc_idx += 1
        self._passage_idx += len(passages)
        self._pending += 1
        if self._pending >= 5000:
            self._db.commit()
            self._pending = 0
        return ids

    @property
    def counts(self) -> tuple[int, int]:
        return self._doc_idx, self._passage_idx

    def close(self) -> None:
        self._db.commit()
        self._db.execute("CREATE INDEX IF NOT EXISTS documents_by_url_key ON documents(url_key)")  # once, after the inserts
        self._db.execute("ANALYZE")
        self._db.commit()
        self._db.close()


class Store:
    """Read-only access to a finished store. One connection per thread (check_same_thread off, serialised)."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise IndexFormatError("index has no store.sqlite", where=str(path.parent))
        self.path = path
        with open(path, "rb"):  # a file the user may not read: the OS's reason, where SQLite says only "unable to open"
            pass
        self._db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        try:  # a damaged file fails here (SQLite checks the header's page count against the file's length)
            self._has_url_key = any(r["name"] == "url_key" for r in self._db.execute("PRAGMA table_info(documents)"))
            self.extent = self._extent()
        except BaseException:
            self._db.close()
            raise

    def _extent(self) -> tuple[int, int]:
        """(documents, passages) of a finished store from the last row of each table (its ids run from 0
        without gaps): two B-tree descents where `counts()` reads every row, so cheap enough for every open."""
        last = [self._db.execute(f"SELECT MAX(idx) FROM {table}").fetchone()[0] for table in ("documents", "passages")]
        return tuple((-1 if v is None else int(v)) + 1 for v in last)  # type: ignore[return-value]

    # A passage's text: characters [start, end) of its document's text. SQLite's substr() counts characters
    # (1-based) as Python's offsets do, and reads a TEXT value only up to its first NUL (see `_sql_text`),
    # but loads the whole value for every row it is applied to: reading N passages of one document that
    # way costs N times its size, so the readers below read each document's text once.
    _PASSAGE_SELECT = (
        "SELECT p.idx, p.passage_id, d.doc_id, p.ordinal, p.start, p.end, {text}, d.title, d.url, d.domain, d.published "
        "FROM passages p JOIN documents d ON d.idx = p.doc_idx "
    )
    _WITH_TEXT = _PASSAGE_SELECT.format(text="substr(d.text, p.start + 1, p.end - p.start)")
    _WITH_DOC_IDX = _PASSAGE_SELECT.format(text="p.doc_idx")

    def passages_by_id(self, passage_ids: Iterable[str]) -> dict[str, PassageRow]:
        """The passages of `passage_ids` that exist, by id, one query per 500 ids. Where the ids name
        (`doc_id_of`) at most two passages of each document, that query reads each passage's text (the
        common case: one of each); where three or more of one document are asked for (a long document
        matching a query), a second query reads each document's text once, as one span over its passages
        (for two, a span's longer copy costs about what the second read of the document saves)."""
        ids = list(dict.fromkeys(passage_ids))
        out: dict[str, PassageRow] = {}
        cursor = self._plain_cursor()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            where = f"WHERE p.passage_id IN ({','.join('?' * len(chunk))})"
            doc_ids = {pid.rsplit("#", 1)[0] for pid in chunk}  # doc_id_of, inlined
            if len(doc_ids) == len(chunk) or max(Counter(pid.rsplit("#", 1)[0] for pid in chunk).values()) < 3:
                make = PassageRow._make
                out.update({row[1]: make(row) for row in cursor.execute(self._WITH_TEXT + where, chunk)})
                continue
            rows = cursor.execute(self._WITH_DOC_IDX + where, chunk).fetchall()
            spans: dict[int, tuple[int, int]] = {}  # doc idx -> (first start, last end) of its passages here
            for row in rows:
                first, last = spans.get(row[6], (row[4], row[5]))
                spans[row[6]] = (min(first, row[4]), max(last, row[5]))
            texts = self._spans(cursor, spans)
            for idx, pid, doc_id, ordinal, start, end, doc_idx, title, url, domain, published in rows:
                first = spans[doc_idx][0]
                text = texts[doc_idx][start - first : end - first]
                out[pid] = PassageRow(idx, pid, doc_id, ordinal, start, end, text, title, url, domain, published)
        return out

    @staticmethod
    def _spans(cursor: sqlite3.Cursor, spans: dict[int, tuple[int, int]]) -> dict[int, str]:
        """doc idx -> characters [first, last) of its text, as substr() reads them: one read of each text."""
        out: dict[int, str] = {}
        items = list(spans.items())
        for i in range(0, len(items), 300):  # 3 parameters a document: under the oldest SQLite's limit of 999
            part = items[i : i + 300]
            values = ",".join(["(?,?,?)"] * len(part))
            params = [v for doc_idx, (first, last) in part for v in (doc_idx, first + 1, last - first)]
            out.update(cursor.execute(
                f"WITH s(i, a, n) AS (VALUES {values}) SELECT s.i, substr(d.text, s.a, s.n) FROM s JOIN documents d ON d.idx = s.i",
                params,
            ))  # fmt: skip
        return out

    @staticmethod
    def _sql_text(text: str) -> str:
        """`text` as SQLite's substr() reads a TEXT value: up to its first NUL (U+0000), if any. Passages
        were always read that way; the bulk reader, which slices in Python, keeps to it."""
        nul = text.find("\0")
        return text if nul < 0 else text[:nul]

    def passage(self, passage_id: str) -> PassageRow | None:
        return self.passages_by_id([passage_id]).get(passage_id)

    def document(self, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        doc = dict(row)
        doc["metadata"] = json.loads(doc["metadata"])
        doc["passages"] = [
            dict(r)
            for r in self._db.execute(
                "SELECT passage_id, ordinal, start, end FROM passages WHERE doc_idx = ? ORDER BY ordinal", (doc["idx"],)
            )
        ]
        del doc["idx"]
        doc.pop("url_key", None)
        return doc

    def doc_id_for_url(self, url: str) -> str | None:
        """The id of the first indexed document whose URL has `url`'s canonical form, else None."""
        key = url_key(url)
        if key is None:
            return None
        if self._has_url_key:
            row = self._db.execute("SELECT doc_id FROM documents WHERE url_key = ? ORDER BY idx LIMIT 1", (key,)).fetchone()
            return row[0] if row else None
        # A store built before the url_key column: compare every stored URL, one pass per lookup and nothing
        # kept in memory (slow on a large index; a rebuild adds the indexed column).
        rows = self._db.execute("SELECT doc_id, url FROM documents WHERE url IS NOT NULL ORDER BY idx")
        return next((doc_id for doc_id, stored in rows if url_key(stored) == key), None)

    def iter_passages(self, batch: int = 2000) -> Iterator[tuple[int, str, str, str]]:
        """(idx, passage_id, title, text) in idx order: what the indexes are built from.

        Linear in the corpus: each document's text is read once, by a second cursor walking the documents
        in idx order alongside the passages (a store lays a document's passages out consecutively, in
        document order), and its passages are sliced from it in Python. A passage whose document is not
        the current one or a later one is looked up on its own; one whose document is missing is skipped,
        as the join it replaces did."""
        passages = self._plain_cursor().execute("SELECT idx, passage_id, doc_idx, start, end FROM passages ORDER BY idx")
        docs = self._plain_cursor().execute("SELECT idx, title, text FROM documents ORDER BY idx")
        doc: tuple[int, str, str] | None = next(docs, None)  # the documents cursor's current row; None once past the end
        cur_idx, title, text = -1, "", ""  # the document the last passages came from
        while rows := passages.fetchmany(batch):
            for idx, passage_id, doc_idx, start, end in rows:
                if doc_idx != cur_idx:
                    while doc is not None and doc[0] < doc_idx:  # skip documents without passages
                        doc = next(docs, None)
                    if doc is not None and doc[0] == doc_idx:
                        found: tuple[int, str, str] | None = doc
                    else:  # out of order (not written by StoreWriter) or dangling
                        found = self._plain_cursor().execute(
                            "SELECT idx, title, text FROM documents WHERE idx = ?", (doc_idx,)
                        ).fetchone()
                    if found is None:
                        continue
                    cur_idx, title, text = found
                    text = self._sql_text(text)
                yield idx, passage_id, title, text[start:end]

    def passage_doc_fields(self) -> Iterator[tuple[int, str, str | None, str | None, str | None]]:
        """(passage idx, passage_id, url, domain, published) for every passage, for in-memory filter tables."""
        yield from self._plain_cursor().execute(
            "SELECT p.idx, p.passage_id, d.url, d.domain, d.published FROM passages p JOIN documents d ON d.idx = p.doc_idx ORDER BY p.idx"
        )

    def counts(self) -> tuple[int, int]:
        docs = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        passages = self._db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return docs, passages

    def _plain_cursor(self) -> sqlite3.Cursor:
        """A cursor whose rows are plain tuples: the connection's `sqlite3.Row` costs more to make and
        to read, where rows are many and read by position."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        return cursor

    def close(self) -> None:
        self._db.close()
