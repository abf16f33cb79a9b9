"""Language of documents and queries: scripts first, py3langid for longer texts, the corpus's field wins."""

from __future__ import annotations

import json
import random

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from indexer.errors import ConfigError
from indexer.language import (
    _LATIN, _LETTER, ANY, _ascii_letters, covered, dense_languages, detect, document_language, identifier,
    language_code, model_languages, normalise, query_languages,
)
from tests.conftest import data_dir


@pytest.mark.parametrize(("text", "lang"), [
    ("成员国", "zh"),  # three characters are enough: the script decides
    ("2021年香港GDP增长了多少？", "zh"),
    ("東京の天気はどうですか", "ja"),
    ("서울의 날씨", "ko"),
    ("RCEP", "en"),  # too short for a statistical guess: the library's default
    ("Die Inflation in Deutschland ist im vergangenen Jahr stark gestiegen und bleibt hoch.", "de"),
    ("La inflación en España subió con fuerza el año pasado y sigue siendo elevada para las familias.", "es"),
    ("Smoking is a major risk factor for coronary heart disease in adults.", "en"),
    ("12345 --- !!!", "und"),
])  # fmt: skip
def test_detect_short_and_long_texts(text, lang):
    assert detect(text) == lang


def test_mixed_text_takes_the_main_language():
    chinese_with_terms = "区域全面经济伙伴关系协定（RCEP）于2022年1月1日正式生效，成员国包括东盟十国和中国、日本、韩国。"
    assert detect(chinese_with_terms) == "zh"
    english_with_a_name = "The Regional Comprehensive Economic Partnership (区域全面经济伙伴关系协定) entered into force in 2022 for ten ASEAN members."
    assert detect(english_with_a_name) == "en"


def test_query_languages_lists_every_script_of_a_mixed_query():
    assert query_languages("RCEP 成员国") == ("en", "zh")
    assert query_languages("成员国") == ("zh",)
    assert query_languages("smoking and heart disease") == ("en",)
    assert query_languages("1990") == ()


@pytest.mark.parametrize("query", ["ставка", "انسجاما", "نرخ تورم", "रेपो दर"])
def test_a_short_query_in_another_script_is_no_language_an_english_model_covers(query):
    """py3langid is unsure of a word or two (no language reached 0.5), and an unknown language used to
    count as covered: an English-only dense model then embedded Arabic or Hindi in hybrid mode. Not in
    Latin script, the query takes py3langid's best guess, its script's language at least."""
    languages = query_languages(query)
    assert languages and not covered(languages, ["en"]), languages


@pytest.mark.parametrize("text", ["哈利・波特", "迈克尔・乔丹", "哈利・波特新书发布", "弗兰克ー劳埃德ー赖特设计的住宅"])
def test_chinese_with_a_katakana_middle_dot_or_long_mark_is_chinese(text):
    """U+30FB and U+30FC are written in Chinese transliterated names too: no evidence of Japanese."""
    assert detect(text) == "zh" and query_languages(text) == ("zh",)
    assert document_language(None, "", text) == "zh"


@pytest.mark.parametrize("text", ["コーヒー", "コーヒー・ショップ", "東京タワー", "ラーメンを食べました"])
def test_japanese_with_those_marks_is_still_japanese(text):
    assert detect(text) == "ja" and query_languages(text) == ("ja",)


def test_document_field_wins_and_is_normalised():
    assert document_language("zh-CN", "", "An English text about trade agreements and tariffs in Asia.") == "zh"
    assert document_language("EN_us", "", "成员国") == "en"
    assert document_language("not a language!", "", "成员国") == "zh"  # unusable field: detected instead
    assert document_language(None, "贸易协定", "") == "zh"
    assert normalise("zh-Hant-TW") == "zh" and normalise("") is None


@pytest.mark.parametrize("code", ["und", "mul", "zxx", "UND", "mul-Latn"])
def test_a_field_naming_no_one_language_is_detected_instead(code):
    assert document_language(code, "", "这是一段中文新闻报道的正文内容，足够长。") == "zh"
    assert document_language(code, "", "Smoking is a major risk factor for coronary heart disease in adults.") == "en"


@pytest.mark.parametrize(("code", "text", "detected"), [
    ("cn", "北京冬奥会吉祥物冰墩墩正式发布，设计团队来自广州美术学院。", "zh"),
    ("jp", "東京でオリンピックが開催されました。日本の選手が金メダルを獲得した。", "ja"),
    ("xx", "Smoking is a major risk factor for coronary heart disease in adults.", "en"),
])  # fmt: skip
def test_a_field_shaped_like_a_code_but_no_language_is_detected_instead(code, text, detected):
    """Stored as it was, "cn" could be asked for by no filter: `language_code` refuses it."""
    assert language_code(code) is None
    assert document_language(code, "", text) == detected


