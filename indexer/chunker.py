"""Paragraph chunking: documents -> passages with exact character offsets.

Paragraphs (blank-line separated) are packed up to about `target_words`; a paragraph
longer than that is split at sentence boundaries, and a sentence longer than twice
the target at word boundaries, into pieces of about equal length. A heading that would end
a passage opens the next one, with the section it heads, however long its first unit. A
passage is always a contiguous span of the text.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from indexer.analysis import HAN, KANA, UNSPACED, class_chars
from indexer.schema import Document, Passage, passage_id_for

_PARAGRAPH_BREAK = re.compile(r"\r?\n[ \t\r\f\v]*\r?\n\s*")
# A sentence ends at . ! ? (and other scripts' stops: Devanagari । ॥, Arabic ؟, Urdu ۔, Armenian ։,
# Ethiopic ። ፧, Tibetan །) followed by whitespace, or right after a CJK, Khmer or Myanmar stop (。！？ ។ ៕ ။);
# closing quotes and brackets right after the stop stay with the sentence they close.
_SENTENCE_END = re.compile(r"(?<=[.!?।॥؟۔։።፧།])[\"')\]]*\s+|(?<=[。！？។៕။])[”’」』）》】〕〉\"')\]]*")
# A full stop ends no sentence after an abbreviation (`et al.`, `vs.`, `Fig.`, `e.g.`, `U.S.`, an initial):
# cut there, a finding lost its subject (`Smith et al.` | `the risk fell`) and a comparison its first
# half (`1.20 vs.` | `1.43`).
_ABBREVIATIONS = frozenset(
    "al vs cf fig figs eq eqs ref refs vol pp approx resp dr mr mrs prof sect inc ltd corp jr dept univ".split()
)
_ABBREVIATED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # `e.g`, `U.S` (before the stop); an initial: `_abbreviated`
_WORD_BEFORE_STOP = re.compile(r"[\w.]+$")


def _marks_of(ranges: str) -> str:
    """The combining marks (Mn, Mc, Me) among the characters of a character class's ranges."""
    return "".join(c for c in class_chars(ranges) if unicodedata.category(c)[0] == "M")


# Each Han character (the analyzer's ranges), kana (half-width too) and Hangul syllable is one word.
# Thai, Lao, Khmer and Myanmar put spaces between phrases, not words: up to three characters (a letter
# with its vowel and tone marks, and a consonant stacked under it after a coeng or virama) count as
# one word, about a word of theirs, so that their passages are as long as others' and can be cut
# inside a run, between two characters. Other words are runs of non-space.
_CJK = f"{HAN}{KANA}\uac00-\ud7af"
_UNSPACED_MARKS = _marks_of(UNSPACED)
# A character takes at most this many marks and stacked consonants (real ones take up to about five):
# a run of thousands, as spam writes, is still cut.
_MAX_MARKS = 8
_UNSPACED_CHAR = f"[{UNSPACED}](?:[\u1039\u17d2][{UNSPACED}]|[{_UNSPACED_MARKS}]){{0,{_MAX_MARKS}}}"
# A CJK character takes the variation selectors and kana voicing marks (NFD) that follow it along.
_CJK_CHAR = f"[{_CJK}][\ufe00-\ufe0f\U000e0100-\U000e01ef\u3099\u309a]*"
WORD = re.compile(f"{_CJK_CHAR}|(?:{_UNSPACED_CHAR}){{1,3}}|[^\\s{_CJK}{UNSPACED}]+")
# A heading is a paragraph of at most this many words ending in a letter or digit, closing brackets and
# quotes aside (no full stop, colon or table cell bar): `3. Public finances`, `Notes`, `Annex (continued)`.
# At most two of them move on together.
HEADING_WORDS = 12
_CLOSERS = ")]\"'”’»）」』"
_HEADINGS_CARRIED = 2
_MARKDOWN_HEADING = re.compile(r"#{1,6}\s")
# `4.`, `4)`, `(4)`, `b.`, `(b)`, `iv.` and bullets, then a space.
_LIST_MARKER = re.compile(r"(\d{1,3}[.)]|\(\d{1,3}\)|[^\W\d_]{1,4}[.)]|\([^\W\d_]{1,4}\)|[-*•·–—▪◦‣])\s")

