"""Search over a small library in 20 languages (tests/multilingual_texts.py), built through the real
`index build` path (BM25): each language's query finds its passage, and languages are detected."""

from __future__ import annotations

import json

import pytest

from indexer.analysis import decode_term
from ranker.options import SearchOptions
from ranker.pipeline import SearchPipeline
from tests.multilingual_texts import DOCS


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    root = tmp_path_factory.mktemp("multilingual")
    corpus = root / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as f:
        for doc_id, _, title, url, text in DOCS:  # no language field: each is detected
            f.write(json.dumps({"id": doc_id, "title": title, "url": url, "text": text}, ensure_ascii=False) + "\n")
    settings = BuildSettings(quiet=True, dense=DenseSettings(enabled=False))
    p = SearchPipeline.open(build_index([corpus], root, settings).build_dir)
    yield p
    p.close()


def top_doc(pipeline, query: str) -> str | None:
    hits = pipeline.search(query, SearchOptions(k=3, mode="bm25"))
    return hits[0].passage.doc_id if hits else None


def test_languages_are_detected(pipeline):
    wrong = {d: (lang, pipeline.store.document(d)["language"]) for d, lang, *_ in DOCS}
    assert {d: pair for d, pair in wrong.items() if pair[0] != pair[1]} == {}
    hits = pipeline.rank(["ставка"], SearchOptions(k=5, mode="bm25", languages=("uk",)))[0]
    assert [h.doc_id for h in hits] == ["uk-nbu"]


@pytest.mark.parametrize("doc, query", [
    ("ja-boj", "マイナス金利"), ("ja-stat", "高齢化率"), ("ar-sama", "اتفاقية إعادة الشراء"), ("he-boi", "יעד יציבות המחירים"),
    ("ru-cbr", "КЛЮЧЕВУЮ СТАВКУ"), ("uk-nbu", "облікову ставку"), ("de-buba", "Zahlungsverkehr"),
    ("fr-insee", "taux de chômage"), ("es-bde", "inflación subyacente"), ("hi-rbi", "रेपो दर"), ("vi-sbv", "lạm phát"),
    ("tr-tcmb", "politika faizi"), ("fa-cbi", "نرخ تورم"), ("pl-nbp", "RADA POLITYKI PIENIĘŻNEJ"),
])  # fmt: skip
def test_query_finds_its_language_passage(pipeline, doc, query):
    assert top_doc(pipeline, query) == doc


@pytest.mark.parametrize("doc, query", [
    ("ko-kostat", "합계출산율"),  # the text has 합계출산율은: the word with its particle
    ("ko-bok", "금리"),  # part of the compound 기준금리
    ("ko-kostat", "출생아 수"),
])  # fmt: skip
def test_korean_word_is_found_inside_particles_and_compounds(pipeline, doc, query):
    assert top_doc(pipeline, query) == doc


@pytest.mark.parametrize("doc, query", [
    ("th-bot", "ดอกเบี้ย"),  # interest, inside อัตราดอกเบี้ยนโยบาย (policy interest rate)
    ("th-bot", "เงินเฟ้อ"),  # inflation, inside อัตราเงินเฟ้อทั่วไป
    ("th-nso", "ว่างงาน"),  # unemployment, inside ผลการสำรวจพบว่าอัตราการว่างงานลดลง...
])  # fmt: skip
def test_thai_word_is_found_inside_an_unspaced_phrase(pipeline, doc, query):
    assert top_doc(pipeline, query) == doc
    assert len(pipeline.lexical.terms(query)) > 1  # character bigrams, not the whole phrase as one term
    assert all(decode_term(t) in pipeline.store.document(doc)["text"] for t in pipeline.lexical.terms(query))


def test_builds_before_hangul_and_thai_units_keep_their_query_analysis(pipeline):
    from backends.lucene.searcher import LuceneSearcher
    from backends.lucene.section import HAN_ONLY_ANALYZER
    from indexer import layout

    older = LuceneSearcher(pipeline.build_dir / layout.LUCENE_DIR, analyzer=HAN_ONLY_ANALYZER)
    try:
        assert older.terms("합계출산율 ว่างงาน") == ["합계출산율", "ว่างงาน"]  # as such a build indexed them
    finally:
        older.close()
    assert len(pipeline.lexical.terms("합계출산율 ว่างงาน")) == 9 + 6


@pytest.mark.parametrize("doc, query", [
    ("el-bog", "ΠΛΗΘΩΡΙΣΜΟΣ"),  # capitals drop the accent; a final capital sigma lower-cases to σ, the text has ς
    ("el-bog", "πληθωρισμος"),  # typed without the accent (the text: πληθωρισμός)
    ("ar-sama", "انسجاما"),  # the text has انسجامًا, with tanween
    ("ar-sama", "يعزز"),  # the text has يُعزِّز, with damma and shadda
    ("ar-stats", "ادنى"),  # alef without hamza; the text has أدنى
    ("fa-cbi", "كاهش"),  # Arabic kaf; the Persian text has کاهش (keheh)
    ("he-boi", "הַמְּחִירִים"),  # pointed; the text is not
    ("tr-tcmb", "ILIMLI"),  # capital I of dotless ı (the text: ılımlı)
    ("ar-stats", "تاريخي"),  # the text has a right-to-left mark right after it, as pages write &rlm;
    ("he-boi", "אחוזים"),  # the text: a left-to-right mark around 4.5, a right-to-left mark after אחוזים
    ("fa-cbi", "مصرف کننده"),  # the text joins them with a zero-width non-joiner: مصرف‌کننده
])  # fmt: skip
def test_spelling_variants_of_one_word_match(pipeline, doc, query):
    assert top_doc(pipeline, query) == doc
