from __future__ import annotations

import gzip
import json

import pytest

from indexer.errors import CorpusError
from indexer.readers import ReadReport, corpus_files, read_documents, unread_files


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
        ('{"id": "a", "text": ', "malformed JSON (Expecting value at column 21)"),
        ('{"id": "a", "text": "cut', "malformed JSON (Unterminated string starting at column 21)"),
        ("{", "malformed JSON (a line holding only '{': each document must be one JSON object on one line, not pretty-printed)"),
        ('{"text": "no id"}', "missing field 'id'"),
        ('{"id": "  ", "text": "x"}', "empty field 'id'"),
        ('{"id": "dup", "text": "again"}', "duplicate document id 'dup'"),
        ('["not", "an", "object"]', "not a JSON object"),
        ('{"id": "t", "text": 5}', "field 'text' must be a string"),
        ('{"id": "b", "title": "T", "body": "the text under another name"}', "missing field 'text' (this line has: body, id, title)"),
        ('{"id": "p", "text": "x", "published": 2023}', "field 'published' must be a string"),
        ('{"id": "p", "text": "x", "published": "yesterday"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2024-13-45"}', "field 'published' is not a calendar date"),
        ('{"id": "p", "text": "x", "published": "99999-01-01"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2023-05T10:00"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2023-05-01 10:00"}', "field 'published' is not an ISO date"),
        ('{"id": "p", "text": "x", "published": "2023-05-01T25:00"}', "field 'published' has a time"),
        (json.dumps({"id": "a" * 40_000, "text": "x"}), "field 'id' is 40000 bytes long (at most 500 in UTF-8)"),
        (json.dumps({"_id": "\u00e9" * 251, "text": "x"}), "field '_id' is 502 bytes long (at most 500 in UTF-8)"),
        ('{"id": "n", "text": "x", "pages": ' + "9" * 5000 + "}", "malformed JSON (a number of more than 4300 digits)"),
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


def test_ids_up_to_the_byte_limit_are_kept(tmp_path):
    f = write_lines(tmp_path / "docs.jsonl", [json.dumps({"id": "\u00e9" * 250, "text": "x"}), json.dumps({"id": "a" * 500, "text": "y"})])
    assert [len(d.doc_id.encode()) for d in read_documents([f])] == [500, 500]


def test_a_nul_in_the_text_reads_as_a_space(tmp_path):
    """SQLite's text functions end a string at U+0000: kept, it cut every passage after it."""
    f = write_lines(tmp_path / "docs.jsonl", [json.dumps({"id": "n", "title": "T", "text": "intro\u0000 zebra words"})])
    (d,) = read_documents([f])
    assert d.text == "intro  zebra words"


def test_ligatures_and_soft_hyphens_of_pdf_text_are_undone(tmp_path):
    """Text extracted from PDFs by other tools keeps ligature glyphs and soft hyphens (SciFact has both:
    `identiﬁed`, `shrink\u00ad ing`); Lucene kept each inside its term, so `financial` never found `ﬁnancial`."""
    text = "The ﬁnancial ﬂows were eﬃcient; grazing land is shrink\u00ad ing, inter\u00ad\nnational ser\u00advices."
    f = write_lines(tmp_path / "docs.jsonl", [json.dumps({"id": "p", "title": "Oﬀshore ﬁnance", "text": text})])
    (d,) = read_documents([f])
    assert d.title == "Offshore finance"
    assert d.text == "The financial flows were efficient; grazing land is shrinking, international services."


def test_a_pdf_word_with_a_ligature_is_found_and_highlighted(tmp_path):
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.format import result_dicts
    from ranker.options import SearchOptions
    from ranker.pipeline import SearchPipeline

    f = write_lines(tmp_path / "docs.jsonl", [
        json.dumps({"id": "pdf", "text": "Banks reported ﬁnancial proﬁts; the eﬃciency of markets rose."}),
        json.dumps({"id": "web", "text": "Harvest yields and rainfall in the south."}),
    ])  # fmt: skip
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    pipeline = SearchPipeline.open(build_index([f], tmp_path / "index", settings).build_dir)
    try:
        found = pipeline.search("financial efficiency", SearchOptions(k=3, mode="bm25"))
        assert [r.passage.doc_id for r in found] == ["pdf"]
        # a query pasted from such a PDF is read as the documents were
        pasted = pipeline.search("ﬁnancial eﬃ\u00adciency", SearchOptions(k=3, mode="bm25"))
        assert [(r.passage.doc_id, r.hit.score) for r in pasted] == [(r.passage.doc_id, r.hit.score) for r in found]
        assert result_dicts([(found[0], "financial efficiency")])[0]["snippet"] == (
            "Banks reported financial profits; the efficiency of markets rose."
        )
    finally:
        pipeline.close()