Unit = tuple[int, int, int, bool]  # start, end, words, whether it is a whole paragraph


@dataclass(frozen=True)
class ChunkSettings:
    target_words: int = 200  # 0 = the whole document is one passage
    overlap_words: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"target_words": self.target_words, "overlap_words": self.overlap_words}


def count_words(text: str) -> int:
    return sum(1 for _ in WORD.finditer(text))


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _paragraph_spans(text: str) -> Iterator[tuple[int, int]]:
    pos = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        span = _trimmed(text, pos, m.start())
        if span:
            yield span
        pos = m.end()
    span = _trimmed(text, pos, len(text))
    if span:
        yield span


def _split_by_words(text: str, start: int, end: int, limit: int, words: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, words) pieces of at most `limit` words, of about equal length, of a span of `words`
    words (410 words at 200 were 200 + 200 + a passage of 10 between two others; now 3 x ~137),
    walking the words once: a one-paragraph book holds no list of its words (a match object each)."""
    pieces = -(-words // limit)
    size = -(-words // pieces)
    count, first, last = 0, start, start
    for m in WORD.finditer(text, start, end):
        if count == 0:
            first = m.start()
        count, last = count + 1, m.end()
        if count == size:
            yield first, last, count
            count = 0
    if count:
        yield first, last, count


def _units(text: str, target: int) -> Iterator[Unit]:
    """(start, end, words, whole paragraph) pieces no longer than ~target words, in text order."""
    for p_start, p_end in _paragraph_spans(text):
        words = count_words(text[p_start:p_end])
        if words <= target:
            yield p_start, p_end, words, True
            continue
        pos = p_start
        sentence_ends = itertools.chain(_sentence_ends(text, p_start, p_end), (p_end,))
        for s_end in sentence_ends:
            span = _trimmed(text, pos, s_end)
            pos = s_end
            if not span:
                continue
            s_words = count_words(text[span[0] : span[1]])
            if s_words > 2 * target:
                yield from ((*piece, False) for piece in _split_by_words(text, span[0], span[1], target, s_words))
            else:
                yield span[0], span[1], s_words, False


def _sentence_ends(text: str, start: int, end: int) -> Iterator[int]:
    for m in _SENTENCE_END.finditer(text, start, end):
        if text[m.start() - 1] != "." or not _abbreviated(text, max(start, m.start() - 40), m.start() - 1):
            yield m.end()


def _abbreviated(text: str, lo: int, stop: int) -> bool:
    """Whether the full stop at `stop` closes an abbreviation rather than a sentence. (A lower-case
    word after it is no sign: sentences of science start with `mRNA`, `p53`, `pH`.)"""
    word = _WORD_BEFORE_STOP.search(text, lo, stop)
    if word is None:
        return False
    initial = len(word[0]) == 1 and word[0].isupper()  # `J. Smith`, `S. aureus`; not `with x.`
    return initial or word[0].lower() in _ABBREVIATIONS or _ABBREVIATED.fullmatch(word[0]) is not None


def chunk_document(doc: Document, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    """Cut one document into passages; an empty or whitespace-only text gives none."""
    text = doc.text
    if settings.target_words <= 0:
        span = _trimmed(text, 0, len(text))
        return [_passage(doc, 0, *span)] if span else []

    target = settings.target_words
    # Finished passages as (start, end, words); only the passage being filled keeps its units (at most
    # ~target of them), so memory follows the passages, not the sentences of the document.
    passages: list[tuple[int, int, int]] = []
    current: list[Unit] = []
    current_words = carried_words = carried_units = 0  # carried: the overlap taken over from the previous passage
    before: Unit | None = None  # the unit before current[carried_units:] in the text
    for unit in _units(text, target):
        if current and current_words + unit[2] > target and not _headings_only(text, target, current[carried_units:], before):
            headings = _trailing_headings(text, current[carried_units:])
            current = current[: len(current) - len(headings)]
            before = current[-1]
            passages.append((current[0][0], current[-1][1], current_words - sum(u[2] for u in headings)))
            current = _overlap_tail(current, settings.overlap_words)
            carried_units, carried_words = len(current), sum(u[2] for u in current)
            current += headings
            current_words = carried_words + sum(u[2] for u in headings)
        current.append(unit)
        current_words += unit[2]
    if current:
        # Fold a small tail into the previous passage rather than emit a fragment.
        if passages and current_words < target // 4 and passages[-1][2] + current_words <= target * 5 // 4:
            start, _, words = passages[-1]
            passages[-1] = (start, current[-1][1], words + current_words - carried_words)
        else:
            passages.append((current[0][0], current[-1][1], current_words))
    return [_passage(doc, n, start, end) for n, (start, end, _) in enumerate(passages)]


def _list_kind(text: str, unit: Unit | None) -> str | None:
    """A list item's marker with its numbers and letters generalised (`4.` -> `9.`, `(b)` -> `(a)`, `•`),
    or None when `unit` does not start like a list item."""
    if unit is None or not (m := _LIST_MARKER.match(text, unit[0], unit[1])):
        return None
    return re.sub(r"[^\W\d_]+", "a", re.sub(r"\d+", "9", m[1]))


def _is_heading(text: str, unit: Unit, before: Unit | None) -> bool:
    """`HEADING_WORDS`; a markdown marker (`##`) is no word. A numbered or bulleted paragraph after
    another of its kind, or after a lead-in ending in a colon, is a list item, not a heading: the last
    items of a list went on to the next passage without the list's start. (The unit after does not
    count: `2. Recommendations` heading a list `1. ...`, `2. ...` is a heading.)"""
    start, end, words, whole = unit
    words -= _MARKDOWN_HEADING.match(text, start, end) is not None
    if not (whole and words <= HEADING_WORDS and text[start:end].rstrip(_CLOSERS)[-1:].isalnum()):
        return False
    if (kind := _list_kind(text, unit)) is None:
        return True
    return not (kind == _list_kind(text, before) or (before is not None and text[before[0] : before[1]].endswith(":")))


def _headings_only(text: str, target: int, group: list[Unit], before: Unit | None) -> bool:
    """Whether the passage's units after its overlap are one or two headings (short beside the target) and
    nothing else: closed there, the headings would be a passage of their own (or of the overlap and them)
    when the unit they head is long (a table, a list, a long paragraph). They take that unit in instead,
    past the target by their few words. `before`: the unit before `group` in the text."""
    if not (0 < len(group) <= _HEADINGS_CARRIED and sum(unit[2] for unit in group) <= target // 4):
        return False
    return all(_is_heading(text, unit, previous) for unit, previous in zip(group, [before, *group]))


def _trailing_headings(text: str, group: list[Unit]) -> list[Unit]:
    """The headings that end a passage about to be closed (`HEADING_WORDS`), to open the next one instead;
    never all of `group`, the passage's units after the overlap it carries (else it would be that overlap alone)."""
    n = 0  # (the unit before a heading counted is in `group`: never all of it)
    while n < _HEADINGS_CARRIED and n + 1 < len(group) and _is_heading(text, group[-1 - n], group[-2 - n]):
        n += 1
    return group[len(group) - n :]


def _overlap_tail(group: list[Unit], overlap_words: int) -> list[Unit]:
    """The units of a closed passage the next one repeats: whole ones (paragraphs, sentences) from its end,
    up to `overlap_words` words in all, never the whole passage."""
    if overlap_words <= 0:
        return []
    tail: list[Unit] = []
    words = 0
    for unit in reversed(group[1:]):  # never carry the whole previous passage
        if words + unit[2] > overlap_words:
            break
        tail.insert(0, unit)
        words += unit[2]
    return tail


def _passage(doc: Document, ordinal: int, start: int, end: int) -> Passage:
    return Passage(
        passage_id=passage_id_for(doc.doc_id, ordinal),
        doc_id=doc.doc_id,
        ordinal=ordinal,
        start=start,
        end=end,
        text=doc.text[start:end],
        title=doc.title,
    )
