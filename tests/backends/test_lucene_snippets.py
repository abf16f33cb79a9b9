"""Snippets computed in the JVM (Snippets.java) are `ranker.snippets.snippet`'s strings exactly: on
real SciFact documents with real queries, on texts built from the characters where Python and Java
disagree (whitespace, letters, lower case, combining marks, joiners), and for the texts left to
Python (Han, outside the BMP, a capital sigma)."""

from __future__ import annotations

import gzip
import json
import os
import random
import threading
import time
from pathlib import Path

import pytest

from backends.lucene import snippets as in_jvm
from backends.lucene.jvm import start_jvm
from ranker.snippets import _sorted_stems, java_tables, snippet, snippets
from tests.conftest import data_dir


@pytest.fixture(scope="module", autouse=True)
def jvm():
    start_jvm()
    assert in_jvm.available()


def jvm_made(pairs: list[tuple[str, str]], max_chars: int = 240, threads: int | None = None) -> list[str | None]:
    """The JVM's own answers (None: left to Python), without the Python fallback."""
    queries: dict[str, int] = {}
    query_of = [queries.setdefault(q, len(queries)) for _, q in pairs]
    made = in_jvm.make([t for t, _ in pairs], query_of, [_sorted_stems(q) for q in queries], max_chars, java_tables,
                       threads)  # fmt: skip
    assert made is not None, "the helper jar lacks drsearch.Snippets: run `make lucene-helper`"
    return made


def test_scifact_snippets_are_pythons_and_made_in_the_jvm():
    scifact = data_dir("scifact")
    with gzip.open(scifact / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(400), fh)]
    with open(scifact / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for _, line in zip(range(400), fh)]
    pairs = [(t, queries[(i * 7 + j) % len(queries)]) for i, t in enumerate(texts) for j in range(3)]
    for max_chars in (240, 60, 1000):
        expected = [snippet(t, q, max_chars) for t, q in pairs]
        made = jvm_made(pairs, max_chars)
        assert sum(m is None for m in made) == 0  # SciFact has no Han, nothing outside the BMP, no capital sigma
        assert made == expected
        assert snippets(pairs, max_chars) == expected
    assert any(e.startswith("…") and e.endswith("…") for e in expected[:30])  # the windows did move


# Characters where Java's and Python's ideas of space, letter, lower case or a cut differ.
ALPHABET = (
    list("abcdefghij ABCDE 0123 _-.,;:!?()") + ["  ", "\t", "\n", "\r\n", "\xa0", "\u2007", "\u202f", "\u3000", "\x1c",
    "\x85", "\u2028", "é", "É", "ß", "ẞ", "ǅ", "ﬁ", "Ω", "ω", "²", "½", "Ⅻ", "٣", "\u0301", "\u0308", "\u20dd", "\u200d",
    "\ufe0f", "\ufe0e", "。", "，", "！", "？", "、", "ー", "\u00ad", "\u200b", "ʼ", "ǈ"]
)  # fmt: skip


def random_text(rng: random.Random, words: list[str]) -> str:
    parts = []
    for _ in range(rng.randrange(0, 160)):
        parts.append(rng.choice(words) if rng.random() < 0.5 else rng.choice(ALPHABET))
        parts.append(rng.choice([" ", " ", "", "\n", "\xa0"]))
    return "".join(parts)


def test_random_texts_of_awkward_characters_match_python():
    rng = random.Random(14)
    words = ["inflation", "Inflation", "INFLATIONARY", "dna", "DNase", "ǅemal", "straße", "ÉCOLE", "école",
             "cell_line", "x²", "naïve", "nai\u0308ve", "emoji\u200dset", "a\u0301b", "☀", "☀\ufe0f", "⌚x"]  # fmt: skip
    queries = ["inflation dna", "École naïve straße", "ǅemal cell", "the of and", "", "x² ½ Ⅻ", "nai\u0308ve a\u0301b",
               "☀", "⌚ dna"]  # fmt: skip
    pairs = [(random_text(rng, words), rng.choice(queries)) for _ in range(1500)]
    for max_chars in (240, 40, 7):
        made = jvm_made(pairs, max_chars)
        assert sum(m is None for m in made) == 0
        assert made == [snippet(t, q, max_chars) for t, q in pairs]
        assert max(map(len, made)) <= max_chars  # the marks counted, also where no break was near a cut


def test_kana_texts_are_made_in_the_jvm_and_find_a_word_after_a_particle():
    """Japanese without Han goes to the JVM: kana are no word characters there either, so a query
    word right after a particle (で, が) is a match, as in Python."""
    rng = random.Random(3)
    kana = ["これは", "ながい", "ぶんしょう", "です。", "オリンピック", "で", "が", "カイサイ", "ｵﾘﾝﾋﾟｯｸ", "cell", " "]
    pairs = [("".join(rng.choice(kana) for _ in range(rng.randrange(20, 120))), q)
             for q in ("オリンピック", "カイサ cell", "ｵﾘﾝﾋﾟｯｸ") for _ in range(200)]  # fmt: skip
    pairs.append(("これはながいぶんしょうです。" * 20 + "とうきょうでオリンピックがかいさいされた。" + "これはながいぶんしょうです。" * 20, "オリンピック"))
    made = jvm_made(pairs, 60)
    assert sum(m is None for m in made) == 0
    assert made == [snippet(t, q, 60) for t, q in pairs]
    assert "でオリンピックが" in made[-1] and made[-1].startswith("…")