def test_a_word_written_with_combining_marks_is_the_word_written_precomposed(tmp_path):
    """NFC for documents and queries: `café` typed as e + U+0301 (macOS, some PDFs) found no `café` as most
    pages write it, nor the other way round, and `Universität` no `Universita\u0308t`."""
    import unicodedata

    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.options import SearchOptions
    from ranker.pipeline import SearchPipeline

    nfd = unicodedata.normalize("NFD", "Die Universität Zürich und das Café am See")
    f = write_lines(tmp_path / "docs.jsonl", [
        json.dumps({"id": "nfd", "text": nfd, "title": unicodedata.normalize("NFD", "Zürich")}),
        json.dumps({"id": "nfc", "text": "Le café de la gare et les élèves de l'école"}),
        json.dumps({"id": "other", "text": "Harvest yields and rainfall in the south."}),
    ])  # fmt: skip
    docs = {d.doc_id: d for d in read_documents([f])}
    assert docs["nfd"].text == unicodedata.normalize("NFC", nfd) and docs["nfd"].title == "Zürich"
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    with SearchPipeline.open(build_index([f], tmp_path / "index", settings).build_dir) as pipeline:
        for query, doc_id in (("Universität", "nfd"), (unicodedata.normalize("NFD", "élèves"), "nfc")):
            assert [r.passage.doc_id for r in pipeline.search(query, SearchOptions(k=3, mode="bm25"))] == [doc_id]


def test_a_directory_reads_its_own_shards_before_a_docs_folder(tmp_path):
    """DIR/docs/ is where a crawl writes its shards; a directory of shards that has a docs/ folder too
    is still read as the shards it holds."""
    shards = tmp_path / "shards"
    (shards / "docs").mkdir(parents=True)
    write_lines(shards / "a.jsonl", [json.dumps({"id": "top", "text": "x"})])
    assert [d.doc_id for d in read_documents([shards])] == ["top"]
    write_lines(shards / "docs" / "b.jsonl", [json.dumps({"id": "nested", "text": "y"})])
    assert [d.doc_id for d in read_documents([shards])] == ["top"]
    (shards / "a.jsonl").unlink()
    assert [d.doc_id for d in read_documents([shards])] == ["nested"]


def _beir_dir(root):
    """A BEIR folder as BEIR ships one: corpus.jsonl, queries.jsonl and qrels/."""
    root.mkdir()
    write_lines(root / "corpus.jsonl", [json.dumps({"_id": "c1", "text": "alpha"})])
    write_lines(root / "queries.jsonl", [json.dumps({"_id": "q1", "text": "alpha?"})])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tc1\t1\n")
    return root


def test_a_beir_directory_reads_its_corpus_file_and_not_its_queries(tmp_path):
    beir = _beir_dir(tmp_path / "beir")
    assert [d.doc_id for d in read_documents([beir])] == ["c1"]
    assert corpus_files(beir) == ("beir", [beir / "corpus.jsonl"])


@pytest.mark.parametrize("extras", [["more.jsonl"], ["corpus.jsonl.gz"], ["part-1.jsonl", "part-2.jsonl.gz"]])
def test_a_beir_directory_with_other_document_files_is_refused(tmp_path, extras):
    """Other *.jsonl[.gz] files beside corpus.jsonl are documents a BEIR read would silently leave out."""
    beir = _beir_dir(tmp_path / "beir")
    for name in extras:
        line = (json.dumps({"id": name, "text": "dropped"}) + "\n").encode()
        (beir / name).write_bytes(gzip.compress(line) if name.endswith(".gz") else line)
    with pytest.raises(CorpusError) as err:
        list(read_documents([beir]))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{beir}: ")
    assert ", ".join(extras) in message and "--corpus" in message
    with pytest.raises(CorpusError):
        corpus_files(beir)  # build and encode check paths with it before any work
    # What the message proposes reads every document.
    ids = [d.doc_id for d in read_documents([beir / "corpus.jsonl", *(beir / name for name in extras)])]
    assert ids == ["c1", *extras]


def test_reader_is_streaming(tmp_path):
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "a", "text": "x"}', "{broken"])
    it = read_documents([f])
    assert next(it).doc_id == "a"  # the first document arrives before the bad line is read
    with pytest.raises(CorpusError):
        next(it)


