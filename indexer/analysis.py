"""Chinese (and Korean, Thai, Lao, Khmer, Myanmar) analysis in front of Lucene's English analyzer,
so that one index holds every language.

Lucene's default (English, Porter) analyzer splits Han text into single characters. Before text
reaches Lucene, every run of Han characters is replaced by its Chinese index units (characters
and overlapping character bigrams: `units`) written as opaque ASCII terms (`zh` + six-digit code
points, e.g. 成员 -> `zh025104021592`). Those pass the English analyzer unchanged: the standard
tokenizer keeps a letter+digit run as one term, a term ending in a digit has no Porter suffix, and
no such term is a stopword. Text without Han characters (nor the scripts and variants below) is
returned unchanged, so the English path is byte-for-byte what it was. Documents and queries go through the same function, so a mixed query
such as `RCEP 成员国` is analysed per script: `RCEP` by the English analyzer, 成员国 into Chinese units.

Two other script families go through the same path (their terms share the historical `zh` prefix;
code points keep them apart). Lucene's standard tokenizer keeps a run of Hangul syllables as one
term, so a Korean word with its particle (한국은행은) never matched the bare word, nor a compound
its parts: Hangul runs become syllables + syllable bigrams, as Han runs do. Thai, Lao, Khmer and
Myanmar write words without spaces, and the tokenizer keeps a whole phrase as one term: their runs
become character bigrams, the units a query's words share with the text holding them.

Spellings of one word that writers and readers vary are folded to one (`fold`), as Lucene's Greek,
Arabic and Persian normalizers do: Greek without accents and with σ for ς (capitals drop accents,
and a capital final sigma lower-cases to σ), Arabic without short vowels and tatweel and with one
alef, yeh and heh for their variants (also Persian's yeh and kaf), Hebrew without points, and
Turkish dotless ı as i (Lucene lower-cases the capital I of ılımlı to i). The invisible direction marks
pages put around words and numbers (&rlm;, &lrm;, isolates), a word joiner and a BOM inside the text
are dropped, and in a text with Hebrew or Arabic letters a zero-width non-joiner is a space: Lucene's
tokenizer keeps them in the word (البطالة + RLM is a term of its own, and so were `cancer` + LRM, pasted
from a page that set English inside Arabic, and Persian مصرف‌کننده, which others write مصرف کننده).
Latin-script text other than ı and those marks, and so English, is not touched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

# Han ideographs: CJK unified (+ extension A, B-H), compatibility ideographs and 〇.
HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Kana: hiragana, katakana (with its phonetic extensions) and half-width katakana.
KANA = "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
# Hangul syllables (precomposed, as NFC text has them).
HANGUL = "\uac00-\ud7a3"
# Scripts written without spaces between words (besides CJK): Thai, Lao, Myanmar (+ extensions), Khmer (+ symbols).
UNSPACED = "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\uaa60-\uaa7f\ua9e0-\ua9ff\u1780-\u17ff\u19e0-\u19ff"
_HAN_RUN = re.compile(f"[{HAN}]+")
_RUN = re.compile(f"[{HAN}]+|[{HANGUL}]+|[{UNSPACED}]+")
_HAN_CHAR = re.compile(f"[{HAN}]")
_HANGUL_CHAR = re.compile(f"[{HANGUL}]")
_TERM = re.compile(r"zh((?:\d{6})+)")

_GREEK_LETTERS = "\u0370-\u03ff\u1f00-\u1fff"
_GREEK_WORD = re.compile(f"[{_GREEK_LETTERS}][{_GREEK_LETTERS}\u0300-\u036f]*")
_DROPPED = (
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640"  # Arabic marks, tatweel
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"  # Hebrew points and cantillation
)
_REPLACED = {"\u0622": "\u0627", "\u0623": "\u0627", "\u0625": "\u0627", "\u0671": "\u0627",  # alef forms
             "\u0649": "\u064a", "\u06cc": "\u064a",  # alef maksura, Persian yeh -> yeh
             "\u0629": "\u0647", "\u06a9": "\u0643", "\u0131": "i"}  # teh marbuta -> heh, keheh -> kaf, ı -> i


def class_chars(ranges: str) -> str:
    """Every character of a character class's ranges and single characters ("a-cx" -> "abcx")."""
    return re.sub(r"(.)-(.)", lambda m: "".join(map(chr, range(ord(m.group(1)), ord(m.group(2)) + 1))), ranges)


_RTL_LETTER = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")  # Hebrew, Arabic, Syriac, Thaana, N'Ko...
# Invisible marks pasted text carries around and inside words (direction marks, a word joiner, a BOM
# within the text), which Lucene's tokenizer keeps in the term: `cancer` + LRM was no `cancer`.
_DIRECTION_MARKS = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_INVISIBLE = _DIRECTION_MARKS + "\u2060\ufeff"
_FOLD_TABLE = str.maketrans({**dict.fromkeys(class_chars(_DROPPED + _INVISIBLE)), **_REPLACED})
# In RTL text a zero-width non-joiner, which Persian writes between the parts of one word (مصرف‌کننده)
# where others write a space, becomes one (as Lucene's Persian analyzer does).
_RTL_TABLE = str.maketrans({"\u200c": " "})
# Builds whose analyzer predates `_INVISIBLE` (`backends.lucene.section.MARKS_IN_RTL_ONLY_ANALYZER`)
# dropped direction marks only in RTL text, and kept a word joiner and a BOM: their queries go in so.
_FOLD_TABLE_MARKS_IN_RTL_ONLY = str.maketrans({**dict.fromkeys(class_chars(_DROPPED)), **_REPLACED})
_RTL_TABLE_MARKS_IN_RTL_ONLY = str.maketrans({**dict.fromkeys(class_chars(_DIRECTION_MARKS)), "\u200c": " "})
_FOLDED = re.compile(f"[{_GREEK_LETTERS}{_DROPPED}{''.join(_REPLACED)}{_INVISIBLE}\u200c]")

