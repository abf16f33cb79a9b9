"""Query-biased snippets: the window with the most query-word matches, cut at word boundaries."""

from __future__ import annotations

import pytest

from ranker.snippets import densest_run, snippet

FILLER = " ".join(f"filler{i}" for i in range(80))


def test_short_text_comes_back_whole_with_whitespace_collapsed():
    assert snippet("Heat  transfer\n\nin  layers", "heat") == "Heat transfer in layers"


def test_window_lands_on_the_densest_cluster_of_query_words():
    text = f"{FILLER} Inflation expectations and inflation targets shape policy. {FILLER}"
    out = snippet(text, "inflation targeting", max_chars=120)
    assert out.startswith("…") and out.endswith("…")
    assert "Inflation expectations and inflation targets" in out
    assert len(out) <= 122 and not out[1:].startswith(" ")
    assert all(w in text.split() or w.strip("…") in text.split() for w in out.split())  # whole words only


def test_the_densest_run_is_the_first_of_the_most_matches_within_reach():
    assert densest_run([0, 10, 11, 12, 50], 5) == 10
    assert densest_run([0, 1, 20, 21], 5) == 0  # a tie: the earliest run
    assert densest_run([0, 5, 11], 5) == 0  # both ends of the reach count
    assert densest_run([7], 5) == 7


def test_five_character_prefixes_and_short_words():
    text = f"{FILLER} the DNase assay {FILLER} DNA repair genes {FILLER}"
    # "dna" is shorter than five characters, so it matches the word DNA only, never DNase.
    assert "DNA repair" in snippet(text, "dna", max_chars=60)
    # A five-character stem matches longer words: "targets" and "targeting" share "targe".
    assert "targets" in snippet(f"{FILLER} targets met {FILLER}", "targeting", max_chars=60)


def test_no_query_word_in_text_gives_the_start():
    out = snippet(FILLER, "photosynthesis", max_chars=50)
    assert out.startswith("filler0 ") and out.endswith("…")


ZH_FILLER = "据新华社报道，今年以来各地加快推进重点项目建设，带动投资持续增长，市场信心不断恢复。" * 6


def test_chinese_snippet_centres_on_the_query_bigrams():
    text = ZH_FILLER + "《区域全面经济伙伴关系协定》（RCEP）成员国包括东盟十国和中国、日本、韩国、澳大利亚、新西兰。" + ZH_FILLER
    out = snippet(text, "RCEP 成员国有哪些？", max_chars=80)
    assert "RCEP" in out and "成员国包括东盟十国" in out
    assert out.startswith("…") and out.endswith("…") and len(out) <= 82
    assert out[1] not in "，。" and out.strip("…") in text


def test_chinese_match_inside_latin_and_digits():
    text = ZH_FILLER + "2021年香港GDP增长6.4%，创下十年来最快增速。" + ZH_FILLER
    out = snippet(text, "2021年香港GDP增长了多少", max_chars=60)
    assert "香港GDP增长6.4%" in out


JA_FILLER = "これは長い日本語の文章です。" * 20


@pytest.mark.parametrize("around", [("東京で", "が開催された。"), ("とうきょうで", "がかいさいされた。")])  # with Han, kana only
def test_japanese_query_word_right_after_a_particle_is_found(around):
    """Japanese writes no spaces: a word after a particle (で) is a match, not the inside of a word."""
    before, after = around
    out = snippet(JA_FILLER + before + "オリンピック" + after + JA_FILLER, "オリンピック", max_chars=80)
    assert "オリンピック" in out and out.startswith("…")


def test_cuts_never_split_surrogate_pairs_combining_marks_or_joined_emoji():
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # one emoji made of three joined ones
    pair = "\ud83d\ude00"  # a surrogate pair as it arrives from UTF-16 sources
    unit = f"国e\u0301{family}{pair}x"
    text = unit * 60
    for max_chars in range(20, 70):
        out = snippet(text, "query", max_chars=max_chars).strip("…")
        first, last = out[0], out[-1]
        assert not ("\udc00" <= first <= "\udfff") and first not in "\u0301\u200d", (max_chars, out[:5])
        assert not ("\ud800" <= last <= "\udbff") and last != "\u200d", (max_chars, out[-5:])
        assert out in text


