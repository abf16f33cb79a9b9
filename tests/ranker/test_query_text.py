"""Query text as agents write it (numbers with separators, acronyms with dots, emoji) finds what the
index holds for the same text, short or paragraph-long."""

from __future__ import annotations

import json
import string

import pytest

from indexer.build import build_index
from indexer.settings import BuildSettings, DenseSettings
from ranker.long_query import MAX_BM25_TERMS
from ranker.pipeline import SearchOptions, SearchPipeline
from ranker.query import has_words

BM25 = SearchOptions(k=3, mode="bm25")


def _filler(n: int) -> list[str]:
    """`n` distinct made-up words (letters only, so each is one index term)."""
    letters = string.ascii_lowercase
    return [f"zq{letters[i // 26 % 26]}{letters[i % 26]}x" for i in range(n)]


FILLER = _filler(MAX_BM25_TERMS + 44)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    rows = [
        {"id": "steel", "text": "The plant produced 1,000 tonnes of steel; revenue was $3.5bn in Q3 2024."},
        {"id": "us", "text": "U.S. GDP growth slowed in the third quarter, the Commerce Department said."},
        {"id": "rocket", "text": "Posts tagged 🚀 and ❤️ spread fast after the launch."},
        # every filler word in two documents: each is more common than 3.5bn
        {"id": "filler-a", "text": " ".join(FILLER)},
        {"id": "filler-b", "text": " ".join(reversed(FILLER))},
    ]
    tmp = tmp_path_factory.mktemp("query-text")
    corpus = tmp / "docs.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    build_index([corpus], tmp / "idx", BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False)))
    p = SearchPipeline.open(tmp / "idx")
    yield p
    p.close()


def ids(results) -> list[str]:
    return [r.hit.doc_id for r in results]


@pytest.mark.parametrize("query", ["🚀", "❤️", "🚀 ❤️"])
def test_an_emoji_query_finds_the_emoji_the_index_holds(pipeline, query):
    assert ids(pipeline.search(query, BM25)) == ["rocket"]


@pytest.mark.parametrize(("words", "found"), [("$3.5bn", "steel"), ("1,000 tonnes", "steel"), ("U.S.", "us")])
def test_a_paragraph_query_keeps_its_rare_terms_as_the_index_spells_them(pipeline, words, found):
    bm25 = pipeline.lexical
    query = " ".join(FILLER) + " " + words
    assert len(set(bm25.terms(query))) > MAX_BM25_TERMS  # long enough to be bounded
    kept = set(bm25.terms(bm25.bounded(query)))
    assert set(bm25.terms(words)) <= kept  # rarer (df 1) than any filler word (df 2)
    assert kept <= set(bm25.terms(query))  # no term the query did not have
    assert found in ids(pipeline.search(query, BM25))  # after the two filler documents, which match 255 terms


def test_a_paragraph_of_emoji_is_bounded_below_the_clause_limit(pipeline):
    # 943 pictographs and 300 of them with a skin tone: 1,243 distinct terms, over Lucene's 1,024 clauses
    pictographs = [chr(c) for c in [*range(0x1F300, 0x1F700), *range(0x2600, 0x27C0)] if has_words(chr(c))]
    query = " ".join(pictographs + [p + "\U0001F3FD" for p in pictographs[:300]])
    bm25 = pipeline.lexical
    assert len(set(bm25.terms(query))) > 1_024
    assert len(set(bm25.terms(bm25.bounded(query)))) <= MAX_BM25_TERMS
    pipeline.search(query, BM25)  # answers (an unbounded query fails with TooManyClauses)
