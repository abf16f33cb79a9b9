"""The real `drsearch` CLI on out-of-range options and bad input files: one line on stderr and a
non-zero exit, never a traceback, and nothing already stored is lost."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import drsearch
from tests.service.test_cli import assert_one_line_error
from tests.text_fixtures import DOCS


def write_docs(path, docs=DOCS) -> None:
    path.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))


@pytest.fixture(scope="module")
def tiny_index(tiny_bm25_root):
    """An index ROOT over the twelve one-topic documents, BM25 only: the session's, which the tests here
    only read (a test that damages a build damages a copy)."""
    return tiny_bm25_root


@pytest.mark.parametrize("value", ["-5", "0", "39", "2001"])
def test_snippet_chars_has_the_api_bounds(tiny_index, value):
    proc = drsearch("search", "volcano", "--index", tiny_index, "-k", "1", f"--snippet-chars={value}")
    assert_one_line_error(proc, "'--snippet-chars'", "40" if int(value) < 40 else "2000")


def test_snippet_chars_at_the_bounds(tiny_index):
    for value in ("40", "2000"):
        hits = json.loads(drsearch("search", "volcano", "--index", tiny_index, "-k", "1", "--json",
                                   "--snippet-chars", value, check=True).stdout)["hits"]  # fmt: skip
        assert hits[0]["doc_id"] == "volcano" and 0 < len(hits[0]["snippet"]) <= int(value) + 2  # + the two "…"


def test_k_at_the_api_bound(tiny_index):
    hits = json.loads(drsearch("search", "volcano", "--index", tiny_index, "-k", "100", "--json", check=True).stdout)["hits"]
    assert hits[0]["doc_id"] == "volcano"  # 100 itself is accepted, as by the API


@pytest.mark.parametrize("command", [["search", "volcano"], ["fetch", "volcano"], ["serve"], ["mcp"]])
def test_negative_max_query_chars(tiny_index, command):
    proc = drsearch(*command, "--index", tiny_index, "--max-query-chars", "-1", timeout=60)
    assert_one_line_error(proc, "'--max-query-chars'", "greater than or equal to 0")


def test_max_query_chars_zero_is_no_cap(tiny_index):
    out = drsearch("search", "volcano " * 2000, "--index", tiny_index, "-k", "1", "--max-query-chars", "0", check=True)
    assert "volcano" in out.stdout


def write_beir(root, queries: list[bytes], qrels: list[bytes]):
    (root / "qrels").mkdir(parents=True)
    (root / "queries.jsonl").write_bytes(b"".join(line + b"\n" for line in queries))
    (root / "qrels" / "test.tsv").write_bytes(b"".join(line + b"\n" for line in [b"query-id\tcorpus-id\tscore", *qrels]))
    return root


GOOD_QUERIES = [b'{"_id": "q1", "text": "magma lava eruption"}', b'{"_id": "q2", "text": "yeast dough"}']
GOOD_QRELS = [b"q1\tvolcano\t1", b"q2\tbread\t1"]


@pytest.mark.parametrize(
    "queries, qrels, where, fragments",
    [([GOOD_QUERIES[0], b'{"_id": "q2", "text": "caf\xe9"}'], GOOD_QRELS, "queries.jsonl:2", ["not UTF-8"]),
     (GOOD_QUERIES, [GOOD_QRELS[0], b"q2\tbr\xffead\t1"], "test.tsv:3", ["not UTF-8"]),
     ([GOOD_QUERIES[0], b'{"_id": "q2", "text": 12345}'], GOOD_QRELS, "queries.jsonl:2", ["query 'q2'", "must be a string"]),
     ([GOOD_QUERIES[0], b'{"_id": "q2", "text": "???"}'], GOOD_QRELS, "queries.jsonl:2", ["query 'q2'", "no searchable terms"]),
     ([GOOD_QUERIES[0], b'{"_id": "q2", "text": "AND OR the"}'], GOOD_QRELS, "queries.jsonl:2", ["query 'q2'", "no searchable terms"]),
     # a quote is part of a TSV field, so the bad value is named on its own line; a huge field is no CSV limit
     (GOOD_QUERIES, [b'q1	"volcano	1', b"q2	bread	x"], "test.tsv:3", ["relevance 'x'"]),
     (GOOD_QUERIES, [b"q1	" + b"v" * 200_000 + b"	1", b"q2	bread	x"], "test.tsv:3", ["relevance 'x'"]),
     # the last of two would have replaced the first, and the scores been another query's
     ([*GOOD_QUERIES, b'{"_id": "q1", "text": "bread"}'], GOOD_QRELS, "queries.jsonl:3", ["duplicate query id 'q1' (first at line 1)"]),
     (GOOD_QUERIES, [*GOOD_QRELS, b"q1\tvolcano\t0"], "test.tsv:4", ["query 'q1', document 'volcano' judged 0 here and 1 at line 2"]),
     (GOOD_QUERIES, [], "test.tsv", ["no judgements"]),
     ([b'{"_id": "q9", "text": "bread"}'], GOOD_QRELS, "test.tsv", ["no query judged here has a line in queries.jsonl (e.g. 'q1')"]),
     # pytrec_eval keeps grades in C ints: this one was a traceback, 2**32 silently 0
     (GOOD_QUERIES, [GOOD_QRELS[0], b"q2	bread	99999999999999999999"], "test.tsv:3", ["relevance 99999999999999999999 is out of range"]),
     (GOOD_QUERIES, [GOOD_QRELS[0], b"q2	bread	4294967296"], "test.tsv:3", ["relevance 4294967296 is out of range"]),
     # BEIR columns written with spaces (an id with a space in it) were read as TREC's `qid 0 docid rel`
     (GOOD_QUERIES, [GOOD_QRELS[0], b"q2 bread loaf 1"], "test.tsv:3", ["second field is its iteration (0), got 'bread'"]),
     (GOOD_QUERIES, [GOOD_QRELS[0], b"q2 bread 1"], "test.tsv:3", ["got 3 space-separated fields"]),
     ([GOOD_QUERIES[0], b'{"_id": null, "text": "yeast dough"}'], GOOD_QRELS, "queries.jsonl:2", ["an id is a string or an integer"])],
    ids=["queries-not-utf8", "qrels-not-utf8", "text-not-a-string", "only-symbols", "only-stopwords", "qrels-quote",
         "qrels-huge-field", "duplicate-query", "conflicting-judgements", "no-judgements", "no-judged-query",
         "grade-too-large", "grade-past-32-bits", "beir-with-spaces", "three-fields-with-spaces", "null-query-id"],
)  # fmt: skip
def test_eval_names_the_bad_line(tmp_path, tiny_index, queries, qrels, where, fragments):
    beir = write_beir(tmp_path / "beir", queries, qrels)
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", beir, "-q"), f"{beir}/", where, *fragments)


def test_eval_of_a_missing_folder_says_so(tmp_path, tiny_index):
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", tmp_path / "nope", "-q"), "nope: no such folder")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", tmp_path / "file", "-q"), "file: not a folder")


def test_eval_reads_query_ids_under_id_as_a_corpus_does(tmp_path, tiny_index):
    beir = write_beir(tmp_path / "beir", [line.replace(b'"_id"', b'"id"') for line in GOOD_QUERIES], GOOD_QRELS)
    mode, ndcg, *_, queries = drsearch("eval", "--index", tiny_index, "--beir", beir, "-q", check=True).stdout.splitlines()[1].split()
    assert (mode, ndcg, queries) == ("bm25", "1.0000", "2")
    write_beir(tmp_path / "no-id", [b'{"text": "magma lava eruption"}'], GOOD_QRELS)
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", tmp_path / "no-id", "-q"),
                          "queries.jsonl:1", "needs _id (or id) and text")  # fmt: skip


def test_eval_says_which_judged_queries_it_left_out(tmp_path, tiny_index):
    """A judged query id with no line in queries.jsonl (a typo, another id scheme) cannot be searched:
    eval goes on with the others and says so in one line, instead of scoring fewer queries silently."""
    beir = write_beir(tmp_path / "beir", GOOD_QUERIES, [*GOOD_QRELS, b"Q1\tvolcano\t1", b"q9\tbread\t1"])
    proc = drsearch("eval", "--index", tiny_index, "--beir", beir, "-q", check=True)
    assert proc.stdout.splitlines()[1].split()[-1] == "2"
    (line,) = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("drsearch: warning: 2 judged queries of ") and "test.tsv" in line and " have no line in " in line
    assert "queries.jsonl and are left out (first: 'Q1')" in line


def test_eval_reads_trec_qrels_and_a_trailing_tab(tmp_path, tiny_index):
    expected = drsearch("eval", "--index", tiny_index, "--beir", write_beir(tmp_path / "beir", GOOD_QUERIES, GOOD_QRELS),
                        "-q", "--json", check=True).stdout  # fmt: skip
    for name, qrels in (("trec", [b"q1 0 volcano 1", b"q2	0	bread	1"]), ("tab", [b"q1	volcano	1	", b"q2	bread	1"])):
        beir = write_beir(tmp_path / name, GOOD_QUERIES, qrels)
        assert drsearch("eval", "--index", tiny_index, "--beir", beir, "-q", "--json", check=True).stdout == expected


def test_eval_names_all_among_its_modes(tiny_index, tmp_path):
    beir = write_beir(tmp_path / "beir", GOOD_QUERIES, GOOD_QRELS)
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", beir, "--mode", "foo", "-q"),
                          "unknown mode 'foo' (expected one of: bm25, dense, hybrid, all)")  # fmt: skip


def test_eval_says_which_relevant_documents_the_index_lacks(tmp_path, tiny_index):
    """A document judged relevant that the index does not hold (a typo in its id, a corpus file left
    out of the build) counts as not found: eval says so in one line instead of a silently lower score."""
    beir = write_beir(tmp_path / "beir", GOOD_QUERIES, [*GOOD_QRELS, b"q1\tno-such-doc\t1", b"q2\tnot-relevant\t0"])
    proc = drsearch("eval", "--index", tiny_index, "--beir", beir, "-q", check=True)
    (line,) = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("drsearch: warning: 1 document judged relevant in ") and "test.tsv" in line
    assert line.endswith("is not in the index, so it counts as not found (first: 'no-such-doc')")


def test_eval_k0_bound(tmp_path, tiny_index):
    beir = write_beir(tmp_path / "beir", GOOD_QUERIES, GOOD_QRELS)
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", beir, "--k0", "20000"),
                          "'--k0'", "less than or equal to 10000")  # fmt: skip
    assert_one_line_error(drsearch("eval", "--index", tiny_index, "--beir", beir, "--authority-weight", "2"),
                          "invalid --authority-weight:")  # fmt: skip
    report = json.loads(drsearch("eval", "--index", tiny_index, "--beir", beir, "--k0", "10000", "--json", check=True).stdout)
    assert report["bm25"]["ndcg@10"] == 1.0  # the bound itself is accepted


def test_crawl_bad_set_value_and_out_that_is_a_file(tmp_path):
    domains = tmp_path / "domains.txt"
    domains.write_text("example.org\n")
    proc = drsearch("crawl", "--out", tmp_path / "out", "--domains", domains, "--set", "DOWNLOAD_DELAY=abc", timeout=60)
    assert_one_line_error(proc, "--set", "DOWNLOAD_DELAY must be a finite number", "'abc'")
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    proc = drsearch("crawl", "--out", tmp_path / "file", "--domains", domains, timeout=60)
    assert_one_line_error(proc, "--out", str(tmp_path / "file"), "not a directory")
    proc = drsearch("crawl", "--out", tmp_path / "file" / "sub", "--domains", domains, "--quiet", timeout=60)
    assert_one_line_error(proc, "--out", str(tmp_path / "file" / "sub"), "Not a directory")
    assert (tmp_path / "file").read_text() == "x"


def test_fetch_exits_1_when_an_item_failed(tiny_index):
    proc = drsearch("fetch", "https://example.com/", "volcano", "--index", tiny_index, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "error host_not_allowed" in proc.stdout and "Volcanoes" in proc.stdout  # both items still printed
    assert "Traceback" not in proc.stderr
    as_json = drsearch("fetch", "https://example.com/", "--index", tiny_index, "--json", timeout=120)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["results"][0]["error"]["code"] == "host_not_allowed"
    assert drsearch("fetch", "volcano", "--index", tiny_index, check=True).returncode == 0


@pytest.mark.parametrize(("args", "fragment"), [
    (["index", "build", "--dense-index", "foo"], "invalid --dense-index: "),
    (["index", "build", "--ann", "foo"], "invalid --ann: "),  # the alias typed
    (["index", "build", "--k1", "0"], "invalid --k1: "),
    (["index", "build", "--k1", "inf"], "invalid --k1: Input should be a finite number"),  # not 'greater than 0'
    (["search", "x", "--authority-weight", "nan"], "invalid --authority-weight: Input should be a finite number"),
    (["index", "build", "--dense-languages", "en,english"], "invalid --dense-languages: "),
    (["index", "encode", "--chunk-words", "-1"], "invalid --chunk-words: "),
    (["search", "x", "--include-domain", "http://"], "invalid --include-domain: "),
    (["search", "x", "--languages", "english"], "invalid --languages: "),
    (["search", "x", "--languages", "en,xx"], "invalid --languages: not a language code: 'xx' (ISO 639-1 or 639-3"),
    (["index", "build", "--dense-languages", "en,jp"], "invalid --dense-languages: not a language code: 'jp' ("),
    (["index", "build", "--no-dense", "--dense-languages", "en"], "--dense-languages cannot be used with --no-dense"),
    (["index", "build", "--dense-languages=zh", "--no-dense"], "--dense-languages cannot be used with --no-dense"),
    (["search", "x", "--country", "uk"], "invalid --country: not a country code: 'uk' (ISO 3166-1 alpha-2, int or eu); did you mean gb?"),
    (["search", "x", "--countries", "us,zz"], "invalid --countries: not a country code: 'zz' (ISO 3166-1 alpha-2, int or eu)"),
    (["search", "x", "--category", "blogs"], "invalid --category: "),
    (["search", "x", "-k", "0"], "invalid -k: must be between 1 and 100, got 0"),
    (["search", "x", "-k", "101"], "invalid -k: must be between 1 and 100, got 101"),
    (["search", "x", "--k", "10000"], "invalid --k: must be between 1 and 100, got 10000"),  # the long form typed
    (["search", "x", "--k", "-1"], "invalid --k: must be between 1 and 100, got -1"),
    (["eval", "--beir", "beir", "--fusion", "magic"], "invalid --fusion: "),
    (["serve", "--workers", "0"], "invalid --workers: "),
    (["fetch", "volcano", "--max-chars", "0"], "invalid --max-chars: "),
    (["crawl", "--max-depth", "-1"], "'--max-depth'"),
])  # fmt: skip
def test_bad_flag_values_name_the_flag_as_typed(tmp_path, args, fragment):
    place = ["--corpus", tmp_path / "docs.jsonl", "--out", tmp_path / "o"] if args[0] == "index" else (
        ["--out", tmp_path / "o", "--domains", tmp_path / "d.txt"] if args[0] == "crawl" else ["--index", tmp_path])
    assert_one_line_error(drsearch(*args, *place, timeout=60), fragment)  # refused before any file is read


@pytest.mark.parametrize("args", [
    ["index", "build", "--corpus", "{docs}", "--out", ""], ["index", "build", "--corpus", "", "--out", "{out}"],
    ["index", "encode", "--corpus", "{docs}", "--out", " "], ["search", "x", "--index", ""], ["index", "info", ""],
    ["index", "prune", ""], ["eval", "--index", "{index}", "--beir", ""], ["authority", "lookup", "cdc.gov", "--list", ""],
    ["crawl", "--out", "", "--domains", "{docs}"],
])  # fmt: skip
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(tmp_path, tiny_index, args):
    """`--out "$OUT"` with OUT unset: Path("") is ".", where a build would have written an index."""
    write_docs(tmp_path / "docs.jsonl")
    values = {"docs": tmp_path / "docs.jsonl", "out": tmp_path / "o", "index": tiny_index}
    assert_one_line_error(drsearch(*(a.format(**values) for a in args), timeout=60), "empty path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl"]


def test_out_refuses_the_builds_folder_of_an_index(tmp_path, tiny_index):
    """A build there nested a second index among the builds, which `index list` showed as a broken one."""
    write_docs(tmp_path / "docs.jsonl")
    before = sorted(p.name for p in (tiny_index / "builds").iterdir())
    proc = drsearch("index", "build", "--corpus", tmp_path / "docs.jsonl", "--out", tiny_index / "builds", "--no-dense", "-q")
    assert_one_line_error(proc, "--out must be an index ROOT, not its builds folder", f"(give {tiny_index})")
    assert sorted(p.name for p in (tiny_index / "builds").iterdir()) == before


def test_dense_languages_with_no_dense_builds_nothing(tmp_path):
    write_docs(tmp_path / "docs.jsonl")
    proc = drsearch("index", "build", "--corpus", tmp_path / "docs.jsonl", "--out", tmp_path / "o", "--no-dense",
                    "--dense-languages", "en,zh", "-q")  # fmt: skip
    assert_one_line_error(proc, "--dense-languages cannot be used with --no-dense", "index build --help")
    assert not (tmp_path / "o").exists()


def test_iso_639_3_and_special_codes_are_accepted(tiny_index):
    out = drsearch("search", "volcano", "--index", tiny_index, "--languages", "haw,und,zxx,mul,cmn", "--country",
                   "gb,int,eu", "--json", check=True)  # fmt: skip
    assert json.loads(out.stdout)["hits"] == []  # valid filters that no document of this index passes


@pytest.mark.parametrize("command", [["index", "build"], ["index", "encode"]])
def test_bad_encoder_names_the_choices(tmp_path, command):
    write_docs(tmp_path / "docs.jsonl")
    proc = drsearch(*command, "--corpus", tmp_path / "docs.jsonl", "--out", tmp_path / "o", "-q", "--encoder", "foo")
    assert_one_line_error(proc, "invalid --encoder: ", "'auto', 'st', 'onnx', 'onnx-int8' or 'st-bf16'", "got 'foo'")
    assert "literal[" not in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ['"2"', "2.0", "true", "null"])
def test_format_version_not_an_integer(tmp_path, value):
    (tmp_path / "manifest.json").write_text('{"format_version": %s}' % value)
    for proc in (drsearch("search", "heat", "--index", tmp_path), drsearch("index", "info", tmp_path)):
        assert_one_line_error(proc, "manifest.json", f"format_version must be an integer, got {value}")
        assert "newer" not in proc.stderr


def test_failed_build_leaves_no_partial_build(tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    write_docs(good)
    write_docs(bad, DOCS[:3])
    with open(bad, "a") as fh:
        fh.write('{"id": "x", "text": "broken\n')
    root = tmp_path / "idx"
    assert_one_line_error(drsearch("index", "build", "--corpus", bad, "--out", root, "--no-dense", "-q"), f"{bad}:4")
    assert os.listdir(root / "builds") == []  # a failed first build: nothing left, no `current`
    drsearch("index", "build", "--corpus", good, "--out", root, "--no-dense", "-q", check=True)
    live = sorted(os.listdir(root / "builds"))
    current = os.readlink(root / "current")
    for _ in range(2):
        assert_one_line_error(drsearch("index", "build", "--corpus", bad, "--out", root, "--no-dense", "-q"), f"{bad}:4")
    assert sorted(os.listdir(root / "builds")) == live and os.readlink(root / "current") == current
    out = drsearch("search", "magma lava", "--index", root, "-k", "1", "--json", check=True)
    assert json.loads(out.stdout)["hits"][0]["doc_id"] == "volcano"


def _damaged_copy(tmp_path, tiny_index, damage: str):
    """A copy of tiny_index's build with one file damaged as `damage` says; returns (build, the damaged file)."""
    import shutil

    build = tmp_path / "build"
    shutil.copytree(os.path.realpath(tiny_index / "current"), build)
    store = build / "store.sqlite"
    if damage == "garbage-store":
        store.write_bytes(b"garbage\n")
        return build, store
    if damage == "truncated-store":
        os.truncate(store, store.stat().st_size // 2)
        return build, store
    if damage == "store-of-another-build":
        write_docs(tmp_path / "three.jsonl", DOCS[:3])
        drsearch("index", "build", "--corpus", tmp_path / "three.jsonl", "--out", tmp_path / "other", "--no-dense", "-q", check=True)
        shutil.copyfile(tmp_path / "other" / "current" / "store.sqlite", store)
        return build, store
    if damage == "truncated-ids":
        os.truncate(build / "columns" / "ids.bin", 3)
        return build, build / "columns"
    assert damage == "truncated-segment"
    segment = max((build / "lucene").glob("_*.fdt"), key=lambda p: p.stat().st_size)
    os.truncate(segment, 10)
    return build, build / "lucene"


@pytest.mark.parametrize(
    "damage, fragments",
    [("garbage-store", ["store: DatabaseError: file is not a database"]),
     ("truncated-store", ["store: DatabaseError: database disk image is malformed"]),
     ("store-of-another-build", ["store: has 3 documents, the manifest says 12"]),
     ("truncated-ids", ["passage columns disagree: ids.bin has 3 bytes"]),
     ("truncated-segment", ["lucene: EOFException", ".fdt"])],
)  # fmt: skip
def test_search_refuses_a_damaged_build_in_one_line(tmp_path, tiny_index, damage, fragments):
    build, damaged = _damaged_copy(tmp_path, tiny_index, damage)
    proc = drsearch("search", "magma lava", "--index", build, "--mode", "bm25", timeout=120)
    assert_one_line_error(proc, f"drsearch: error: {damaged}: ", *fragments)
    out = drsearch("search", "magma lava", "--index", tiny_index, "-k", "1", "--json", check=True)  # the original is intact
    assert json.loads(out.stdout)["hits"][0]["doc_id"] == "volcano"


def test_a_root_whose_current_is_gone_or_a_file_says_so(tmp_path, tiny_index):
    """It said 'no complete build yet (no current pointer)', and 'unreadable manifest: Not a directory'."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(tiny_index, root, symlinks=True)
    target = os.readlink(root / "current")
    shutil.rmtree(root / target)
    assert_one_line_error(drsearch("search", "lava", "--index", root, timeout=60),
                          f"{root}: 'current' points to {target}, which is gone", f"drsearch index use {root} NAME")  # fmt: skip
    (root / "current").unlink()
    (root / "current").write_text(target + "\n")
    assert_one_line_error(drsearch("search", "lava", "--index", root, timeout=60),
                          f"{root}/current: is a file, not a link to a build")  # fmt: skip


def test_eval_fetch_and_mcp_refuse_a_damaged_build_in_one_line(tmp_path, tiny_index):
    build, lucene = _damaged_copy(tmp_path, tiny_index, "truncated-segment")
    beir = write_beir(tmp_path / "beir", GOOD_QUERIES, GOOD_QRELS)
    for proc in (drsearch("eval", "--index", build, "--beir", beir, "-q", timeout=120),
                 drsearch("fetch", "volcano", "--index", build, timeout=120),
                 drsearch("mcp", "--index", build, timeout=120)):  # fmt: skip
        assert_one_line_error(proc, f"{lucene}: lucene: EOFException", ".fdt")


def test_hybrid_search_of_damaged_postings_is_one_line(tmp_path, scifact_flat_index):
    """Postings damaged past their header pass the open; a single hybrid query reads them on the Java
    thread that runs its BM25 leg beside the encode, whose error must read as on the caller's thread."""
    import shutil

    build = tmp_path / "build"
    shutil.copytree(scifact_flat_index, build)
    (postings,) = (build / "lucene").glob("*.doc")
    data = bytearray(postings.read_bytes())
    data[100:-16] = b"\xff" * (len(data) - 116)
    postings.write_bytes(bytes(data))
    proc = drsearch("search", "coronary heart disease risk from smoking", "--index", build, "--mode", "hybrid", timeout=180)
    assert_one_line_error(proc, f"drsearch: error: {build / 'lucene'}: lucene: IOException")


@pytest.mark.parametrize(
    "option, text, fragments",
    [("--domains", "# home\nhttp://example.org:99999/\n", [":2", "'http://example.org:99999/'", "Port out of range"]),
     ("--domains", "http://example.org:abc/\n", [":1", "Port could not be cast"]),
     ("--domains", "http://[::1/\n", [":1", "Invalid IPv6 URL"]),
     ("--seeds", "http://www.example.org/ok\nhttp://www.example.org:99999/x\n", [":2", "Port out of range"])],
    ids=["domains-port-range", "domains-port-text", "domains-bracket", "seeds-port"],
)  # fmt: skip
def test_crawl_bad_url_line_names_file_and_line(tmp_path, option, text, fragments):
    (tmp_path / "domains.txt").write_text("example.org\n")
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    files = {"--domains": tmp_path / "domains.txt", option: bad}
    proc = drsearch("crawl", "--out", tmp_path / "out", *[x for kv in files.items() for x in kv], "--quiet", timeout=60)
    assert_one_line_error(proc, f"{bad}{fragments[0]}: not a valid URL", *fragments[1:])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "setting, fragment",
    [("LOG_LEVEL=BOGUS", "LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG, got 'BOGUS'"),
     ("RETRY_HTTP_CODES=5", "RETRY_HTTP_CODES must be a JSON list"),
     ("RETRY_HTTP_CODES=[500, \"x\"]", "RETRY_HTTP_CODES must be a JSON list of numbers"),
     ("CONCURRENT_REQUESTS_PER_DOMAIN=0", "CONCURRENT_REQUESTS_PER_DOMAIN must be >= 1, got 0"),
     ("CONCURRENT_REQUESTS=2.5", "CONCURRENT_REQUESTS must be a whole number"),
     ("DOWNLOAD_DELAY=-1", "DOWNLOAD_DELAY must be >= 0"),
     ("DOWNLOAD_TIMEOUT=0", "DOWNLOAD_TIMEOUT must be > 0"),
     ("DOWNLOAD_TIMEOUT=NaN", "DOWNLOAD_TIMEOUT must be a finite number, got nan"),  # no comparison refused it
     ("COOKIES_ENABLED=maybe", "COOKIES_ENABLED must be true or false"),
     ("DOWNLOADER_MIDDLEWARES={}", "DOWNLOADER_MIDDLEWARES wires the crawler's safety checks and output together"),
     ("ITEM_PIPELINES_BASE={}", "ITEM_PIPELINES_BASE wires the crawler's safety checks"),
     ("DOWNLOAD_DELEY=1", "DOWNLOAD_DELEY is not a Scrapy or drsearch setting")],
)  # fmt: skip
def test_crawl_set_values_are_checked_before_anything_starts(tmp_path, setting, fragment):
    domains, hosts = tmp_path / "domains.txt", tmp_path / "hosts.txt"
    domains.write_text("example.org\n")
    hosts.write_text("example.org 127.0.0.1:9\n")  # were the value let through, the crawl stays on this machine
    proc = drsearch("crawl", "--out", tmp_path / "out", "--domains", domains, "--host-map", hosts, "--allow-private",
                    "--set", setting, "--quiet", timeout=60)  # fmt: skip
    assert_one_line_error(proc, "--set", fragment)
    assert not (tmp_path / "out").exists()
