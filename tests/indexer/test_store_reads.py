"""The store's passage readers: the bulk one a build reads (`iter_passages`) and the one a query's hits are
read by (`passages_by_id`) give the same texts as SQLite's substr() over the stored offsets always did,
and read each document's text once, not once per passage (which made a build quadratic in a document's
size: the BM25 leg of a 4 MB document took 24-34 s, a 20 MB one over 10 minutes)."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from indexer.chunker import ChunkSettings, chunk_document
from indexer.schema import Document
from indexer.store import Store, StoreWriter

_WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()


def _paragraphs(n: int, seed: int) -> str:
    return "\n\n".join(" ".join(_WORDS[(seed + i * 3 + j) % len(_WORDS)] for j in range(4 + i % 3)) + "." for i in range(n))


DOCS = [
    Document("long", _paragraphs(9, 0), title="Long"),
    Document("one", "A single short paragraph.", title="One"),
    Document("empty", "   ", title="No passages"),  # a document without passages, between two with
    Document("wide#1", "Ünïcödé 😀 first.\n\n" + _paragraphs(5, 1) + "\n\n中文的段落。", title="Wide"),  # '#' in its id
    Document("nul", "Before the nul, five words.\n\nA \x00 inside, and more words here.\n\nAfter it, some more words too.", title="Nul"),
    Document("tail", _paragraphs(6, 2), title="Tail"),
]


def _store(path):
    writer = StoreWriter(path)
    for d in DOCS:
        writer.add(d, chunk_document(d, ChunkSettings(target_words=8, overlap_words=3)))
    writer.close()
    return path


def _substr_texts(path) -> dict[str, str]:
    """Each passage's text as the store read it before: SQLite's substr() over its offsets."""
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT p.passage_id, substr(d.text, p.start + 1, p.end - p.start) FROM passages p "
        "JOIN documents d ON d.idx = p.doc_idx ORDER BY p.idx"
    ).fetchall()
    db.close()
    return dict(rows)


def test_bulk_and_per_passage_readers_give_the_same_texts(tmp_path):
    path = _store(tmp_path / "s.sqlite")
    expected = _substr_texts(path)
    assert Counter(pid.rsplit("#", 1)[0] for pid in expected) == {"long": 9, "one": 1, "wide#1": 6, "nul": 3, "tail": 6}
    store = Store(path)
    bulk = list(store.iter_passages(batch=4))  # batches that end inside a document
    assert [row[0] for row in bulk] == list(range(len(expected)))
    assert [(pid, text) for _, pid, _, text in bulk] == list(expected.items())
    titles = {d.doc_id: d.title for d in DOCS}
    assert [title for _, pid, title, _ in bulk] == [titles[pid.rsplit("#", 1)[0]] for pid in expected]

    one_by_one = {pid: store.passage(pid) for pid in expected}
    assert {pid: row.text for pid, row in one_by_one.items()} == expected
    together = store.passages_by_id([*reversed(expected), "long#99", "missing#0", "long#0"])  # repeats and unknowns
    assert together == one_by_one
    # Two and three passages of one document (read as a span from inside the text) with passages of others.
    for mixed in (["tail#2", "long#4", "one#0", "long#1", "wide#1#3", "tail#0"], ["long#4", "nul#2", "long#1", "nul#1", "long#6", "nul#0"]):
        assert store.passages_by_id(mixed) == {pid: one_by_one[pid] for pid in mixed}
    for pid, row in one_by_one.items():
        doc = store.document(row.doc_id)
        assert pid in [p["passage_id"] for p in doc["passages"]]
        if "\x00" not in doc["text"]:
            assert row.text == doc["text"][row.start : row.end] and row.title == doc["title"]
    # substr() reads a TEXT value up to its first NUL: the readers keep to what the indexes were built from.
    assert [one_by_one[f"nul#{n}"].text for n in range(3)] == ["Before the nul, five words.", "A ", ""]
    store.close()


@pytest.fixture
def counted(tmp_path, monkeypatch):
    """A store whose `documents.text` is read through a function that counts, per document, the reads of
    its text by any statement: `documents` becomes a view over the stored table."""
    path = _store(tmp_path / "s.sqlite")
    reads: Counter[str] = Counter()

    def read_text(doc_id: str, text: str) -> str:
        reads[doc_id] += 1
        return text

    def connect(*args, **kwargs):  # the view needs the function from the store's first statement on
        db = real_connect(*args, **kwargs)
        db.create_function("read_text", 2, read_text)
        return db

    real_connect = sqlite3.connect
    db = sqlite3.connect(path)
    db.executescript(
        "ALTER TABLE documents RENAME TO documents_stored;"
        "CREATE VIEW documents AS SELECT idx, doc_id, title, url, domain, published, source, metadata,"
        " read_text(doc_id, text) AS text, language, url_key FROM documents_stored;"
    )
    db.close()
    monkeypatch.setattr(sqlite3, "connect", connect)
    store = Store(path)
    assert not reads
    yield store, reads
    store.close()


def test_a_build_reads_each_document_text_once(counted):
    store, reads = counted
    passages = list(store.iter_passages(batch=3))
    per_doc = Counter(pid.rsplit("#", 1)[0] for _, pid, _, _ in passages)
    assert per_doc["long"] == 9 and len(passages) == 25
    assert set(reads) <= {d.doc_id for d in DOCS} and {doc_id: reads[doc_id] for doc_id in per_doc} == dict.fromkeys(per_doc, 1)


def test_reading_hits_reads_each_document_text_once_per_call(counted):
    store, reads = counted
    ids = [f"long#{n}" for n in range(9)] + ["tail#3", "tail#1", "one#0"]
    rows = store.passages_by_id(ids)
    assert sorted(rows) == sorted(ids)
    assert reads == {"long": 1, "tail": 1, "one": 1}
    reads.clear()
    store.passages_by_id(["long#0", "tail#0", "one#0"])  # one passage of each: one read each, as always
    assert reads == {"long": 1, "tail": 1, "one": 1}