def write_bytes_or_gzip(path, data: bytes):
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"id": "s", "text": "bad \\ud800 surrogate"}', "field 'text' has an unpaired surrogate (\\ud800 at character 4)"),
        ('{"id": "s", "text": "x", "title": "\\udc00"}', "field 'title' has an unpaired surrogate (\\udc00 at character 0)"),
        ('{"id": "s\\ud800", "text": "x"}', "field 'id' has an unpaired surrogate (\\ud800 at character 1)"),
        ('{"id": "s", "text": "x", "url": "https://e.org/\\ud800"}', "field 'url' has an unpaired surrogate"),
        ('{"id": "s", "text": "x", "metadata": {"a": "\\ud800"}}', "field 'metadata' has an unpaired surrogate (\\ud800 at character 0 of metadata.a)"),
        ('{"id": "s", "text": "x", "metadata": {"a": [1, {"b": "ok \\udfff"}]}}', "(\\udfff at character 3 of metadata.a[1].b)"),
        ('{"id": "s", "text": "x", "metadata": {"a": {"k\\ud800": 1}}}', "(\\ud800 at character 1 of a key in metadata.a)"),
        ('{"id": "s", "text": "x", "extra": ["\\ud800"]}', "field 'extra' has an unpaired surrogate"),  # generic: kept in metadata
    ],
)
def test_unpaired_surrogate_is_a_bad_line(tmp_path, line, reason):
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "a", "text": "first"}', line, '{"id": "z", "text": "last \\ud83d\\ude00"}'])
    with pytest.raises(CorpusError) as err:
        list(read_documents([f]))
    assert f"{f}:2: " in str(err.value) and reason in str(err.value)
    assert str(err.value).isascii() and "\n" not in str(err.value)  # printable on any terminal, one line
    report = ReadReport()
    docs = list(read_documents([f], skip_bad=True, report=report))
    assert [d.doc_id for d in docs] == ["a", "z"] and docs[1].text == "last \U0001f600"  # a valid pair is kept
    assert report.skipped_bad == 1 and report.bad_lines[0].startswith(f"{f}:2: ")
    for d in docs:  # what the reader yields can be stored (store.py encodes these as UTF-8)
        (d.doc_id + d.text + d.title + json.dumps(d.metadata, ensure_ascii=False)).encode("utf-8")


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz"])
def test_invalid_utf8_is_reported_at_its_line_and_skippable(tmp_path, name):
    lines = [('{"id": "d%d", "text": "caf\u00e9 %d"}' % (i, i)).encode("utf-8") for i in range(1, 101)]
    lines[49] = b'{"id": "d50", "text": "caf\xe9 latin-1"}'  # line 50
    f = write_bytes_or_gzip(tmp_path / name, b"\n".join(lines) + b"\n")
    with pytest.raises(CorpusError) as err:
        list(read_documents([f]))
    assert str(err.value).startswith(f"{f}:50: not UTF-8 text (byte 0xe9")
    report = ReadReport()
    docs = list(read_documents([f], skip_bad=True, report=report))
    assert len(docs) == 99 and "d50" not in {d.doc_id for d in docs} and docs[0].text == "caf\u00e9 1"
    assert (report.documents, report.skipped_bad) == (99, 1)
    assert report.bad_lines == [f"{f}:50: not UTF-8 text (byte 0xe9 at byte 27 of the line: invalid continuation byte)"]


@pytest.mark.parametrize("depth", [100_000, 990, 100])
def test_too_deeply_nested_json_is_a_bad_line(tmp_path, depth):
    # 100_000: json.loads raises RecursionError; 990: it parses, but storing it (json.dumps) would not
    deep = '{"a": ' * depth + "1" + "}" * depth
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "a", "text": "x"}', '{"id": "b", "text": "y", "metadata": %s}' % deep])
    with pytest.raises(CorpusError) as err:
        list(read_documents([f]))
    assert f"{f}:2: malformed JSON (nesting too deep" in str(err.value)
    report = ReadReport()
    assert [d.doc_id for d in read_documents([f], skip_bad=True, report=report)] == ["a"]
    assert report.skipped_bad == 1


def test_nesting_up_to_the_limit_is_kept(tmp_path):
    deep = '{"a": ' * 98 + "1" + "}" * 98  # record (1) + metadata (2) + 98 objects = 100 levels
    f = write_lines(tmp_path / "docs.jsonl", ['{"id": "b", "text": "y", "metadata": {"m": %s}}' % deep])
    (d,) = read_documents([f])
    assert json.dumps(d.metadata).count("{") == 99