@pytest.mark.parametrize(("code", "iso639_1"), [
    ("zho", "zh"), ("chi", "zh"), ("eng", "en"), ("deu", "de"), ("ger", "de"), ("fra", "fr"), ("fre", "fr"),
    ("ZHO-Hans", "zh"), ("cmn", "zh"), ("tgl", "tl"), ("iw", "he"),
    ("haw", "haw"), ("yue", "yue"),  # no ISO 639-1 code: kept
])  # fmt: skip
def test_three_letter_codes_become_iso_639_1(code, iso639_1):
    assert normalise(code) == iso639_1
    assert document_language(code, "", "成员国") == iso639_1


def test_detected_languages_are_iso_639_1_where_it_has_one():
    assert detect("Mũndũ o wothe aciaragwo arĩ na wĩyathi na agaakorwo na kĩgĩrĩro kĩa ũndũ-mũndũ o ta andũ arĩa angĩ.") == "ki"
    assert detect("Opavave yvypóra ojeheja reko peteĩcha ha peteĩcha avei tekoruvicha ha akatuaha jeguerekópe.") == "gn"


def test_model_languages_from_the_model_card(tmp_path):
    assert model_languages(None) == ["en"]  # the bundled all-MiniLM-L6-v2
    assert model_languages(str(tmp_path)) == [ANY]  # no card: no claim to restrict on
    (tmp_path / "README.md").write_text("---\nlanguage:\n- en\n- zh\n- de-DE\ntags:\n- x\n---\n# model\n")
    assert model_languages(str(tmp_path)) == ["de", "en", "zh"]
    (tmp_path / "README.md").write_text("---\nlanguage: [multilingual, en]\n---\n")
    assert model_languages(str(tmp_path)) == [ANY]
    (tmp_path / "README.md").write_text("---\nlanguage: en\n---\n")
    assert model_languages(str(tmp_path)) == ["en"]


def test_dense_languages_given_and_covered():
    assert dense_languages(["zh", "EN", "zh"], None) == ["en", "zh"]
    assert dense_languages(None, None) == ["en"]
    with pytest.raises(ConfigError, match="not a language code: '12'"):
        dense_languages(["en", "12"], None)
    assert covered(("en",), ["en"]) and not covered(("en", "zh"), ["en"]) and covered(("zh",), [ANY])
    assert covered((), ["en"])  # no detectable language: the dense leg is not refused


@pytest.mark.parametrize(("code", "iso"), [
    ("en", "en"), ("zh-CN", "zh"), ("EN_us", "en"), ("zho", "zh"), ("cmn", "zh"), ("iw", "he"),
    ("haw", "haw"), ("yue", "yue"), ("und", "und"), ("zxx", "zxx"), ("mul", "mul"),
    ("hbo", "hbo"),  # ISO 639-3, not in CLDR, but py3langid assigns it: a build can store it
])  # fmt: skip
def test_language_code_accepts_iso_639_1_and_639_3(code, iso):
    assert language_code(code) == iso


@pytest.mark.parametrize("code", ["xx", "jp", "qq", "zz", "english", "e", "12", "", "en!", None, 5])
def test_language_code_refuses_what_is_not_an_iso_639_code(code):
    assert language_code(code) is None


def test_dense_languages_are_iso_639_codes():
    assert dense_languages(["haw", "yue", "EN", "*"], None) == ["*", "en", "haw", "yue"]
    for bad in ("xx", "jp"):
        with pytest.raises(ConfigError, match=f"not a language code: '{bad}' .*ISO 639-1 or 639-3") as err:
            dense_languages(["en", bad], None)
        assert err.value.field == "--dense-languages"


def test_packed_identifier_scores_as_py3langid_does():
    """`identifier()` walks py3langid's automaton over its own packed table: every language's score
    must stay what the library's identifier gives, bit for bit, on real queries and on noise."""
    library = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    with open(data_dir("rgb_zh") / "queries.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:200]
    texts += ["Smoking is a major risk factor for coronary heart disease in adults.", "RCEP 成员国", "", "!!!"]
    rnd = random.Random(7)
    for _ in range(300):  # any code point up to CJK, and raw bytes read as Latin-1
        texts.append("".join(chr(rnd.randrange(32, 0x3000)) for _ in range(rnd.randrange(1, 60))))
        texts.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 60))).decode("latin-1"))
    packed = identifier()
    assert type(packed) is not LanguageIdentifier  # the packed walk is the one under test
    assert [packed.rank(t) for t in texts] == [library.rank(t) for t in texts]


def test_ascii_fast_path_counts_letters_as_the_regex_does():
    for text in [chr(c) for c in range(128)] + ["R2-D2 and C-3PO_x", "   "]:
        assert _ascii_letters(text) == len(_LETTER.findall(text)) == len(_LATIN.findall(text))
    assert detect("Smoking causes heart disease in many adults across the world today.") == "en"
    assert query_languages("a b") == ("en",) and query_languages("--- 42 ---") == ()
