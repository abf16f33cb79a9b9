from __future__ import annotations

import pytest

from indexer.chunker import WORD, ChunkSettings, chunk_document, count_words
from indexer.schema import Document, doc_id_of


def doc(text: str, doc_id: str = "d1", title: str = "T") -> Document:
    return Document(doc_id=doc_id, text=text, title=title)


def assert_offsets(d: Document, passages) -> None:
    for p in passages:
        assert d.text[p.start : p.end] == p.text
        assert p.text == p.text.strip()
        assert p.doc_id == d.doc_id and p.title == d.title


@pytest.mark.parametrize("text", ["", "   ", "\n\n\r\n\t"])
def test_empty_text_gives_no_passages(text):
    assert chunk_document(doc(text)) == []
    assert chunk_document(doc(text), ChunkSettings(target_words=0)) == []


def test_paragraphs_are_packed_up_to_target():
    paras = [" ".join(f"w{i}_{j}" for j in range(60)) for i in range(5)]  # 5 x 60 words
    d = doc("\n\n".join(paras))
    passages = chunk_document(d, ChunkSettings(target_words=130))
    assert [count_words(p.text) for p in passages] == [120, 120, 60]
    assert [p.passage_id for p in passages] == ["d1#0", "d1#1", "d1#2"]
    assert_offsets(d, passages)


def test_one_giant_paragraph_splits_at_sentences():
    sentences = [" ".join(["word"] * 29) + f" end{i}." for i in range(20)]  # 20 sentences x 30 words
    d = doc(" ".join(sentences))
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert len(passages) == 7  # 3 sentences (90 words) per passage; the 2-sentence tail stays
    for p in passages:
        assert p.text.endswith(".")  # cut at a sentence boundary
        assert count_words(p.text) <= 100
    assert_offsets(d, passages)


def test_giant_sentence_without_punctuation_splits_at_words():
    d = doc(" ".join(f"t{i}" for i in range(1000)))
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert all(count_words(p.text) <= 100 for p in passages)
    assert sum(count_words(p.text) for p in passages) == 1000
    assert_offsets(d, passages)


def test_crlf_paragraph_breaks():
    d = doc("first paragraph here.\r\n\r\nsecond paragraph here.\r\n  \r\nthird one.")
    passages = chunk_document(d, ChunkSettings(target_words=3))
    assert [p.text for p in passages] == ["first paragraph here.", "second paragraph here.", "third one."]
    assert_offsets(d, passages)


def test_unicode_and_cjk_words_are_counted_and_offsets_hold():
    cjk = "深度研究智能体需要权威来源。" * 30  # 13 ideographs per sentence
    d = doc(f"Émile Zoë naïve café.\n\n{cjk}\n\n😀 emoji paragraph ✓.")
    passages = chunk_document(d, ChunkSettings(target_words=50))
    assert count_words("深度研究") == 4
    assert len(passages) > 3
    assert all(count_words(p.text) <= 60 for p in passages)
    assert_offsets(d, passages)


def test_whole_document_setting_keeps_one_passage():
    text = "\n\n".join(["para " * 300] * 3)
    d = doc(text)
    (p,) = chunk_document(d, ChunkSettings(target_words=0))
    assert p.passage_id == "d1#0" and p.text == text.strip()


def test_small_tail_is_folded_into_previous_passage():
    d = doc(" ".join(["a"] * 100) + "\n\n" + "tail words")
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert len(passages) == 1 and passages[0].text.endswith("tail words")


def test_overlap_repeats_trailing_units():
    paras = [f"para{i} " + " ".join(["x"] * 19) for i in range(6)]  # 20 words each
    d = doc("\n\n".join(paras))
    passages = chunk_document(d, ChunkSettings(target_words=40, overlap_words=20))
    assert passages[1].text.startswith("para1")  # para1 repeated from passage 0
    assert_offsets(d, passages)


