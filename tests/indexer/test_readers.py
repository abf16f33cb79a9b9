from __future__ import annotations

import gzip
import json

import pytest

from indexer.errors import CorpusError
from indexer.readers import ReadReport, read_documents


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_beir_layout_plain_and_gzip(tmp_path):
    rows = [{"_id": "1", "title": " A ", "text": "alpha"}, {"_id": 2, "title": "B", "text": "beta", "metadata": {"x": 1}}]
    beir = tmp_path / "beir"
    beir.mkdir()
    with gzip.open(beir / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    docs = list(read_documents([beir]))
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("1", "A", "alpha"), ("2", "B", "beta")]
    assert docs[1].metadata == {"x": 1}


def test_generic_documents_with_url_published_and_extra_fields(tmp_path):
    f = write_lines(tmp_path / "docs.jsonl", [json.dumps(
        {"id": "x", "title": "T", "text": "body", "url": "https://www.nber.org/p", "published": "2024-05-01",
         "source": "crawl", "content_hash": "abc"})])  # fmt: skip
    (d,) = read_documents([f])
    assert (d.url, d.published, d.source) == ("https://www.nber.org/p", "2024-05-01", "crawl")
    assert d.metadata == {"content_hash": "abc"}


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"id": "a", "text": ', "malformed JSON"),
        ('{"text": "no id"}', "missing field 'id'"),
        ('{"id": "  ", "text": "x"}', "empty field 'id'"),
        ('{"id": "dup", "text": "again"}', "duplicate document id 'dup'"),
        ('["not", "an", "object"]', "not a JSON object"),
        ('{"id": "t", "text": 5}', "field 'text' must be a string"),
        ('{"id": "p", "text": "x", "published": 2023}', "field 'published' must be a string"),
        ('{"id": "p", "text": "x", "published": "yesterday"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2024-13-45"}', "field 'published' is not a calendar date"),
        ('{"id": "p", "text": "x", "published": "99999-01-01"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2023-05T10:00"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2023-05-01 10:00"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2023-05-01T25:00"}', "field 'published' has a time"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, reason):
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "dup", "text": "first"}', line])
    with pytest.raises(CorpusError) as err:
        list(read_documents([f]))
    assert f"{f}:2" in str(err.value) and reason in str(err.value)


@pytest.mark.parametrize("value", ["2023", "2023-05", "2023-05-01", "2023-05-01T10:00:00Z", "2023-05-01T10:00:00.5+02:00",
                                   "2024-02-29", " 2023-05-01 "])
def test_iso_published_dates_are_kept(tmp_path, value):
    f = write_lines(tmp_path / "docs.jsonl", [json.dumps({"id": "a", "text": "x", "published": value})])
    (d,) = read_documents([f])
    assert d.published == value.strip()


def test_blank_published_is_undated(tmp_path):
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "a", "text": "x", "published": ""}', '{"id": "b", "text": "y", "published": " "}'])
    assert [d.published for d in read_documents([f])] == [None, None]


def test_skip_bad_counts_and_empty_texts_are_skipped(tmp_path):
    f = write_lines(tmp_path / "docs.jsonl", [
        '{"id": "a", "text": "ok"}', "{broken", '{"id": "b", "text": "   "}', '{"id": "a", "text": "dup"}',
        '{"id": "c", "text": "fine"}',
    ])  # fmt: skip
    report = ReadReport()
    docs = list(read_documents([f], skip_bad=True, report=report))
    assert [d.doc_id for d in docs] == ["a", "c"]
    assert (report.documents, report.skipped_bad, report.skipped_empty) == (2, 2, 1)
    assert report.bad_lines[0].startswith(f"{f}:2:")


def test_missing_path_wrong_layout_and_corrupt_gzip(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        list(read_documents([tmp_path / "nope"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no corpus.jsonl"):
        list(read_documents([tmp_path / "empty"]))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CorpusError, match="must be .jsonl"):
        list(read_documents([tmp_path / "notes.txt"]))
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(CorpusError, match="corrupt or unreadable"):
        list(read_documents([bad]))


def test_reader_is_streaming(tmp_path):
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "a", "text": "x"}', "{broken"])
    it = read_documents([f])
    assert next(it).doc_id == "a"  # the first document arrives before the bad line is read
    with pytest.raises(CorpusError):
        next(it)
