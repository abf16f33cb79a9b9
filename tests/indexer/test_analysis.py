"""Chinese units in front of Lucene's English analyzer: Chinese terms survive it intact, English is untouched."""

from __future__ import annotations

from indexer.analysis import decode_term, fold, for_lucene, for_lucene_han_only, han_units, run_units, term, units


def test_text_without_han_is_unchanged():
    text = "Smoking increases the risk of coronary heart disease (p < 0.05); 東 is absent here: ok"
    assert for_lucene(text.replace("東", "")) == text.replace("東", "")


def test_units_are_characters_and_bigrams_without_function_words():
    assert list(units("成员国")) == ["成", "成员", "员", "员国", "国"]
    assert list(units("的")) == [] and list(units("国")) == ["国"]
    assert "的" not in units("中国的经济") and "国的" in units("中国的经济")  # a bigram holding one is kept
    assert list(units("成员国", "bigram")) == ["成员", "员国"]
    assert han_units("RCEP成员") == ["成", "成员", "员"]


def test_terms_round_trip_and_survive_the_english_analyzer():
    from backends.lucene.jvm import autoclass

    analyzer = autoclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
    analyze = autoclass("io.anserini.analysis.AnalyzerUtils").analyze
    prepared = for_lucene("RCEP成员国的GDP增长 smoking 𠀋𠀋")  # includes a character outside the BMP
    kept = [decode_term(t) for t in analyze(analyzer, prepared)]
    assert kept == ["rcep", "成", "成员", "员", "员国", "国", "国的", "gdp", "增", "增长", "长", "smoke", "𠀋", "𠀋𠀋", "𠀋"]
    assert decode_term(term("员国")) == "员国" and decode_term("smoke") == "smoke"


def test_hangul_and_unspaced_scripts_become_units():
    assert list(run_units("합계출산율은")) == ["합", "합계", "계", "계출", "출", "출산", "산", "산율", "율", "율은", "은"]
    assert list(run_units("ว่างงาน")) == ["ว่", "่า", "าง", "งง", "งา", "าน"]  # character bigrams
    assert list(run_units("ก")) == ["ก"]
    prepared = for_lucene("GDP 합계 ว่าง Größe")
    assert [decode_term(t) for t in prepared.split()] == ["GDP", "합", "합계", "계", "ว่", "่า", "าง", "Größe"]
    # Builds written before Hangul and Thai units get their queries prepared as they were.
    assert for_lucene_han_only("GDP 합계 ว่าง 成员").split() == ["GDP", "합계", "ว่าง", *map(term, units("成员"))]


def test_spelling_variants_fold_and_latin_text_stays():
    assert fold("ΠΛΗΘΩΡΙΣΜΟΣ πληθωρισμός") == "πληθωρισμοσ πληθωρισμοσ"
    assert fold("انسجامًا يُعزِّز أدنى کاهش") == "انسجاما يعزز ادني كاهش"
    assert fold("הַמְּחִירִים ılımlı") == "המחירים ilimli"
    text = "TNF-α and β-cells; café, İstanbul, naïve Σ-δ"  # Greek letters alone: Lucene lower-cases them the same
    assert fold(text) == text.replace("Σ", "σ")
    assert fold("البطالة\u200f في") == "البطالة في".replace("ة", "ه")  # a direction mark goes
    # ... in Latin text too (pasted from a page setting English inside Arabic), and so do a word joiner and a
    # BOM inside the text: `cancer` + LRM was a term of its own, and `cancer` found no such document
    assert fold("p53\u200e lung\u2060 can\ufeffcer\u2067") == "p53 lung cancer"
    assert fold("مصرف\u200cکننده emoji\u200dset") == "مصرف كننده emoji\u200dset"  # ZWNJ a space in RTL text; ZWJ kept
    # builds of the analyzer before (MARKS_IN_RTL_ONLY_ANALYZER) get their queries folded as their text was
    assert fold("p53\u200e lung\u2060", marks_in_rtl_only=True) == "p53\u200e lung\u2060"
    assert fold("البطالة\u200f", marks_in_rtl_only=True) == "البطاله"
