from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from indexer import builds, layout
from indexer.chunker import ChunkSettings, chunk_document
from indexer.errors import IndexFormatError
from indexer.schema import Document
from indexer.store import Store, StoreWriter


def test_store_round_trip(tmp_path):
    docs = [
        Document("d1", "First para.\n\nSecond para.", title="One", url="https://stats.gov.cn/x", domain="stats.gov.cn",
                 published="2024-01-02", metadata={"k": [1, "é"]}),
        Document("d2", "Only text.", title="Two"),
    ]  # fmt: skip
    writer = StoreWriter(tmp_path / "s.sqlite")
    for d in docs:
        writer.add(d, chunk_document(d, ChunkSettings(target_words=2)))
    writer.close()
    store = Store(tmp_path / "s.sqlite")
    assert store.counts() == (2, 3)
    doc = store.document("d1")
    assert doc["metadata"] == {"k": [1, "é"]} and doc["published"] == "2024-01-02"
    assert [p["passage_id"] for p in doc["passages"]] == ["d1#0", "d1#1"]
    row = store.passage("d1#1")
    assert (row.text, row.title, row.domain) == ("Second para.", "One", "stats.gov.cn")
    assert doc["text"][row.start : row.end] == row.text
    assert [r[1] for r in store.iter_passages()] == ["d1#0", "d1#1", "d2#0"]
    assert store.document("nope") is None and store.passage("nope") is None


def test_documents_are_found_by_any_form_of_their_url(tmp_path):
    import shutil
    import sqlite3

    docs = [Document("gov", "Text one.", url="https://www.stats.gov.cn/tjsj/zxfb/?b=2&a=1"),
            Document("plain", "Text two.", url="http://example.org/report"), Document("none", "No URL.")]  # fmt: skip
    writer = StoreWriter(tmp_path / "s.sqlite")
    for d in docs:
        writer.add(d, chunk_document(d, ChunkSettings(target_words=5)))
    writer.close()
    variants = {
        "gov": ["HTTPS://WWW.Stats.Gov.CN:443/tjsj//zxfb/?a=1&b=2&utm_source=feed#part", "https://www.stats.gov.cn./tjsj/zxfb/?b=2&a=1"],
        "plain": ["http://EXAMPLE.org:80/report#top", "http://reader@example.org/report?fbclid=abc"],
        None: ["https://example.org/report", "http://example.org/report/other", "http://example.org:8080/report"],
    }  # fmt: skip
    db = sqlite3.connect(tmp_path / "s.sqlite")
    plan = db.execute("EXPLAIN QUERY PLAN SELECT doc_id FROM documents WHERE url_key = ? ORDER BY idx LIMIT 1", ("x",))
    assert "documents_by_url_key" in " ".join(str(row) for row in plan)  # looked up through the index, not a scan
    db.close()
    old = tmp_path / "old.sqlite"  # a store written before the url_key column
    shutil.copy(tmp_path / "s.sqlite", old)
    db = sqlite3.connect(old)
    db.execute("DROP INDEX documents_by_url_key")
    db.execute("ALTER TABLE documents DROP COLUMN url_key")
    db.commit()
    db.close()
    for store in (Store(tmp_path / "s.sqlite"), Store(old)):
        for doc_id, urls in variants.items():
            for url in urls:
                assert store.doc_id_for_url(url) == doc_id, (store.path.name, url)
        assert store.document("gov")["url"] == docs[0].url and "url_key" not in store.document("gov")


def test_manifest_and_resolution_errors(tmp_path):
    with pytest.raises(IndexFormatError, match="no such index"):
        layout.resolve_build(tmp_path / "missing")
    with pytest.raises(IndexFormatError, match="not a drsearch index"):
        layout.resolve_build(tmp_path)
    build = layout.new_build_dir(tmp_path)
    with pytest.raises(IndexFormatError, match="no complete build"):
        layout.resolve_build(tmp_path)
    layout.write_manifest(build, {"format_version": layout.FORMAT_VERSION, "version": build.name})
    layout.switch_current(tmp_path, build)
    assert layout.resolve_build(tmp_path) == build.resolve()
    (build / "manifest.json").write_text(json.dumps({"format_version": layout.FORMAT_VERSION + 1}))
    with pytest.raises(IndexFormatError, match="newer than this drsearch supports"):
        layout.resolve_build(tmp_path)
    (build / "manifest.json").write_text(json.dumps({"format_version": layout.FORMAT_VERSION - 1}))
    with pytest.raises(IndexFormatError, match="older than this drsearch reads.*rebuild"):
        layout.resolve_build(tmp_path)
    (build / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="unreadable manifest"):
        layout.resolve_build(build)


def test_the_current_link_resolves_as_its_root(tmp_path):
    """`ROOT/current` names whatever build `current` points at now; a build folder names itself."""
    a, b = layout.new_build_dir(tmp_path), layout.new_build_dir(tmp_path)
    for build in (a, b):
        layout.write_manifest(build, {"format_version": layout.FORMAT_VERSION, "version": build.name})
    layout.switch_current(tmp_path, a)
    assert layout.resolve_build(tmp_path / "current") == a.resolve()
    layout.switch_current(tmp_path, b)
    assert layout.resolve_build(tmp_path / "current") == b.resolve() == layout.resolve_build(tmp_path)
    assert layout.resolve_build(a) == a


def test_switch_current_is_a_single_rename(tmp_path):
    a, b = layout.new_build_dir(tmp_path), layout.new_build_dir(tmp_path)
    layout.switch_current(tmp_path, a)
    layout.switch_current(tmp_path, b)
    assert os.readlink(tmp_path / "current") == os.path.join("builds", b.name)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".current")] == []