def test_ids_are_deterministic_and_doc_ids_with_hash_survive():
    d = doc("a b c\n\nd e f", doc_id="report#2024")
    first = chunk_document(d, ChunkSettings(target_words=3))
    second = chunk_document(d, ChunkSettings(target_words=3))
    assert first == second
    assert [doc_id_of(p.passage_id) for p in first] == ["report#2024", "report#2024"]


PAIRS = ["“”", "‘’", "「」", "『』", "（）", "《》", "【】"]


def test_cjk_closing_quotes_and_brackets_stay_with_their_sentence():
    d = doc("".join(f"{o}这是用来测试切分的句子{i}。{c}" for i, (o, c) in enumerate(PAIRS * 3)))
    passages = chunk_document(d, ChunkSettings(target_words=20))  # about one sentence a passage
    assert len(passages) == len(PAIRS) * 3
    for p, (o, c) in zip(passages, PAIRS * 3):
        assert p.text.startswith(o) and p.text.endswith("。" + c), p.text
    assert_offsets(d, passages)


def _han_range_ends() -> list[str]:
    """The first and last character of every range in the analyzer's HAN class."""
    from indexer.analysis import HAN

    return [ch for i, ch in enumerate(HAN) if ch != "-"]


@pytest.mark.parametrize("ch", [*_han_range_ends(), "ｶ", "ﾝ"])
def test_every_han_character_of_the_analyzer_and_half_width_kana_count_one_word_each(ch):
    assert count_words(ch * 3) == 3
    d = doc(ch * 500)
    passages = chunk_document(d, ChunkSettings(target_words=100))  # a run without spaces is cut by characters
    assert [len(p.text) for p in passages] == [100] * 5
    assert_offsets(d, passages)


