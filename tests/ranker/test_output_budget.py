"""Output budgets (`ranker.output_budget`) on text with and without spaces: Chinese and Japanese
text is cut between characters, never to nothing, and a hit a budget leaves empty is dropped."""

from __future__ import annotations

import pytest

from ranker.output_budget import apply_budgets, trim_words

ZH = "台湾经济增长率今年预计达到百分之三，央行表示将维持利率不变。今天天气很好，我们去公园散步。"
EN = "Taiwan's economic growth rate is expected to reach three percent this year, the central bank said."
JA = "東京でオリンピックが開催された。多くの観客が競技場に集まった。"


@pytest.mark.parametrize("text", [ZH, EN, JA, "GDP增长3.5%，CPI上涨2%。" * 4])
@pytest.mark.parametrize("max_chars", [2, 5, 12, 20, 33, 60])
def test_a_cut_keeps_whole_words_within_the_budget(text, max_chars):
    cut = trim_words(text, max_chars)
    if len(text) <= max_chars:
        assert cut == text
        return
    assert len(cut) <= max_chars
    if not cut:  # only when not even the first word fits
        assert len(text.split()[0]) > max_chars - 1 and text[0].isascii()
        return
    body = cut.removesuffix("…")
    assert cut.endswith("…") and body and text.startswith(body)
    before, after = body[-1], text[len(body)]
    # the cut falls after a CJK character or before a space: never inside a Latin word
    assert after.isspace() or not (before.isascii() and before.isalnum() and after.isascii() and after.isalnum())


def test_chinese_is_cut_between_characters_and_english_before_a_space():
    assert trim_words(ZH, 10) == ZH[:9] + "…"
    assert trim_words(EN, 20) == "Taiwan's economic…"
    assert trim_words(EN, 8) == ""  # the first word alone is longer than the budget
    assert trim_words(ZH, len(ZH)) == ZH


def test_per_hit_budget_keeps_chinese_hits_with_text():
    results = [{"hits": [{"snippet": EN}, {"snippet": ZH}]}]
    assert apply_budgets(results, per_hit=30, total=None)["dropped_hits"] == 0
    assert [len(h["snippet"]) for h in results[0]["hits"]] == [len("Taiwan's economic growth rate…"), 30]


def test_per_hit_budget_drops_a_hit_it_leaves_empty():
    results = [{"hits": [{"snippet": "Pneumonoultramicroscopicsilicovolcanoconiosis is a word"}, {"snippet": ZH}]}]
    accounting = apply_budgets(results, per_hit=10, total=None)
    assert accounting == {"used_chars": 10, "dropped_hits": 1}
    assert results[0]["hits"] == [{"snippet": ZH[:9] + "…"}]


def test_total_budget_fills_a_chinese_hit_with_what_is_left():
    results = [{"hits": [{"snippet": EN}, {"snippet": ZH}]}]
    accounting = apply_budgets(results, per_hit=None, total=130)
    assert accounting == {"used_chars": 130, "dropped_hits": 0}
    assert results[0]["hits"][1]["snippet"] == ZH[: 130 - len(EN) - 1] + "…"


def _words(n: int, word: str) -> str:
    return " ".join([word] * n)


def test_total_budget_goes_round_robin_over_the_queries_by_rank():
    """Every query's first hit is filled before any query's second hit (docs/API.md, max_total_chars)."""
    hit = _words(20, "alpha")  # 119 characters
    results = [{"hits": [{"snippet": hit}, {"snippet": hit}]}, {"hits": [{"snippet": hit}, {"snippet": hit}]}]
    accounting = apply_budgets(results, per_hit=None, total=300)
    left = 300 - 2 * len(hit)  # after both first hits, whole
    assert [[h["snippet"] for h in r["hits"]] for r in results] == [[hit, trim_words(hit, left)], [hit]]
    assert accounting == {"used_chars": 2 * len(hit) + len(trim_words(hit, left)), "dropped_hits": 1}


def test_total_budget_counts_and_trims_text_after_the_snippet():
    snippet, text = _words(4, "alpha"), _words(30, "beta")  # 23 and 149 characters
    results = [{"hits": [{"snippet": snippet, "text": text}, {"snippet": snippet, "text": text}]}]
    accounting = apply_budgets(results, per_hit=None, total=100)
    first = results[0]["hits"][0]
    assert first == {"snippet": snippet, "text": trim_words(text, 100 - len(snippet))}
    assert len(first["snippet"]) + len(first["text"]) <= 100
    assert accounting == {"used_chars": len(snippet) + len(first["text"]), "dropped_hits": 1}  # nothing left for hit 2


def test_a_hit_whose_snippet_is_cut_to_nothing_but_keeps_text_is_kept():
    hits = [{"snippet": "Pneumonoultramicroscopicsilicovolcanoconiosis is a word", "text": "short text"}]
    accounting = apply_budgets([{"hits": hits}], per_hit=10, total=None)
    assert hits == [{"snippet": "", "text": "short text"}] and accounting == {"used_chars": 10, "dropped_hits": 0}
    results = [{"hits": [{"snippet": "Pneumonoultramicroscopicsilicovolcanoconiosis", "text": "short text"}]}]
    assert apply_budgets(results, per_hit=None, total=20) == {"used_chars": 10, "dropped_hits": 0}
    assert results[0]["hits"] == [{"snippet": "", "text": "short text"}]


def test_text_without_spaces_in_thai_is_trimmed_between_characters_not_emptied():
    import unicodedata

    thai = "คณะกรรมการนโยบายการเงินมีมติเอกฉันท์ให้คงอัตราดอกเบี้ยนโยบายไว้ที่ร้อยละสองจุดห้าต่อปี"  # one phrase, no space
    for budget in range(10, len(thai)):
        out = trim_words(thai, budget)
        assert out.endswith("…") and len(out) <= budget and thai.startswith(out[:-1]), budget
        assert not unicodedata.category(thai[len(out) - 1]).startswith("M"), budget  # no vowel or tone mark cut off
