"""The real `drsearch` CLI in subprocesses: bad input ends as one line and exit 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import DATA, REPO, drsearch


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("Loading weights")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("drsearch: error: ")
    assert "Traceback" not in proc.stderr and "java." not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def bm25_index(cranfield_bm25_index):
    return cranfield_bm25_index  # the tests here only read it


def test_build_errors(tmp_path):
    assert_one_line_error(drsearch("index", "build", "--corpus", tmp_path / "missing", "--out", tmp_path / "o"),
                          "missing", "does not exist")  # fmt: skip
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    assert_one_line_error(drsearch("index", "build", "--corpus", bad, "--out", tmp_path / "o", "--no-dense", "-q"),
                          f"{bad}:2", "malformed JSON")  # fmt: skip
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "readme.txt").write_text("x")
    assert_one_line_error(drsearch("index", "build", "--corpus", tmp_path / "wrong", "--out", tmp_path / "o"),
                          "no corpus.jsonl")  # fmt: skip
    assert not (tmp_path / "o" / "current").exists()


def test_unreadable_corpus_directories(tmp_path):
    import os
    import shutil

    prefix = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that bypass file permissions
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux setpriv is needed to test unreadable files as root"
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]

    def build(corpus):
        return subprocess.run([*prefix, sys.executable, "-m", "service.cli", "index", "build", "--corpus", str(corpus),
                               "--out", str(tmp_path / "out"), "--no-dense"],
                              capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip

    crawl = tmp_path / "crawl"  # the crawler's layout: DIR/docs/*.jsonl.gz
    (crawl / "docs").mkdir(parents=True)
    (crawl / "docs" / "part.jsonl").write_text('{"id": "a", "text": "x"}\n')
    for locked, fragments in ((crawl / "docs", ("cannot read corpus path", "Permission denied")),
                              (crawl, ("--corpus", "not readable"))):  # fmt: skip
        locked.chmod(0)
        try:
            proc = build(crawl)
        finally:
            locked.chmod(0o755)
        assert_one_line_error(proc, str(locked), *fragments)
        assert not (tmp_path / "out").exists()


def test_not_a_model_fails_before_any_work(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    proc = drsearch("index", "build", "--corpus", DATA / "cranfield", "--out", tmp_path / "o", "--model", tmp_path / "model")
    assert_one_line_error(proc, "not a sentence-transformers model directory", str(tmp_path / "model"))
    assert not (tmp_path / "o").exists()  # refused before reading the corpus or creating a build


def test_a_build_whose_model_is_gone_says_it_is_the_model_it_was_built_with(tmp_path):
    from backends.faiss.encoder import bundled_model_path
    from tests.text_fixtures import DOCS

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS[:3]))
    model = tmp_path / "models" / "minilm"
    model.parent.mkdir()
    model.symlink_to(bundled_model_path())  # a --model DIR, without copying the bundled one
    drsearch("index", "build", "--corpus", corpus, "--out", tmp_path / "o", "--model", model, "--encoder", "st",
             "-q", check=True)  # fmt: skip
    model.unlink()
    proc = drsearch("search", DOCS[0][2].split()[0], "--index", tmp_path / "o", "--mode", "dense")
    assert_one_line_error(proc, f"the build's query model {model} (recorded at build time by --model) is missing: ",
                          "rebuild the index", "make the model available at that path")  # fmt: skip


def test_hnsw_parameters_are_recorded_and_used(tmp_path):
    from tests.text_fixtures import DOCS

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    drsearch("index", "build", "--corpus", corpus, "--out", tmp_path / "o", "--ann", "auto", "--exact-max", "5",
             "--hnsw-m", "8", "--hnsw-ef-construction", "16", "--hnsw-ef-search", "24", "-q", check=True)  # fmt: skip
    dense = json.loads(drsearch("index", "info", tmp_path / "o", "--json", check=True).stdout)["dense"]
    assert dense["ann"] == "hnsw"  # 12 passages > --exact-max 5
    assert (dense["hnsw"]["m"], dense["hnsw"]["ef_construction"], dense["hnsw"]["ef_search"]) == (8, 16, 24)
    from ranker.pipeline import SearchOptions, SearchPipeline

    pipeline = SearchPipeline.open(tmp_path / "o")
    assert pipeline.dense._ensure_index().hnsw.efSearch == 24  # the served index searches with the recorded value
    assert pipeline.search("yeast dough rising", SearchOptions(mode="dense", k=1))[0].hit.doc_id == "bread"
    pipeline.close()


def test_build_warns_of_files_in_a_corpus_folder_it_does_not_read(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"id": "a", "text": "heat transfer in boundary layers"}\n', encoding="utf-8")
    (folder / "B.JSONL").write_text('{"id": "b", "text": "supersonic flow"}\n', encoding="utf-8")
    (folder / "README.md").write_text("notes", encoding="utf-8")
    out = drsearch("index", "build", "--corpus", folder, "--out", tmp_path / "o", "--no-dense", "-q", check=True)
    assert "1 documents" in out.stdout
    warnings = [line for line in out.stderr.splitlines() if line.startswith("drsearch: warning:")]
    assert warnings == [f"drsearch: warning: {folder}: 1 file(s) not read as documents: B.JSONL (a folder's own *.jsonl "
                        "and *.ndjson shards, either with .gz, are read, else those in its docs/)"], out.stderr  # fmt: skip


def test_build_warns_of_the_shards_of_docs_that_a_folders_own_leave_out(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "c.jsonl").write_text('{"id": "c", "text": "heat transfer"}\n', encoding="utf-8")
    (folder / "a.jsonl").write_text('{"id": "a", "text": "supersonic flow"}\n', encoding="utf-8")
    out = drsearch("index", "build", "--corpus", folder, "--out", tmp_path / "o", "--no-dense", "-q", check=True)
    warnings = [line for line in out.stderr.splitlines() if line.startswith("drsearch: warning:")]
    assert len(warnings) == 1 and f"{folder}: 1 file(s) not read as documents: docs/c.jsonl (" in warnings[0], out.stderr


def test_a_broken_link_among_the_shards_or_a_file_given_twice_is_an_error(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"id": "a", "text": "heat transfer"}\n', encoding="utf-8")
    (folder / "b.jsonl").symlink_to(tmp_path / "gone.jsonl")
    broken = drsearch("index", "build", "--corpus", folder, "--out", tmp_path / "o", "--no-dense", "-q")
    assert_one_line_error(broken, f"{folder / 'b.jsonl'}: a broken symbolic link")
    (folder / "b.jsonl").unlink()
    twice = drsearch("index", "build", "--corpus", folder, "--corpus", folder / "a.jsonl", "--out", tmp_path / "o", "--no-dense", "-q")
    assert_one_line_error(twice, f"{folder / 'a.jsonl'}: corpus file in both --corpus {folder} and --corpus {folder / 'a.jsonl'}")
    assert not (tmp_path / "o").exists()


def test_skip_bad_builds_and_reports(tmp_path):
    bad = tmp_path / "docs.jsonl"
    bad.write_text('{"id": "a", "text": "heat transfer in boundary layers"}\n{oops\n{"id": "c", "text": ""}\n')
    out = drsearch("index", "build", "--corpus", bad, "--out", tmp_path / "o", "--no-dense", "-q", "--skip-bad", check=True)
    assert "1 documents" in out.stdout and "skipped 1 empty, 1 bad" in out.stdout
    info = json.loads(drsearch("index", "info", tmp_path / "o", "--json", check=True).stdout)
    assert info["counts"]["skipped_bad"] == 1 and info["counts"]["bad_lines"][0].startswith(f"{bad}:2")
    # The plain output shows what docs/OPERATIONS.md promises too: bad lines, timings, the authority list's hash.
    plain = drsearch("index", "info", tmp_path / "o", check=True).stdout.splitlines()
    assert f"bad lines   {info['counts']['bad_lines'][0]}" in plain
    timings = info["timings"]
    assert (f"timings     bm25 {timings['bm25_s']} s, checksums {timings['checksums_s']} s, "
            f"read_chunk_store {timings['read_chunk_store_s']} s") in plain
    assert f"authority   sha256 {info['authority_list']['sha256']}  {info['authority_list']['directory']}" in plain


def test_not_an_index_and_newer_format(tmp_path, bm25_index):
    assert_one_line_error(drsearch("search", "heat", "--index", tmp_path), "not a drsearch index")
    assert_one_line_error(drsearch("index", "info", tmp_path / "nope"), "no such index directory")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "manifest.json").write_text(json.dumps({"format_version": 999}))
    assert_one_line_error(drsearch("search", "heat", "--index", newer), "newer than this drsearch supports")


@pytest.mark.parametrize(
    "query, fragment",
    [("", "query is empty"), ("   ", "query is empty"), ("?!... ---", "no searchable terms"),
     ("AND OR", "no searchable terms"), ('"*" : ( \\', "no searchable terms"), ("x" * 10_001, "longer than 10000")],
)  # fmt: skip
def test_bad_queries(bm25_index, query, fragment):
    assert_one_line_error(drsearch("search", query, "--index", bm25_index), fragment)


def test_usage_errors_are_one_line(bm25_index):
    assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "-k", "ten"), "'-k'", "integer")
    assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "--bogus"), "No such option: --bogus")
    assert_one_line_error(drsearch("search", "--index", bm25_index), "Missing argument 'query'")
    assert_one_line_error(drsearch("eval", "--index", bm25_index, "--beir", DATA / "cranfield", "--k0", "0"), "--k0")


def test_bad_options(bm25_index):
    assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "--mode", "fuzzy"), "invalid --mode:", "'bm25', 'dense' or 'hybrid'")
    for mode in ("dense", "hybrid"):
        assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "--mode", mode),
                              "built without the dense leg")  # fmt: skip
        assert_one_line_error(drsearch("eval", "--index", bm25_index, "--beir", DATA / "cranfield", "--mode", mode),
                              "built without the dense leg")  # fmt: skip
    assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "--category", "blogs"), "unknown category 'blogs'")
    assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "--min-tier", "7"), "invalid --min-tier:", "less than or equal to 3")
    assert_one_line_error(drsearch("search", "heat", "--index", bm25_index, "--authority-weight", "-1"), "invalid --authority-weight:")


def test_query_syntax_is_plain_text(bm25_index):
    def hits(q):
        out = drsearch("search", q, "--index", bm25_index, "--json", "-k", "5", check=True)
        return [(h["passage_id"], h["scores"]["bm25"]) for h in json.loads(out.stdout)["hits"]]

    plain = hits("title heat transfer and boundary or layer")
    assert plain
    assert hits('title:"heat transfer" AND (boundary* OR layer\\)') == plain
    assert hits("heat~2 transfer^4 [boundary TO layer]") == hits("heat 2 transfer 4 boundary to layer")


def test_search_output_and_info(bm25_index):
    out = drsearch("search", "boundary layer transition", "--index", bm25_index, "-k", "3", check=True)
    assert out.stdout.count("\n") >= 6 and " 1. " in out.stdout
    info = drsearch("index", "info", bm25_index, check=True).stdout
    assert "documents   1398" in info and "k1=0.9 b=0.4" in info


def test_malformed_authority_list_refuses_to_search(tmp_path, bm25_index):
    bad = tmp_path / "list"
    bad.mkdir()
    (bad / "government.csv").write_text("domain,name,category,country,tier,note\nnasa.gov,NASA,government,us,7,space\n")
    proc = drsearch("search", "heat", "--index", bm25_index, env={"DRSEARCH_AUTHORITY_LIST": str(bad)})
    assert_one_line_error(proc, "government.csv:2", "tier")
    check = drsearch("authority", "check", "--list", bad)
    assert check.returncode != 0 and "government.csv:2" in check.stdout + check.stderr


def test_manifest_records_authority_list(bm25_index):
    from ranker.authority import AuthorityList

    info = json.loads(drsearch("index", "info", bm25_index, "--json", check=True).stdout)
    assert info["authority_list"]["sha256"] == AuthorityList.load().content_hash


def test_search_shows_each_text_once_unless_asked_and_info_says_whether_it_can(tmp_path):
    """Copies of one paragraph on several pages: `search` shows it once (`--no-dedupe-text`: every
    copy); `index info` says whether the build collapses copies (builds before text_hash.npy do not)."""
    from tests.text_fixtures import FUND_QUERY, press_release_docs

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in press_release_docs()))
    root = tmp_path / "idx"
    drsearch("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "--chunk-words", "40", "--quiet",
             check=True)  # fmt: skip

    def snippets(*flags: str) -> list[str]:
        out = drsearch("search", FUND_QUERY, "--index", root, "-k", "4", "--json", *flags, check=True).stdout
        return [hit["snippet"] for hit in json.loads(out)["hits"]]

    assert len(set(snippets())) == 4
    assert len(set(snippets("--no-dedupe-text"))) == 1
    assert "text copies shown once in a result list" in drsearch("index", "info", root, check=True).stdout
    next(root.glob("builds/*/columns/text_hash.npy")).unlink()
    assert "text copies not collapsed (built before" in drsearch("index", "info", root, check=True).stdout
    assert len(set(snippets())) == 1