Scheme = Literal["unigram", "bigram", "unigram+bigram"]
SCHEME: Scheme = "unigram+bigram"  # measured on rgb_zh against bigrams, words and Pyserini: docs/BENCHMARKS.md

# Function characters and words that carry no topic, so a query made only of them has no searchable
# terms. Small and general on purpose.
STOP_UNITS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 之 其 及 与 和 或 而 也 都 就 是 在 有 着 过 这 那 哪 谁 几 把 被 给 对 从 向 于 以 为 "
    "什么 怎么 怎样 如何 为何 为什么 哪些 哪里 哪个 多少 是否 是不是 有没有 还是 以及 或者 这个 那个 这些 那些".split()
)


def has_han(text: str) -> bool:
    return _HAN_RUN.search(text) is not None


def units(run: str, scheme: Scheme = SCHEME, stop: frozenset[str] = STOP_UNITS) -> Iterator[str]:
    """Chinese index units of one run of Han characters, in text order. Characters inside a function
    word are no unit, nor is a bigram of two such characters."""
    inside = _inside_stop(run, stop)
    if len(run) == 1:
        if not inside[0]:
            yield run
        return
    uni = scheme in ("unigram", "unigram+bigram")
    bi = scheme in ("bigram", "unigram+bigram")
    for i, ch in enumerate(run):
        if uni and not inside[i]:
            yield ch
        if bi and i + 1 < len(run) and not (inside[i] and inside[i + 1]):
            yield run[i : i + 2]


def _inside_stop(run: str, stop: frozenset[str]) -> list[bool]:
    """Per character: part of a function word (greedy longest match, left to right)."""
    inside = [False] * len(run)
    i = 0
    longest = max(map(len, stop), default=0)
    while i < len(run):
        for n in range(min(longest, len(run) - i), 0, -1):
            if run[i : i + n] in stop:
                inside[i : i + n] = [True] * n
                i += n
                break
        else:
            i += 1
    return inside


def term(unit: str) -> str:
    """The opaque ASCII index term of a Chinese unit."""
    return "zh" + "".join(f"{ord(c):06d}" for c in unit)


def decode_term(index_term: str) -> str:
    """A Chinese unit back from its index term; other terms are returned unchanged (for display)."""
    m = _TERM.fullmatch(index_term)
    if not m:
        return index_term
    digits = m.group(1)
    return "".join(chr(int(digits[i : i + 6])) for i in range(0, len(digits), 6))


def for_lucene(text: str, units_of: Callable[[str], Iterable[str]] = units, *, marks_in_rtl_only: bool = False) -> str:
    """`text` with every Han, Hangul and Thai/Lao/Khmer/Myanmar run replaced by its units' index terms
    (unchanged when it has none). `units_of` (for Han runs) is replaceable so that bench/ can compare
    other segmentations through the same path."""
    if text.isascii():
        return text
    text = fold(text, marks_in_rtl_only=marks_in_rtl_only)
    return _RUN.sub(lambda m: " " + " ".join(term(u) for u in run_units(m.group(0), units_of)) + " ", text)


def fold(text: str, *, marks_in_rtl_only: bool = False) -> str:
    """`text` with the spelling variants the module docstring lists folded (unchanged when it has none);
    `marks_in_rtl_only`: as builds of the analyzer before invisible marks were dropped everywhere."""
    if not _FOLDED.search(text):
        return text
    rtl, table = (_RTL_TABLE_MARKS_IN_RTL_ONLY, _FOLD_TABLE_MARKS_IN_RTL_ONLY) if marks_in_rtl_only else (_RTL_TABLE, _FOLD_TABLE)
    if _RTL_LETTER.search(text):
        text = text.translate(rtl)
    return _GREEK_WORD.sub(lambda m: _greek(m.group(0)), text.translate(table))


def _greek(word: str) -> str:
    bare = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare).lower().replace("\u03c2", "\u03c3")


def _one_character_folds() -> dict[int, str]:
    """The folds of `fold` that put one character for one: Greek letters with accents (and final
    sigma), the Arabic and Persian letter forms and ı. Snippets apply them to lower-cased text, whose
    positions they keep."""
    greek = {c: g for c in class_chars(_GREEK_LETTERS) if len(g := _greek(c)) == 1 and g != c.lower()}
    return str.maketrans({**greek, **_REPLACED})


SAME_LENGTH_FOLDS = _one_character_folds()


def for_lucene_han_only(text: str) -> str:
    """`for_lucene` of builds before Hangul and Thai/Lao/Khmer/Myanmar units (their queries go in so)."""
    if not has_han(text):
        return text
    return _HAN_RUN.sub(lambda m: " " + " ".join(term(u) for u in units(m.group(0))) + " ", text)


def run_units(run: str, han_units_of: Callable[[str], Iterable[str]] = units) -> Iterable[str]:
    """The index units of one run `_RUN` finds: Han and Hangul characters + bigrams (function words
    only for Han), characters of the scripts without spaces in bigrams (a single one alone: one
    Thai letter says little, two say much)."""
    if _HAN_CHAR.match(run):
        return han_units_of(run)
    if _HANGUL_CHAR.match(run):
        return units(run, stop=frozenset())
    return units(run, "bigram", stop=frozenset())


def han_units(text: str, scheme: Scheme = SCHEME) -> list[str]:
    """The Chinese units of all Han runs in `text` (what snippets highlight)."""
    return [u for m in _HAN_RUN.finditer(text) for u in units(m.group(0), scheme)]