def test_text_without_han_finds_the_starts_the_pattern_finds():
    """Texts without Chinese take the `str.find` path; it must find what the pattern path finds."""
    from ranker import snippets

    texts = ["Cell-free DNA in cells; CELL_cell cell2 cell. xcell cell",
             "Ünïcödé Protein PROTEINS proteolysis über-protein (protein) naïve café Cafe",
             "aaaaaaa aaaaa aaa aaa_ aaa. dna DNase dnA 3dna", "ǅungla Ǆungla cell ǆ cell",
             "²cell cell½ ⅷcell cell٣ cell‿ cell-cell dna"]  # fmt: skip  (digits and numerals of other scripts)
    queries = ["cell protein", "cafe café über", "aaaaaaa aaa dna", "džungla cell", "the a of"]
    for text in texts:
        for query in queries:
            want = []
            matcher = snippets._matcher(query)
            for m in matcher.finditer(text.lower()) if matcher else ():
                start, end = m.span()
                if not (start and snippets._WORD_CHAR.match(text, start - 1)) and not (end - start < 5 and snippets._WORD_CHAR.match(text, end)):
                    want.append(start)
            assert snippets.match_starts(text, query) == want, (text, query)
    assert snippets.match_starts(texts[0], "cell") == [0, 40, 52]  # not cells, CELL_, _cell, cell2, xcell


def test_single_spacing_equals_split_and_join():
    """The fast path (an ASCII text already single-spaced comes back as it is) changes no text."""
    from ranker.snippets import _single_spaced

    separators = ["  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\u00a0", "\u3000", "\u2028", "\x85"]
    texts = ["one two three", " lead", "trail ", "", " ", "x", "naïve café"]
    texts += [f"a{sep}b c" for sep in separators] + [f"{sep}a b{sep}" for sep in separators]
    for text in texts:
        assert _single_spaced(text) == " ".join(text.split()), repr(text)
    clean = "already single spaced ASCII text"
    assert _single_spaced(clean) is clean


def test_stopwords_in_the_query_do_not_place_the_snippet():
    """"the inflation": the window goes to the one "inflation", not to a run of "the"s."""
    text = f"{FILLER} the cat and the dog met the fox by the barn at the end of the day {FILLER} inflation rose {FILLER}"
    out = snippet(text, "the inflation", max_chars=60)
    assert "inflation rose" in out and "the barn" not in out


@pytest.mark.parametrize("text, query", [
    ("คณะกรรมการนโยบายการเงินมีมติเอกฉันท์ให้คงอัตราดอกเบี้ยนโยบายไว้ที่ร้อยละสองจุดห้าต่อปี" * 8, "ดอกเบี้ย"),  # Thai: no spaces
    ("भारतीयरिज़र्वबैंककीमौद्रिकनीतिसमितिनेनीतिगतरेपोदरकोअपरिवर्तितरखनेकानिर्णयलिया" * 8, "रेपो"),  # a run without spaces
])  # fmt: skip
def test_cuts_keep_vowel_signs_with_their_consonant(text, query):
    """Thai vowels above and below (Mn) and Devanagari vowel signs (Mc) have combining class 0: a cut is
    still not allowed before them. Both ways of making snippets (Python, and the JVM for a batch)."""
    import unicodedata

    from backends.lucene.jvm import start_jvm
    from ranker.snippets import snippets

    start_jvm()
    for max_chars in range(200, 260):
        for out in (snippet(text, query, max_chars), snippets([(text, query), (text, query)], max_chars)[1]):
            body = out.strip("…")
            after = text.find(body) + len(body)
            assert not unicodedata.category(body[0]).startswith("M"), (max_chars, body[:3])
            assert after == len(text) or not unicodedata.category(text[after]).startswith("M"), (max_chars, body[-3:])


TH_FILLER = "สำนักงานสถิติแห่งชาติได้ดำเนินการสำรวจภาวะการทำงานของประชากรทั่วประเทศ " * 8
KO_FILLER = "통계청에 따르면 지난해 출생아 수는 전년보다 감소하였다. " * 8


@pytest.mark.parametrize("text, query, word", [
    (TH_FILLER + "คณะกรรมการมีมติให้คงอัตราดอกเบี้ยนโยบายไว้ที่ร้อยละสอง " + TH_FILLER, "ดอกเบี้ย", "ดอกเบี้ย"),
    (KO_FILLER + "금융통화위원회는 한국은행 기준금리를 현 수준에서 유지하였다. " + KO_FILLER, "금리", "기준금리"),
])  # fmt: skip
def test_thai_and_korean_query_word_inside_a_longer_word_is_found(text, query, word):
    """Thai writes no spaces between words and Korean joins nouns into compounds: the index finds a
    query word inside a longer one (character bigrams), and the snippet shows where, in Python and the JVM."""
    from backends.lucene.jvm import start_jvm
    from ranker.snippets import snippets

    start_jvm()
    for out in (snippet(text, query, max_chars=120), snippets([(text, query), (text, query)], 120)[1]):
        assert word in out and out.startswith("…"), out


EL_FILLER = "Η ελληνική στατιστική υπηρεσία δημοσίευσε σήμερα τα στοιχεία για την απασχόληση στη χώρα. " * 4


