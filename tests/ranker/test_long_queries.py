"""Paragraph-long queries: every mode answers, BM25 keeps a bounded set of the rarest terms, and
`drsearch eval` runs a BEIR collection whose queries are whole SciFact abstracts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.conftest import data_dir, drsearch

N_QUERIES = 6
N_DOCS = 24


def _scifact_docs() -> list[dict]:
    with gzip.open(data_dir("scifact") / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _truncate(text: str, limit: int) -> str:
    return text[:limit].rsplit(" ", 1)[0]


@pytest.fixture(scope="module")
def paragraph_beir(tmp_path_factory) -> Path:
    """A BEIR folder: 24 real SciFact documents; the queries are the abstracts of the six longest
    (each judged relevant to its own document; the longest truncated to ~9,000 characters)."""
    docs = _scifact_docs()
    longest = sorted(docs, key=lambda d: (-len(d["text"]), d["_id"]))[:N_QUERIES]
    ids = {d["_id"] for d in longest}
    others = [d for d in docs if d["_id"] not in ids][: N_DOCS - N_QUERIES]
    root = tmp_path_factory.mktemp("paragraph-beir")
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in longest + others), encoding="utf-8")
    queries = [{"_id": f"q{d['_id']}", "text": _truncate(d["text"], 9_000)} for d in longest]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{d['_id']}\t{d['_id']}\t1\n" for d in longest), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def paragraph_index(paragraph_beir, tmp_path_factory) -> Path:
    from tests.conftest import _build

    root = tmp_path_factory.mktemp("paragraph-index")
    _build(root, paragraph_beir, chunk_words=200, dense=True)
    return root


@pytest.fixture(scope="module")
def pipeline(paragraph_index):
    from ranker.pipeline import SearchPipeline

    p = SearchPipeline.open(paragraph_index)
    yield p
    p.close()


def _queries(beir: Path) -> list[dict]:
    return [json.loads(line) for line in (beir / "queries.jsonl").read_text(encoding="utf-8").splitlines()]


def test_paragraph_query_answers_in_every_mode(pipeline, paragraph_beir):
    from ranker.long_query import MAX_BM25_TERMS
    from ranker.pipeline import MODES, SearchOptions

    query = max(_queries(paragraph_beir), key=lambda q: len(q["text"]))
    assert 8_500 <= len(query["text"]) <= 9_000
    assert len(set(pipeline.lexical.terms(query["text"]))) > MAX_BM25_TERMS  # several hundred distinct terms
    for mode in MODES:
        hits = pipeline.search(query["text"], SearchOptions(k=5, mode=mode))
        assert hits, mode
        assert hits[0].hit.doc_id == query["_id"][1:], mode  # its own abstract comes first


def test_bm25_keeps_the_rarest_terms_and_never_reaches_the_clause_limit(pipeline):
    from ranker.long_query import MAX_BM25_TERMS

    bm25 = pipeline.lexical
    text = " ".join(d["text"] for d in _scifact_docs()[:60])  # well over Lucene's 1,024 clauses
    distinct = set(bm25.terms(text))
    assert len(distinct) > 1_100
    bounded = bm25.bounded(text)
    kept = set(bm25.terms(bounded))
    assert 0 < len(kept) <= MAX_BM25_TERMS and kept <= distinct
    df = dict(zip(sorted(distinct), bm25.doc_freqs(sorted(distinct))))
    dropped_present = [df[t] for t in distinct - kept if df[t] > 0]
    assert max(df[t] for t in kept) <= min(dropped_present)  # most informative (highest IDF) first
    assert bm25.search([text], 5)[0]  # the unbounded text searches too (it is bounded inside)


@pytest.mark.parametrize("query", [
    "odds ratio " + " ".join(f"{i / 100:.2f}" for i in range(1, 1101)),  # a pasted table: ~110 distinct words
    " ".join("x" + chr(0x300 + i // 100) + chr(0x300 + i % 100) for i in range(1100)),  # marks are no word characters
    "".join(chr(0x1F300 + i) for i in range(700)),  # emoji side by side, one term each
], ids=["decimals", "combining-marks", "emoji"])  # fmt: skip
def test_a_query_of_few_distinct_words_and_many_distinct_terms_is_bounded(pipeline, query):
    """The pre-check counted distinct words (`\\w+`): 1,100 decimals made of ~110 of them went to Lucene
    unbounded, past its clause limit of 1,024 (a 500 on /v1/search and /retrieve, a traceback in the CLI)."""
    from ranker.long_query import MAX_BM25_TERMS

    bm25 = pipeline.lexical
    assert len(set(bm25.terms(query))) > MAX_BM25_TERMS
    assert len(set(bm25.terms(bm25.bounded(query)))) <= MAX_BM25_TERMS
    bm25.search([query], 5)  # no TooManyClauses


def test_eval_runs_a_collection_of_paragraph_queries(paragraph_index, paragraph_beir):
    proc = drsearch("eval", "--index", paragraph_index, "--beir", paragraph_beir, "--mode", "all", "--json", "--k0", "100")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert set(report) == {"bm25", "dense", "hybrid"}
    for mode, r in report.items():  # each abstract finds its own document
        assert r["mrr@10"] >= 0.8, (mode, r)