@pytest.mark.slow
def test_killed_build_leaves_previous_index_intact(tmp_path, cranfield_bm25_index):
    from tests.conftest import DATA, drsearch

    corpus = DATA / "cranfield"
    root = tmp_path / "idx"
    shutil.copytree(cranfield_bm25_index, root, symlinks=True)  # the previous index: a complete build of the same corpus
    before = os.readlink(root / "current")
    # Start a second build and kill it while it is still working (before its manifest exists).
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "index", "build", "--corpus", str(corpus), "--out", str(root), "--no-dense"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline and len(list((root / "builds").iterdir())) < 2:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.readlink(root / "current") == before
    assert [b.state for b in builds.list_builds(root)].count("complete") == 1  # the killed build never got a manifest
    out = drsearch("search", "boundary layer", "--index", root, "--mode", "bm25", "--json", check=True)
    assert len(json.loads(out.stdout)["hits"]) == 10


def test_manifest_records_how_the_build_was_made(tmp_path):
    import importlib.metadata

    import indexer
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"id": "a", "title": "A", "text": "heat transfer"}\n{"id": "b", "text": "  "}\n')
    settings = BuildSettings(chunk_words=50, overlap_words=5, bm25_k1=1.2, bm25_b=0.75, quiet=True,
                             dense=DenseSettings(enabled=False))  # fmt: skip
    first = build_index([corpus], tmp_path / "idx", settings).manifest.as_json()
    on_disk = layout.read_manifest(layout.resolve_build(tmp_path / "idx"))
    assert on_disk == first
    assert first["format_version"] == layout.FORMAT_VERSION and first["drsearch_version"] == indexer.__version__
    assert time.strptime(first["built_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert first["corpus"]["paths"] == [str(corpus.resolve())] and len(first["corpus"]["sha256"]) == 64
    assert (first["counts"]["documents"], first["counts"]["passages"], first["counts"]["skipped_empty"]) == (1, 1, 1)
    assert first["chunking"] == {"target_words": 50, "overlap_words": 5}
    assert (first["bm25"]["backend"], first["bm25"]["k1"], first["bm25"]["b"]) == ("lucene", 1.2, 0.75)
    assert first["bm25"]["documents"] == 1 and set(first["timings"]) == {"read_chunk_store_s", "bm25_s", "checksums_s"}
    assert first["libraries"]["pyserini"] == importlib.metadata.version("pyserini") and first["libraries"]["anserini"]
    assert first["dense"] is None
    corpus.write_text('{"id": "a", "title": "A", "text": "heat transfer!"}\n')
    second = build_index([corpus], tmp_path / "idx", settings).manifest.as_json()
    assert second["corpus"]["sha256"] != first["corpus"]["sha256"] and second["version"] != first["version"]
    assert layout.resolve_build(tmp_path / "idx").name == second["version"]


def test_the_corpus_checksum_is_of_the_bytes_the_build_read(tmp_path, monkeypatch):
    """It was taken after indexing, from a second read: a line appended meanwhile was in the checksum and
    not in the index, and a checksum comparison would skip the rebuild that was needed."""
    import hashlib

    import indexer.build
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"id": "a", "text": "heat transfer"}\n')
    read = indexer.build.read_documents

    def appended_after_reading(*args, **kwargs):
        yield from read(*args, **kwargs)
        with corpus.open("a") as more:
            more.write('{"id": "late", "text": "written while the build ran"}\n')

    monkeypatch.setattr(indexer.build, "read_documents", appended_after_reading)
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    manifest = build_index([corpus], tmp_path / "idx", settings).manifest.as_json()
    indexed = b'{"id": "a", "text": "heat transfer"}\n'
    assert manifest["corpus"]["sha256"] == hashlib.sha256(b"docs.jsonl" + indexed).hexdigest()
    assert manifest["counts"]["documents"] == 1


def test_an_index_of_an_older_format_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    """A format-1 build (written before the typed leg sections): search and index info stop with one line
    naming the build and the command to rebuild it from the corpus its manifest recorded."""
    from tests.conftest import drsearch

    root = tmp_path / "my index"
    build = layout.new_build_dir(root)
    corpus = [str(tmp_path / "crawl one"), "/data/notes.jsonl"]
    layout.write_manifest(build, {"format_version": 1, "version": build.name, "corpus": {"paths": corpus}})
    layout.switch_current(root, build)
    with pytest.raises(IndexFormatError) as err:
        layout.resolve_build(root)
    assert err.value.message.endswith(
        f"rebuild it: drsearch index build --corpus '{corpus[0]}' --corpus {corpus[1]} --out '{root}'"
    )
    for args in (("search", "x", "--index", str(root)), ("index", "info", str(root))):
        proc = drsearch(*args)
        assert proc.returncode == 2 and proc.stdout == "", args
        assert proc.stderr.count("\n") == 1 and "index format 1 is older" in proc.stderr, args
        assert f"--corpus /data/notes.jsonl --out '{root}'" in proc.stderr, args


def test_a_corpus_domain_is_stored_as_the_host_filters_see(tmp_path):
    """A `domain` written as a URL or in capitals is shown with hits as the host that domain filters and
    the authority list match (`host_of`), as a domain taken from the URL is."""
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in [
        {"id": "given", "text": "alpine glaciers", "domain": "https://WWW.Climate-Institute.example.org/"},
        {"id": "from-url", "text": "alpine glaciers", "url": "https://Data.Example.org:443/x"},
        {"id": "not-a-host", "text": "alpine glaciers", "domain": "our lab"},
    ]))  # fmt: skip
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    build = build_index([corpus], tmp_path / "idx", settings).build_dir
    store = Store(build / layout.STORE)
    assert [store.document(i)["domain"] for i in ("given", "from-url", "not-a-host")] == [
        "www.climate-institute.example.org", "data.example.org", "our lab"]