def test_a_response_made_in_parts_side_by_side_is_the_one_made_in_one():
    # Parts are cut by text length (one part gets the few long texts), each part's hits keep their
    # order, and texts left to Python stay None wherever the cuts fall.
    rng = random.Random(7)
    words = ["inflation", "École", "naïve", "dna", "cell_line"]
    han = "中国经济增长 " * 30
    pairs = [(random_text(rng, words) * (8 if i % 37 == 0 else 1), rng.choice(["inflation dna", "École naïve", "cell"]))
             for i in range(301)]  # fmt: skip
    pairs[150] = (han, "inflation")
    expected = jvm_made(pairs, 60, threads=1)
    assert expected[150] is None and expected == [None if i == 150 else snippet(t, q, 60) for i, (t, q) in enumerate(pairs)]
    for threads in (2, 3, 8, 64):
        assert jvm_made(pairs, 60, threads) == expected
    assert jvm_made(pairs[:63], 60, 2) == expected[:63]  # under two parts' worth: made in one


@pytest.mark.skipif(not Path("/proc/thread-self/stat").exists(), reason="per-thread niceness is read from Linux's /proc")
def test_a_low_priority_callers_parts_run_at_its_priority():
    # A bulk request is formatted on a thread with raised niceness (service.priority); the Java
    # helpers that take its snippets' other parts must not run them at the normal priority.
    from service.priority import lower_this_thread

    pairs = [(f"{' '.join(['filler'] * 80)} inflation {i}", "inflation") for i in range(200)]
    expected = [snippet(t, q, 60) for t, q in pairs]
    seen: list[int] = []

    def low_priority_call() -> None:
        assert lower_this_thread(7)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert jvm_made(pairs, 60, threads=2) == expected

    caller = threading.Thread(target=low_priority_call)
    caller.start()
    caller.join()
    assert jvm_made(pairs, 60, threads=2) == expected  # and a normal-priority call
    normal = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    # A helper names itself once it first runs, which may be after the call returned (the caller
    # took every part itself): until then its name is its creator's. Wait for both pools' names.
    for _ in range(100):
        helpers = snippet_helpers()
        if {seen[0], normal} <= {served for served, _ in helpers}:
            break
        time.sleep(0.05)
    assert seen[0] > normal and {seen[0], normal} <= {served for served, _ in helpers}
    assert all(served == own for served, own in helpers)


def snippet_helpers() -> list[tuple[int, int]]:
    """(the niceness its pool serves, its own) for each named snippet helper thread of this process."""
    helpers = []
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text() if name.startswith("snip-nice") else ""
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        if stat:
            helpers.append((int(name.removeprefix("snip-nice")), int(stat.rsplit(")", 1)[1].split()[16])))
    return helpers


def test_texts_left_to_python_still_get_pythons_snippets():
    filler = " ".join(f"filler{i}" for i in range(60))
    han = f"{filler} 中国经济增长 inflation {filler}"
    sigma = f"{filler} ΟΔΟΣ inflation {filler}"  # capital sigma: Python lower-cases it by its neighbours
    dotted = f"{filler} İstanbul inflation {filler}"  # lower() gives two characters
    astral = f"{filler} \U0001f600 inflation {filler}"
    plain = f"{filler} inflation {filler}"
    pairs = [(han, "inflation 经济"), (sigma, "inflation"), (dotted, "inflation"), (plain, "inflation")]
    assert jvm_made(pairs) == [None, None, None, snippet(plain, "inflation")]
    pairs.append((astral, "inflation"))  # not sent to Java at all: its offsets would count UTF-16 units
    assert jvm_made(pairs) == [None, None, None, snippet(plain, "inflation"), None]
    assert snippets(pairs) == [snippet(t, q) for t, q in pairs]
    assert "inflation" in snippets(pairs)[4]


def test_long_responses_go_to_the_jvm_in_parts(monkeypatch):
    filler = " ".join(f"filler{i}" for i in range(40))
    pairs = [(f"{filler} inflation number {i:02d} {filler}", "inflation number") for i in range(30)]
    calls = []
    real_make = in_jvm.make
    monkeypatch.setattr(in_jvm, "make", lambda texts, *rest: calls.append(len(texts)) or real_make(texts, *rest))
    monkeypatch.setattr("ranker.snippets.JVM_CALL_CHARS", 3 * len(pairs[0][0]))
    assert snippets(pairs, 80) == [snippet(t, q, 80) for t, q in pairs]
    assert calls == [3] * 10


def test_a_failing_jvm_call_leaves_the_snippets_to_python():
    # Hit 0 names query 5 of 1: the Java side fails (index out of bounds); nothing is returned from it.
    assert in_jvm.make(["some text " * 40], [5], [("some",)], 60, java_tables) is None


def test_queries_without_a_stem_get_the_start_of_each_text():
    pairs = [("the of and " * 50, "the of"), ("x " * 300, "and or")]  # nothing but stopwords to look for
    assert jvm_made(pairs, 60) == [snippet(t, q, 60) for t, q in pairs]
    assert jvm_made(pairs, 60)[1].startswith("x x ")