@pytest.mark.parametrize("unit", ["word ", "Short one. "])
def test_one_long_paragraph_is_chunked_in_memory_near_its_own_size(unit):
    """A book-length paragraph (1 MB): no list of all its words or sentences (a match object or a
    tuple each, 10-30x the text) is built; the passages themselves hold about one copy of it. The
    peak is a fixed multiple of the text's size (1.3-1.5x at 1 MB and at 4 MB alike)."""
    import tracemalloc

    d = doc(unit * (1_000_000 // len(unit)))
    tracemalloc.start()
    try:
        passages = chunk_document(d, ChunkSettings(target_words=200, overlap_words=20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(d.text), peak
    assert all(count_words(p.text) <= 200 for p in passages) and passages[-1].end == len(d.text.rstrip())
    assert_offsets(d, passages)


def _words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


@pytest.mark.parametrize(("pieces", "separator", "overlap"), [
    # Only a sentence longer than 2x the target is cut at words: 150 words (target 100) stay whole.
    pytest.param([_words("s", 150) + ".", _words("t", 10) + "."], " ", 0, id="sentence-up-to-2x-target-not-split"),
    # Only a tail under target//4 words is folded: 30 words after a 90-word passage stay apart.
    pytest.param([_words("a", 90), _words("b", 30)], "\n\n", 0, id="quarter-target-tail-not-folded"),
    # A passage of one unit carries nothing into the next, even when that unit fits in the overlap.
    pytest.param([_words("a", 40), _words("b", 70)], "\n\n", 50, id="overlap-never-carries-a-whole-passage"),
])  # fmt: skip
def test_chunking_rules_keep_these_pieces_as_passages(pieces, separator, overlap):
    d = doc(separator.join(pieces))
    passages = chunk_document(d, ChunkSettings(target_words=100, overlap_words=overlap))
    assert [p.text for p in passages] == pieces
    assert_offsets(d, passages)


@pytest.mark.parametrize("closer", ['"', "'", ")", "]", '")'])
def test_closing_quotes_and_brackets_after_a_stop_stay_with_their_sentence(closer):
    opener = {'"': '"', "'": "'", ")": "(", "]": "[", '")': '("'}[closer]
    first = f"She said {opener}stop now.{closer}"
    second = "Then we all left the room quickly."
    d = doc(f"{first} {second}")
    passages = chunk_document(d, ChunkSettings(target_words=5))  # the paragraph (11 words) is split at sentences
    assert [p.text for p in passages] == [first, second]
    assert_offsets(d, passages)


def test_a_paragraph_of_at_most_target_words_is_never_split():
    """An 80-word paragraph (target 100) is one unit: its sentences are not packed across passages."""
    first = _words("a", 39) + " end."
    middle = " ".join(_words(f"m{k}_", 19) + " end." for k in range(4))  # 80 words in 4 sentences
    last = _words("c", 39) + " end."
    d = doc("\n\n".join([first, middle, last]))
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert [p.text for p in passages] == [first, middle, last]
    assert_offsets(d, passages)


def _thai_text() -> str:
    from tests.multilingual_texts import DOCS

    return " ".join(text for _, lang, _, _, text in DOCS if lang == "th")


@pytest.mark.parametrize("separator", [" ", ""])  # phrases spaced as Thai writes them; a run with no space at all
def test_scripts_without_spaces_are_cut_into_passages_of_a_few_hundred_words(separator):
    """Thai, Lao, Khmer and Myanmar space phrases, not words: a Thai document of 10,000 characters
    was one passage (each spaced phrase counted one word). Their characters count in threes, about a
    word, and a cut falls between two characters, never before a vowel or tone mark."""
    import unicodedata

    d = doc("\n\n".join([_thai_text().replace(" ", separator)] * 30))
    passages = chunk_document(d)
    assert len(passages) >= 8 and max(len(p.text) for p in passages) < 2500
    for p in passages:
        assert not unicodedata.category(p.text[0]).startswith("M")
        assert p.end == len(d.text) or not unicodedata.category(d.text[p.end]).startswith("M")
    assert_offsets(d, passages)


def test_khmer_and_myanmar_stacked_consonants_stay_in_one_word():
    # Khmer ក្ស (ka, coeng, sa) and Myanmar က္က (ka, virama, ka): the second consonant is written under the first
    for stacked in ("\u1780\u17d2\u179f", "\u1000\u1039\u1000"):
        assert [m.group(0) for m in WORD.finditer(stacked * 4)][0].startswith(stacked)
        assert all(not m.group(0).startswith(stacked[1:]) for m in WORD.finditer(stacked * 4))


@pytest.mark.parametrize("run", ["\u0e01" + "\u0e48" * 20_000, "\u1780\u17d2" * 10_000 + "\u1780", "\u1000\u1039" * 10_000])
def test_a_run_of_marks_or_stacked_consonants_is_cut_too(run):
    """A Thai letter with 20,000 tone marks (spam repeats them), or 10,000 Khmer or Myanmar consonants each
    stacked under the last: the marks and stacks a character took were unbounded, so the run was one
    character, one word and one passage of 20,000 characters however long it grew."""
    d = doc(run)
    passages = chunk_document(d)
    assert len(passages) > 1 and max(len(p.text) for p in passages) < 10_000
    assert_offsets(d, passages)


# an ideographic variation sequence, a variation selector, NFD が
@pytest.mark.parametrize("char", ["葛\U000e0100", "辻\ufe00", "か\u3099"])
def test_a_cjk_character_keeps_its_variation_selector_or_voicing_mark(char):
    d = doc(char * 300)
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert count_words(char * 3) == 3 and [p.text for p in passages] == [char * 100] * 3
    assert_offsets(d, passages)


@pytest.mark.parametrize("sentence", [
    "भारतीय रिज़र्व बैंक की मौद्रिक नीति समिति ने रेपो दर को अपरिवर्तित रखा।",  # Hindi danda
    "هل سيبقى معدل الفائدة ثابتا حتى نهاية العام المقبل؟",  # Arabic question mark
    "مرکزی بینک نے شرح سود میں کوئی تبدیلی نہیں کی۔",  # Urdu full stop
    "ធនាគារជាតិនៃកម្ពុជា បានរក្សាអត្រាការប្រាក់ដដែល។",  # Khmer khan
    "မြန်မာနိုင်ငံတော်ဗဟိုဘဏ်သည် အတိုးနှုန်းကို မပြောင်းလဲဘဲ ထားရှိသည်။",  # Myanmar section mark
    "Հայաստանի կենտրոնական բանկը պահպանեց վերաֆինանսավորման տոկոսադրույքը։",  # Armenian full stop
])  # fmt: skip
def test_a_long_paragraph_splits_after_the_full_stops_of_other_scripts(sentence):
    """Hindi ends a sentence with ।, Arabic asks with ؟, Urdu stops with ۔: a long paragraph was cut at a
    word count, in the middle of a sentence, where it had no . ! ?"""
    d = doc(" ".join([sentence] * 40))
    words = count_words(sentence)
    passages = chunk_document(d, ChunkSettings(target_words=words * 3 + words // 2))  # three sentences fit, not four
    assert len(passages) > 1 and all(p.text.endswith(sentence[-1]) for p in passages), [p.text[-5:] for p in passages]
    assert_offsets(d, passages)


def test_a_heading_that_would_end_a_passage_opens_the_next_with_its_section():
    section = [_words("p", 39) + " end.", _words("q", 39) + " end."]
    d = doc("\n\n".join(["1. Overview", *section, "2. Prices (annual)", *section, "| 2005 | 7.5 |", *section]))
    passages = chunk_document(d, ChunkSettings(target_words=90))
    assert [p.text.split("\n")[0] for p in passages] == ["1. Overview", "2. Prices (annual)", section[0]]
    assert passages[0].text.endswith(section[1])
    # a table row (or a sentence) ending a passage stays where it is
    assert passages[1].text.endswith("| 2005 | 7.5 |")
    assert_offsets(d, passages)


def test_headings_take_in_the_unit_they_head_however_long():
    """A heading whose section starts with a long unit (a table, a list) was a passage of its own:
    `Table 3. Annual inflation by year`, then the table without it."""
    d = doc("\n\n".join(["Contents", "Tables", _words("a", 95) + "."]))
    passages = chunk_document(d, ChunkSettings(target_words=90))
    assert [p.text for p in passages] == ["Contents\n\nTables\n\n" + _words("a", 95) + "."]
    table = "\n".join(f"| {year} | {year % 7}.5 | {_words('w', 3)} |" for year in range(2000, 2040))  # one unit, 240 words
    d = doc("\n\n".join([_words("p", 60) + ".", "Table 3. Annual inflation by year", table, _words("q", 60) + "."]))
    passages = chunk_document(d, ChunkSettings(target_words=200))
    assert [p.text.split("\n")[0] for p in passages] == [_words("p", 60) + ".", "Table 3. Annual inflation by year", _words("q", 60) + "."]
    assert passages[1].text.endswith(table)
    assert_offsets(d, passages)


def test_a_sentence_cut_at_words_is_cut_into_pieces_of_about_equal_length():
    """410 words at a target of 200 were 200 + 200 + a passage of 10 between two others."""
    d = doc("\n\n".join([_words("a", 410), _words("b", 410), _words("c", 300)]))
    passages = chunk_document(d, ChunkSettings(target_words=200))
    assert [count_words(p.text) for p in passages] == [137, 137, 136, 137, 137, 136, 300]  # up to 2x: one sentence, kept
    assert_offsets(d, passages)


def test_a_heading_never_leaves_a_passage_of_the_overlap_alone():
    # A0 A1 fill a passage; "2. Prices" opens the next, after A1 carried over as overlap; N does not fit beside
    # them. Closed there, the passage would be A1 (a copy of the last passage's end) and the heading: the
    # heading takes N in instead, past the target by its two words.
    a0, a1, n = _words("a", 81) + ".", _words("b", 8) + ".", _words("n", 85) + "."
    d = doc("\n\n".join([a0, a1, "2. Prices", n]))
    passages = chunk_document(d, ChunkSettings(target_words=90, overlap_words=10))
    assert [p.text for p in passages] == [f"{a0}\n\n{a1}", f"{a1}\n\n2. Prices\n\n{n}"]
    assert_offsets(d, passages)


@pytest.mark.parametrize("abbreviated", ["Smith et al.", "1.20 vs.", "shown in Fig.", "seen e.g.", "the U.S.", "strains of S."])
def test_a_long_paragraph_is_not_cut_after_an_abbreviation(abbreviated):
    """`_SENTENCE_END` took every full stop before a space: `As reported by Smith et al.` ended one
    passage and `the risk fell by half` opened the next, without its subject."""
    sentence = _words("s", 17) + "."
    tail = _words("t", 15) + "."
    # 85 words, then the abbreviated sentence: its first 5-6 words fit within the target, not all 20-21
    d = doc(" ".join([sentence] * 5 + [f"As reported by {abbreviated} {tail}"] + [sentence] * 5))
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert not any(p.text.endswith(abbreviated) for p in passages)
    assert any(f"{abbreviated} {tail}" in p.text for p in passages)
    assert_offsets(d, passages)


def test_a_number_or_a_word_before_a_full_stop_still_ends_a_sentence():
    d = doc(" ".join(f"{_words('s', 17)} was {i}.5." if i % 2 else f"{_words('t', 18)} Sweden." for i in range(12)))
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert [p.text[-1] for p in passages] == ["."] * len(passages) and len(passages) == 3
    assert all(p.text.endswith(("5.", "Sweden.")) for p in passages)


@pytest.mark.parametrize("marker", ["{n}.", "{n})", "({n})", "-", "•"])
def test_the_last_items_of_a_list_stay_with_the_list(marker):
    """Items are as short as headings and end in a letter: the last two went on to the next passage,
    away from the list's lead-in and first items."""
    items = [f"{marker.format(n=n)} Publish item number {n} of the plan" for n in range(1, 6)]
    d = doc("\n\n".join([_words("a", 140) + ".", "The committee recommends:", *items, _words("b", 150) + "."]))
    passages = chunk_document(d, ChunkSettings(target_words=200))
    assert passages[0].text.endswith(items[-1]) and passages[1].text.startswith("b0")
    assert_offsets(d, passages)


def test_a_numbered_heading_still_opens_its_section():
    heading = "4. Effects of the reserve ratio on lending to small business firms"  # 12 words
    for title in (heading, "## " + heading):  # a markdown marker is no word
        d = doc("\n\n".join([_words("a", 150) + ".", title, _words("b", 150) + "."]))
        passages = chunk_document(d, ChunkSettings(target_words=200))
        assert [p.text.split("\n")[0] for p in passages] == [_words("a", 150) + ".", title]
        assert_offsets(d, passages)


def test_a_numbered_heading_over_a_numbered_list_still_opens_its_section():
    """The list's first item came right after the heading: the heading was taken for an item of its
    kind and left at the end of the passage before, its list opening the next one without it."""
    heading = "2. Recommendations of the committee"
    items = [f"{n}. Publish item number {n} of the plan" for n in range(1, 6)]
    d = doc("\n\n".join([_words("a", 195) + ".", heading, *items, _words("b", 150) + "."]))
    passages = chunk_document(d, ChunkSettings(target_words=200))
    assert passages[0].text.endswith(_words("a", 195) + ".") and passages[1].text.startswith(heading)
    assert_offsets(d, passages)


@pytest.mark.parametrize("ending", ["The latency was 20 ms.", "It rises with x.", "Levels of Ca."])
def test_a_unit_or_a_lower_case_letter_before_a_full_stop_ends_a_sentence(ending):
    sentence = _words("s", 17) + "."
    d = doc(" ".join([sentence] * 5 + [ending, _words("t", 15) + "."] + [sentence] * 5))
    passages = chunk_document(d, ChunkSettings(target_words=100))
    assert passages[0].text.endswith(ending), passages[0].text[-40:]
