"""Query-biased snippets: the window of a passage with the most query-term matches.

Words match by 5-character prefix (in Japanese kana, Korean and Thai-like scripts also inside a longer
word, as the index finds them there), lower-cased and with the spellings the index folds one character
for one folded (Greek accents and final sigma, Arabic letter forms, ı); Chinese matches by the query's
character bigrams (single characters only where a Han run is one character long), the units the index searches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import regex

from indexer.analysis import HAN, HANGUL, KANA, SAME_LENGTH_FOLDS, UNSPACED, units
from indexer.query_cache import query_cache

_HAN_RUN = re.compile(f"[{HAN}]+")
_W = f"[^\\W{HAN}]"  # a word character other than Han (Han is matched by units, not words)
_TOKEN = re.compile(_W + "+")
_PICTOGRAPH = regex.compile(r"\p{Extended_Pictographic}")
_BREAK = re.compile(r"[\s。，、；：！？]")  # where a cut reads naturally
# Public: the search page highlights words the way snippets pick them.
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with what which who how".split()
)


# The possessive 's the index drops (Lucene's EnglishPossessiveFilter): as a query word of its own,
# `s` would mark every other possessive in a passage.
_POSSESSIVE = re.compile(r"(?<=\w)['’＇][sS]\b")


def _stems(query: str) -> set[str]:
    # A 5-character prefix is a cheap, language-agnostic stand-in for stemming. An emoji is a word of
    # its own, as the index has it (`🚀` finds `🚀`): a query of one got the start of each passage.
    words = _TOKEN.findall(_POSSESSIVE.sub("", query))
    return {_lowered(t)[:5] for t in words if t.lower() not in STOPWORDS} | set(_PICTOGRAPH.findall(query))


def _lowered(text: str) -> str:
    """`text` lower-cased, and with the spellings the index folds one character for one folded as
    well (Αθήνα and ΑΘΗΝΑ are one word there, so a snippet finds either for the other)."""
    lowered = text.lower()
    return lowered if lowered.isascii() else lowered.translate(SAME_LENGTH_FOLDS)


# A character inside a word that spaces delimit: not Han, and not kana either, since Japanese runs
# its words together (a query word right after a particle such as で is still a match); nor Hangul
# or Thai, Lao, Khmer, Myanmar, which the index searches by bigrams (a word inside a compound or an
# unspaced phrase is a match there too).
_RUN_ON = f"{KANA}{HANGUL}{UNSPACED}"
_WORD_CHAR = re.compile(f"[^\\W{HAN}{_RUN_ON}]")
_RUN_ON_CHAR = re.compile(f"[{_RUN_ON}]")
_HAN_CHAR = re.compile(f"[{HAN}]")


@query_cache(maxsize=1024)
def _matcher(query: str, ignore_case: bool = False) -> re.Pattern[str] | None:
    """The query's stems as plain literals, longest first. The word-boundary conditions are checked
    per match in `match_starts` with one pattern compiled once: put into the query's own pattern, the
    word class (all of Unicode's letters but Han) made compiling it cost ~6-40 ms per query, more than
    the search itself. The stems are lower case: the pattern runs over the lower-cased text, 4x faster
    than IGNORECASE (kept for texts whose length lower() changes)."""
    stems = sorted(_stems(query), key=lambda s: (-len(s), s))
    return re.compile("|".join(map(re.escape, stems)), re.IGNORECASE if ignore_case else 0) if stems else None


@query_cache(maxsize=1024)
def _han_finder(query: str) -> tuple[frozenset[str], re.Pattern[str]] | None:
    """The query's Chinese units, and a character class of the characters they start with. Put in
    an alternation, the units were tried one by one at each character of the text that starts one: a
    long Chinese query over a long Chinese text took their product (10,000 characters over 2 million: minutes)."""
    found = frozenset(_han_units(query))
    return (found, re.compile("[" + "".join(sorted({u[0] for u in found})) + "]")) if found else None


@query_cache(maxsize=1024)
def _sorted_stems(query: str) -> tuple[str, ...]:
    return tuple(sorted(_stems(query)))


def match_starts(text: str, query: str) -> list[int]:
    """Where a word whose 5-character prefix is a query stem starts (a shorter stem must be the whole
    word), and where a query's Chinese unit occurs."""
    lowered = _lowered(text)
    same_length = len(lowered) == len(text)  # positions in `lowered` are positions in `text`
    if same_length and (text.isascii() or not _HAN_CHAR.search(text)):
        return _word_starts(text, lowered, _sorted_stems(query))
    starts = _han_starts(text, _han_finder(query))  # stems have no Han character: the two never overlap
    matcher = _matcher(query, ignore_case=not same_length)
    word_char = _WORD_CHAR.match
    for m in matcher.finditer(lowered if same_length else text) if matcher else ():
        start, end = m.span()
        if start and word_char(text, start - 1):
            continue  # inside a word
        if end - start < 5 and word_char(text, end):
            continue  # a short stem must be the whole word
        starts.append(start)
    return sorted(starts)


def _han_starts(text: str, finder: tuple[frozenset[str], re.Pattern[str]] | None) -> list[int]:
    """Where the query's Chinese units occur in `text`, as a search for them all from left to right
    finds them (a bigram before a character, the search going on after the unit it found)."""
    if finder is None:
        return []
    units, first = finder
    starts: list[int] = []
    at = first.search(text)
    while at is not None:
        i = at.start()
        size = 2 if text[i : i + 2] in units else 1 if text[i] in units else 0
        if size:
            starts.append(i)
        at = first.search(text, i + (size or 1))
    return starts


def _word_starts(text: str, lowered: str, stems: tuple[str, ...]) -> list[int]:
    """`match_starts` for a text without Han characters, found with `str.find` per stem (a scan in C)
    instead of the alternation pattern, which Python's engine tries position by position: same
    positions (31,115 SciFact query-passage pairs), ~0.028 instead of ~0.037 ms per passage. A start needs no word character before it, so which stem's
    occurrence the pattern would have taken where two overlap changes nothing. Many stems (a long query)
    are looked up word by word instead: one scan per stem made a 10,000-character query over a 4 MB
    fetched page take seconds."""
    if len(stems) > FIND_MAX_STEMS:
        return _word_starts_by_word(text, lowered, stems)
    return _found_starts(text, lowered, stems)


def _found_starts(text: str, lowered: str, stems: tuple[str, ...]) -> list[int]:
    found: set[int] = set()
    size = len(text)
    for stem in stems:
        n, at = len(stem), lowered.find(stem)
        while at >= 0:
            # A word character, as `_WORD_CHAR` (this text has no Han), tested on the character itself:
            # ~10x cheaper than a regex match per occurrence.
            before = text[at - 1] if at else " "
            if not _in_word(before):
                after = text[at + n] if n < 5 and at + n < size else " "
                if not _in_word(after):
                    found.add(at)
            at = lowered.find(stem, at + 1)
    return sorted(found)


# Above this many stems, one pass over the text's words beats one `str.find` scan per stem (on 4 MB of
# SciFact text, 64 stems: 0.25 s by scans, 0.40 s by words; 256 stems: 1.40 s against 0.46 s).
FIND_MAX_STEMS = 96
_WORD_RUN = re.compile(_WORD_CHAR.pattern + "+")


def _word_starts_by_word(text: str, lowered: str, stems: tuple[str, ...]) -> list[int]:
    """`_word_starts` in one pass over the text's words: a word matches when its first five characters
    are a stem, or the whole word is a shorter one. A stem with a character that is not a word character
    here (kana, Hangul: found inside longer runs) is still searched with `str.find`."""
    words, run_on = _split_stems(stems)
    found = [m.start() for m in _WORD_RUN.finditer(text) if lowered[m.start() : min(m.end(), m.start() + 5)] in words]
    return sorted(set(found).union(_found_starts(text, lowered, run_on))) if run_on else found


@lru_cache(maxsize=8)  # a query's stems, once per request rather than once per passage (~0.4 ms for 700 stems)
def _split_stems(stems: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The stems looked up by word, and those with a character that is not a word character here."""
    run_on = tuple(stem for stem in stems if not all(map(_in_word, stem)))
    return frozenset(stems).difference(run_on), run_on


def _in_word(char: str) -> bool:
    """`_WORD_CHAR`'s test on one character of a text without Han (Han counts as a word character
    here), without a regex match for ASCII ones."""
    if char.isascii():
        return char.isalnum() or char == "_"
    return char.isalnum() and not _RUN_ON_CHAR.match(char)


def _han_units(query: str) -> list[str]:
    """The query's Chinese bigrams (a one-character run as itself), longest first."""
    found = {u for m in _HAN_RUN.finditer(query) for u in units(m.group(0), "bigram")}
    return sorted(found, key=lambda u: (-len(u), u))


# What str.split() splits on in ASCII text, beyond a single space.
_ASCII_SPACING = ("  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def _single_spaced(text: str) -> str:
    """`" ".join(text.split())`; an ASCII text already single-spaced (most are) is returned as it is,
    checked in C in a fraction of the time the split and join take."""
    if text.isascii() and text[:1] != " " and text[-1:] != " " and not any(s in text for s in _ASCII_SPACING):
        return text
    return " ".join(text.split())


def snippet(text: str, query: str, max_chars: int = 240) -> str:
    """At most ~max_chars of `text` around the densest cluster of query terms, cut at word boundaries."""
    text = _single_spaced(text)
    if len(text) <= max_chars:
        return text
    positions = match_starts(text, query)
    start, first_match = 0, len(text)
    if positions:
        best = densest_run(positions, max_chars * 2 // 3)
        start, first_match = max(0, best - max_chars // 6), best
    end = min(len(text), start + max_chars)
    start = max(0, end - max_chars)
    if start > 0:
        brk = _BREAK.search(text, start, min(start + 30, first_match))
        start = _cluster_start(text, brk.end() if brk else start)
    if end < len(text):
        brk = None
        for brk in _BREAK.finditer(text, max(start, end - 30), end):
            pass
        if brk:  # before a space, after a closing punctuation mark
            end = brk.start() if brk.group().isspace() else brk.end()
        end = _cluster_start(text, end)
    core = text[start:end].strip()
    # The marks count: where no break was near the cut (CJK, Thai, a long URL) they took the snippet past max_chars.
    over = (start > 0) + len(core) + (end < len(text)) - max_chars
    if over > 0 and end < len(text):
        core = core[: _cluster_start(core, len(core) - over)].rstrip()
    elif over > 0:
        core = core[_next_cluster(core, over):].lstrip()
    return ("…" if start > 0 else "") + core + ("…" if end < len(text) else "")


def _next_cluster(text: str, i: int) -> int:
    """`i` moved on to the start of the next character (`_cluster_start`'s counterpart)."""
    while _cluster_start(text, i) != i:
        i += 1
    return i


def densest_run(positions: list[int], reach: int) -> int:
    """The first of the run of sorted `positions` that holds the most of them within `reach` characters
    (from the first to the last, inclusive); the earliest such run on ties. One pass: a window slides."""
    best, best_count, j = positions[0], 0, 0
    for i, pos in enumerate(positions):
        while positions[j] < pos - reach:
            j += 1
        if i - j + 1 > best_count:
            best, best_count = positions[j], i - j + 1
    return best


def _cluster_start(text: str, i: int) -> int:
    """`i` moved back to the start of its character: never between a surrogate pair, before a
    combining mark or variation selector, or inside a zero-width-joiner sequence."""
    while 0 < i < len(text) and (
        "\udc00" <= text[i] <= "\udfff" or _is_mark(text[i]) or text[i] in "\u200d\ufe0e\ufe0f"
        or text[i - 1] == "\u200d"
    ):  # fmt: skip
        i -= 1
    return i


def _is_mark(char: str) -> bool:
    """A mark that belongs to the character before it: any combining class, but also the Thai vowels
    above and below and the Indic vowel signs, whose combining class is 0 (category Mn, Mc or Me)."""
    return unicodedata.category(char)[0] == "M"


JVM_CALL_CHARS = 4_000_000  # text characters per JVM call (8 MB of UTF-16): long texts go in several


def snippets(pairs: Sequence[tuple[str, str]], max_chars: int = 240) -> list[str]:
    """`snippet(text, query, max_chars)` of each (text, query) pair, the same strings. Where a JVM runs
    in this process (the embedded Lucene backend) they are computed there, a response's worth in one
    call, except for texts with Han characters or characters outside the BMP, computed here."""
    out: list[str | None] = [None] * len(pairs)
    from backends.lucene import snippets as in_jvm

    if len(pairs) > 1 and in_jvm.available():
        part: list[int] = []
        size = 0
        for i, (text, _) in enumerate(pairs):
            if part and size + len(text) > JVM_CALL_CHARS:
                _made_in_jvm(in_jvm, pairs, part, max_chars, out)
                part, size = [], 0
            part.append(i)
            size += len(text)
        _made_in_jvm(in_jvm, pairs, part, max_chars, out)
    return [s if s is not None else snippet(text, query, max_chars) for s, (text, query) in zip(out, pairs)]


def _made_in_jvm(in_jvm: Any, pairs: Sequence[tuple[str, str]], taken: list[int], max_chars: int,
                 out: list[str | None]) -> None:  # fmt: skip
    """Fill `out` at `taken` with the snippets `in_jvm` (backends.lucene.snippets) makes; None where
    it leaves a text to Python."""
    queries: dict[str, int] = {}
    query_of = [queries.setdefault(pairs[i][1], len(queries)) for i in taken]
    made = in_jvm.make([pairs[i][0] for i in taken], query_of, [_sorted_stems(q) for q in queries], max_chars, java_tables)
    for i, made_one in zip(taken, made or ()):
        out[i] = made_one


@lru_cache(maxsize=1)
def java_tables() -> tuple[bytes, bytes]:
    """What Snippets.java reads instead of Java's own character properties (its whitespace, letters
    and lower case differ from Python's): a class byte per BMP character, and its lower case as one
    UTF-16LE unit (the character itself, marked OTHER, where Python's lower() gives something else:
    more than one character, or a final sigma that depends on its neighbours)."""
    space, word, han, combining, brk, other, spacing = 1, 2, 4, 8, 16, 32, 64  # Snippets.java's bits
    table = bytearray(65536)
    lower = bytearray(2 * 65536)
    for code in range(65536):
        c = chr(code)
        low = _lowered(c)
        # 0x3A3: the capital sigma, lower-cased by its neighbours
        single = len(low) == 1 and ord(low) < 0x10000 and code != 0x3A3 and not 0xD800 <= code <= 0xDFFF
        table[code] = ((space if c.isspace() else 0) | (spacing if c.isspace() and c != " " else 0)
                       | (word if _in_word(c) else 0) | (han if _HAN_CHAR.match(c) else 0)
                       | (combining if _is_mark(c) else 0) | (brk if _BREAK.match(c) else 0)
                       | (0 if single else other))  # fmt: skip
        lower[2 * code : 2 * code + 2] = (ord(low) if single else code).to_bytes(2, "little")
    return bytes(table), bytes(lower)