def test_a_long_key_above_many_values_is_checked_in_memory_of_its_line(tmp_path):
    """Each value inside a field was queued with its path written out (`metadata.<key>.a17`) for an error
    message it might need: a 10,000-character key above 20,000 values held ~400 MB of paths for a 250 KB
    line, and a 64 MiB line could ask for terabytes. Paths are now written only for an error."""
    import tracemalloc

    inner = {f"a{i}": 1 for i in range(20_000)}
    line = json.dumps({"id": "d", "text": "x", "metadata": {"k" * 10_000: inner, "b": ["ok", "\udc00"]}})
    f = write_lines(tmp_path / "docs.jsonl", [json.dumps({"id": "ok", "text": "y", "metadata": {"k" * 10_000: inner}}), line])
    tracemalloc.start()
    try:
        report = ReadReport()
        assert [d.doc_id for d in read_documents([f], skip_bad=True, report=report)] == ["ok"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * len(line)  # the parsed record and its Document, not a path per value
    assert report.bad_lines == [f"{f}:2: field 'metadata' has an unpaired surrogate (\\udc00 at character 0 of metadata.b[1])"]


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "corpus.jsonl"])
def test_utf8_bom_at_start_of_file_is_ignored(tmp_path, name):
    f = write_bytes_or_gzip(tmp_path / name, b'\xef\xbb\xbf{"id": "a", "_id": "a", "text": "first"}\n{"id": "b", "_id": "b", "text": "second"}\n')
    report = ReadReport()
    assert [d.doc_id for d in read_documents([f], skip_bad=True, report=report)] == ["a", "b"]
    assert report.skipped_bad == 0


def test_line_endings_crlf_and_cr(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_bytes(b'{"id": "a", "text": "x"}\r\n{"id": "b", "text": "y"}\r{"id": "c", "text": "z"}\n{broken\r\n')
    with pytest.raises(CorpusError, match=f"{f}:4: malformed JSON"):
        list(read_documents([f]))
    assert [d.doc_id for d in read_documents([f], skip_bad=True)] == ["a", "b", "c"]


def test_corrupt_deflate_data_in_gzip(tmp_path):
    data = bytearray(gzip.compress(b'{"id": "a", "text": "x"}\n' * 10))
    data[10] = 0xFF  # first deflate block header: invalid block type (zlib.error, not OSError)
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=f"{bad}:1: corrupt or unreadable data"):
        list(read_documents([bad], skip_bad=True))


