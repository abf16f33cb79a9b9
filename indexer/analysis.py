"""Chinese analysis in front of Lucene's English analyzer, so that one index holds both languages.

Lucene's default (English, Porter) analyzer splits Han text into single characters. Before text
reaches Lucene, every run of Han characters is replaced by its Chinese index units (characters
and overlapping character bigrams: `units`) written as opaque ASCII terms (`zh` + six-digit code
points, e.g. 成员 -> `zh025104021592`). Those pass the English analyzer unchanged: the standard
tokenizer keeps a letter+digit run as one term, a term ending in a digit has no Porter suffix, and
no such term is a stopword. Text without Han characters is returned unchanged, so the English path
is byte-for-byte what it was. Documents and queries go through the same function, so a mixed query
such as `RCEP 成员国` is analysed per script: `RCEP` by the English analyzer, 成员国 into Chinese units.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

# Han ideographs: CJK unified (+ extension A, B-H), compatibility ideographs and 〇.
HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Kana: hiragana, katakana (with its phonetic extensions) and half-width katakana.
KANA = "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HAN_RUN = re.compile(f"[{HAN}]+")
_TERM = re.compile(r"zh((?:\d{6})+)")

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


def for_lucene(text: str, units_of: Callable[[str], Iterable[str]] = units) -> str:
    """`text` with every Han run replaced by its units' index terms (unchanged when it has no Han).
    `units_of` is replaceable so that bench/ can compare other segmentations through the same path."""
    if not has_han(text):
        return text
    return _HAN_RUN.sub(lambda m: " " + " ".join(term(u) for u in units_of(m.group(0))) + " ", text)


def han_units(text: str, scheme: Scheme = SCHEME) -> list[str]:
    """The Chinese units of all Han runs in `text` (what snippets highlight)."""
    return [u for m in _HAN_RUN.finditer(text) for u in units(m.group(0), scheme)]