@pytest.mark.parametrize("text, query, word", [
    (EL_FILLER + "Ο πληθωρισμός στην Αθήνα αυξήθηκε τον Μάιο. " + EL_FILLER, "ΑΘΗΝΑ", "Αθήνα"),  # capitals drop accents
    (EL_FILLER + "Ο πληθωρισμός στην ΑΘΗΝΑ αυξήθηκε τον Μάιο. " + EL_FILLER, "Αθήνα", "ΑΘΗΝΑ"),
    (EL_FILLER + "Ο πληθωρισμός στην Αθήνα αυξήθηκε τον Μάιο. " + EL_FILLER, "αθηνα", "Αθήνα"),  # typed without accents
])  # fmt: skip
def test_greek_query_word_spelled_with_other_accents_is_found(text, query, word):
    """The index folds Greek accents (a query in capitals or typed without them finds the text): the
    snippet shows where the word is, in Python and the JVM, not the passage's start."""
    from backends.lucene.jvm import start_jvm
    from ranker.snippets import snippets

    start_jvm()
    for out in (snippet(text, query, max_chars=120), snippets([(text, query), (text, query)], 120)[1]):
        assert word in out and out.startswith("…"), out


@pytest.mark.parametrize("query", ["Moody's rating", "Moody’s rating"])
def test_a_possessive_in_the_query_is_the_word_alone_as_the_index_reads_it(query):
    possessives = " ".join(f"the bank's loans and the firm's debts and the city's budget {i}." for i in range(6))
    text = possessives + " Filler words without any query term go on here. " * 8 + "Moody's rating of the issuer was cut."
    assert "Moody's rating" in snippet(text, query, 120)


@pytest.mark.timeout(20)  # a hang guard only: each character was tried against every unit of the query, ~30 s here
def test_a_long_chinese_query_over_a_long_chinese_text_is_matched_in_linear_time():
    """A Chinese query of 10,000 characters has ~10,000 bigrams; they were one alternation that the
    pattern engine tried one by one at each character of the text that starts one (a fetched report
    of millions of characters, all of them the query's, in other pairs)."""
    from ranker.snippets import match_starts

    query = "".join(chr(0x4E00 + i) for i in range(10_000))
    unit = query[5000:5002]
    text = list(query[2000:2100][::-1] * 20_000)  # the query's characters, never two of them in its order
    for at in (1000, 1_000_000, 1_999_000):
        text[at : at + 2] = unit
    assert match_starts("".join(text), query) == [1000, 1_000_000, 1_999_000]


def test_many_stems_are_looked_up_word_by_word_with_the_same_starts():
    """A long query (over FIND_MAX_STEMS stems) is matched in one pass over the text's words instead of
    one scan per stem (a 10,000-character query over a 4 MB page took seconds): same starts, on random
    texts of the pieces where the word rules differ (case, accents, digits of other scripts, `_`, kana
    and Hangul found inside longer runs, short stems that must be whole words)."""
    import random

    from ranker import snippets

    pieces = ["cell", "Cell", "CELLS", "cellular", "xcell", "cell_", "_cell", "cell2", "²cell", "cell½", "dna", "DNase",
              "über", "Über", "naïve", "café", "Ǆungla", "ǆungla", "ΑΘΗΝΑ", "Αθήνα", "ソウル", "ソウル市", "で", "서울", "서울시",
              "ab", "abc", "abcde", "abcdefg", "a", "ⅷ", "٣", "‿", " ", " ", "  ", "-", ".", ",", "(", ")", "\n", "'s"]  # fmt: skip
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choices(pieces, k=rng.randint(1, 120)))
        lowered = snippets._lowered(text)
        if len(lowered) != len(text) or snippets._HAN_CHAR.search(text):
            continue
        words = rng.sample(pieces, rng.randint(1, 12)) + [f"w{i}x" for i in range(snippets.FIND_MAX_STEMS + 1)]
        stems = snippets._sorted_stems(" ".join(words))
        assert len(stems) > snippets.FIND_MAX_STEMS
        assert snippets._word_starts_by_word(text, lowered, stems) == snippets._found_starts(text, lowered, stems), (text, words)
        assert snippets.match_starts(text, " ".join(words)) == snippets._found_starts(text, lowered, stems)


@pytest.mark.parametrize("text", ["深度研究智能体需要权威来源" * 30, "ธนาคารแห่งประเทศไทย" * 40,
                                  "see " + "https://www.example.org/" + "x" * 300 + "/target page"])  # fmt: skip
@pytest.mark.parametrize("max_chars", [40, 80, 240])
def test_a_snippet_cut_where_no_break_is_near_keeps_to_snippet_chars_marks_included(text, max_chars):
    """Cut where no space or stop was within reach (CJK, Thai, a long URL), the two marks took it to
    max_chars + 1 or + 2 characters (rgb_zh: 85 of 2,560 snippets at 80 were 81 long)."""
    made = snippet(text, "权威 ประเทศ target", max_chars)
    assert len(made) <= max_chars and made.strip("…") in " ".join(text.split())