@pytest.mark.parametrize("skip_bad", [False, True])
def test_a_line_over_the_limit_is_a_bad_line_never_held_whole(tmp_path, monkeypatch, skip_bad):
    """A small gzip file can hold a line of gigabytes: it is read in blocks and dropped past
    MAX_LINE_BYTES (a bad line at its own line number), not read whole first. Here the limit is
    1 MiB and the line 64 MiB; memory stays near the limit (plus gzip's own buffers)."""
    import tracemalloc

    from indexer import readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1 << 20)
    bomb = tmp_path / "docs.jsonl.gz"
    with gzip.open(bomb, "wb") as fh:
        fh.write(b'{"id": "a", "text": "first"}\n{"id": "big", "text": "')
        for _ in range(64):
            fh.write(b"word " * (1 << 18) + b"....")  # 1 MiB + 4 bytes
        fh.write(b'"}\r\n{"id": "z", "text": "last"}\n')
    report = ReadReport()
    tracemalloc.start()
    try:
        if skip_bad:
            assert [d.doc_id for d in read_documents([bomb], skip_bad=True, report=report)] == ["a", "z"]
        else:
            with pytest.raises(CorpusError, match=rf"{bomb}:2: line longer than 1 MiB"):
                list(read_documents([bomb]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, peak  # the limit and a few blocks, not the 64 MiB line
    says = f"{bomb}:2: line longer than 1 MiB (one document's JSON must fit in that)"
    assert report.skipped_bad == skip_bad and report.bad_lines == ([says] if skip_bad else [])


def test_a_duplicate_id_names_where_the_first_one_is(tmp_path):
    """Across the files of a folder (or of several --corpus), the error names both lines."""
    folder = tmp_path / "shards"
    folder.mkdir()
    first = write_lines(folder / "a.jsonl", ['{"id": "x", "text": "one"}', '{"id": " dup ", "text": "two"}'])
    again = write_lines(folder / "b.jsonl", ['{"id": "y", "text": "three"}', '{"id": "dup", "text": "four"}'])
    with pytest.raises(CorpusError) as err:
        list(read_documents([folder]))
    assert str(err.value).startswith(f"{again}:2: duplicate document id 'dup' (first at {first}:2)")


def test_ndjson_is_read_as_jsonl(tmp_path):
    """NDJSON is JSON Lines under another name: a folder's *.ndjson[.gz] shards are read with its
    *.jsonl ones (they were left out without a word), and one can be given as --corpus."""
    folder = tmp_path / "shards"
    folder.mkdir()
    write_lines(folder / "a.jsonl", ['{"id": "a", "text": "one"}'])
    with gzip.open(folder / "b.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write('{"id": "b", "text": "two"}\n')
    single = write_lines(tmp_path / "c.ndjson", ['{"id": "c", "text": "three"}'])
    assert [d.doc_id for d in read_documents([folder, single])] == ["a", "b", "c"]


def test_a_named_pipe_is_refused_not_read_until_it_hangs(tmp_path):
    """A build reads its corpus twice (its checksum, then its documents); a pipe's second read waited forever."""
    import os

    pipe = tmp_path / "docs.jsonl"
    os.mkfifo(pipe)
    with pytest.raises(CorpusError, match="not a regular file"):
        corpus_files(pipe)


def test_files_that_look_like_documents_but_are_not_read_are_named(tmp_path):
    """A `.json` export, an upper-case `.JSONL` or a compressed `.jsonl.zst` beside the shards is left
    out of the build; `unread_files` names them (index build warns), not other files (notes, hidden
    files, folders), and nothing for a BEIR folder or a single file."""
    folder = tmp_path / "shards"
    (folder / "docs.jsonl.d").mkdir(parents=True)
    write_lines(folder / "a.jsonl", ['{"id": "a", "text": "one"}'])
    for name in ("b.json", "C.JSONL", "d.jsonl.zst", "notes.txt", ".hidden.json"):
        (folder / name).write_text("{}", encoding="utf-8")
    assert [f.name for f in unread_files(folder)] == ["C.JSONL", "b.json", "d.jsonl.zst"]
    assert [d.doc_id for d in read_documents([folder])] == ["a"]
    crawl = tmp_path / "crawl"
    (crawl / "docs").mkdir(parents=True)
    write_lines(crawl / "docs" / "part-00000.jsonl", ['{"id": "p", "text": "page"}'])
    (crawl / "docs" / "part-00001.jsonl.gz.tmp").write_bytes(b"")  # a crawl still writing it
    (crawl / "report.json").write_text("{}", encoding="utf-8")  # the crawl's own, beside docs/
    assert [f.name for f in unread_files(crawl)] == ["part-00001.jsonl.gz.tmp"]
    write_lines(crawl / "own.jsonl", ['{"id": "o", "text": "own"}'])  # now the folder's own are read, not docs/
    assert [f.relative_to(crawl).as_posix() for f in unread_files(crawl)] == [
        "docs/part-00000.jsonl", "docs/part-00001.jsonl.gz.tmp", "report.json"]  # fmt: skip
    beir = tmp_path / "beir"
    beir.mkdir()
    write_lines(beir / "corpus.jsonl", ['{"_id": "x", "text": "t"}'])
    (beir / "notes.json").write_text("{}", encoding="utf-8")
    assert unread_files(beir) == [] and unread_files(folder / "a.jsonl") == [] and unread_files(tmp_path / "none") == []


@pytest.mark.parametrize("skip_bad", [False, True])
def test_a_line_still_being_written_is_not_blamed(tmp_path, skip_bad):
    """A build reading a corpus another process was appending to said its last line was malformed JSON
    (it was half-written), and with --skip-bad left that document out without a word."""
    f = tmp_path / "docs.jsonl"
    second, third = (json.dumps({"id": i, "text": f"document {i}"}) for i in ("b", "c"))
    f.write_text(json.dumps({"id": "a", "text": "first document"}) + "\n", encoding="utf-8")
    docs = read_documents([f], skip_bad=skip_bad)
    assert next(docs).doc_id == "a"  # its block read: the reader is at the end of the file as it was
    with f.open("a", encoding="utf-8") as writer:  # a writer appends a line and half of the next
        writer.write(second + "\n" + third[:12])
    with pytest.raises(CorpusError) as err:
        list(docs)
    assert f"{f}:3" in str(err.value) and "changed while it was read" in str(err.value)
    with f.open("a", encoding="utf-8") as writer:
        writer.write(third[12:] + "\n")
    assert [d.doc_id for d in read_documents([f])] == ["a", "b", "c"]  # read again once written: all


def test_a_last_line_without_its_line_end_is_read(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(json.dumps({"id": "a", "text": "first"}) + "\n" + json.dumps({"id": "b", "text": "second"}), encoding="utf-8")
    assert [d.doc_id for d in read_documents([f])] == ["a", "b"]
