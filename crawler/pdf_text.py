"""A PDF's page texts (pypdf's: one line of the page per line) as the paragraphs a reader sees.

Typesetting leaves marks in extracted text that cost retrieval: a running header, footer or page
number on every page is glued into the first and last paragraph of each page (every page's text
then matches the header's words), a word hyphenated across a line end is two terms (`inter- national`
never matches `international`), a ligature glyph is a character of its own (`ﬁnancial` never matches
`financial`), a sentence running on from one page to the next is cut at the page break, and with no
blank lines between paragraphs a page is one paragraph, its headings glued into the sentences after them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from indexer.schema import untypeset

# Running headers and footers stand in the first or last few lines of a page and repeat (their page
# numbers aside) on many pages: on at least RUNNING_MIN_PAGES pages and RUNNING_SHARE of them.
EDGE_LINES = 3
RUNNING_MIN_PAGES = 3
RUNNING_SHARE = 0.4
_DIGITS = re.compile(r"\d+")
# A running header that changes with the chapter (`Chapter 3: Utilities 6`) repeats on too few pages, but
# carries the page's printed number at one end: the page's place in the file plus an offset the document
# keeps (front matter) on at least as many pages as a running line needs. A line of at most HEADER_WORDS
# words that starts or ends with its page's printed number is a running line.
HEADER_WORDS = 12
_END_NUMBERS = re.compile(r"^(\d{1,4})\b|\b(\d{1,4})$")
# A line that is only a page number: "7", "- 7 -", "Page 7", "7 of 40", "7/40", "xii".
_ROMAN = r"(?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_PAGE_NUMBER = re.compile(
    rf"[\s\-–—|]*(?:page\s*)?(?:\d{{1,5}}|{_ROMAN})(?:\s*(?:of|/)\s*\d{{1,5}})?[\s\-–—|]*", re.I
)
# A bare number is also what a table's last cells (`2021`, `12`) at a page's foot are: it is a page number
# only when it is the page's printed number (the offset most pages agree on) or, with no such offset, one
# the document's page count allows.
_BARE_NUMBER = re.compile(r"\d{1,5}")
# A word broken at a line end: its first part and the hyphen. Words are matched from their first character
# only (`\b`): else a search tries each character of a long unspaced line (CJK) and takes quadratic time.
_BROKEN_WORD = re.compile(r"\b(\w+)[-\u2010]$")
_COMPOUND = re.compile(r"\b\w+-\w+")
_FIRST_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")
# pypdf gives a page's lines, not its paragraphs. A paragraph's lines run to about the column's width (the
# length of the page's longer lines) except its last: a line shorter than SHORT_LINE of the width that ends a
# sentence ends its paragraph, and one that ends none between two sentences is a heading, a paragraph of its
# own. Pages of fewer lines or narrower ones (slides, tables) are left as they are.
SHORT_LINE = 0.7
_MIN_LINES = 6
_MIN_WIDTH = 40


def document_text_blocks(pages: list[str]) -> list[str]:
    """The paragraphs of a document whose pages have the texts `pages`: a page's blank lines and the
    page breaks separate them, except where a sentence runs on into the next page; running headers,
    footers and page numbers left out, hyphenated line ends joined, ligatures spelled out and soft
    hyphens dropped (`untypeset`)."""
    page_lines = [[line.strip() for line in untypeset(page).splitlines()] for page in pages]
    running = _RunningLines(page_lines)
    lines: list[str] = []  # "" separates paragraphs
    for n, page in enumerate(page_lines):
        body = _with_paragraph_breaks(_without_running(page, running.of_page(n)))
        if not body:
            continue
        if lines and lines[-1] and not _continues(lines[-1], body[0]):
            lines.append("")
        lines.extend(body)
    vocabulary = _Vocabulary(lines)
    blocks, block = [], []
    for line in lines + [""]:
        if line:
            block.append(line)
        elif block:
            blocks.append(_joined(block, vocabulary))
            block = []
    return blocks


def _key(line: str) -> str:
    """A line as it repeats from page to page: page numbers and case aside."""
    return " ".join(_DIGITS.sub("#", line).lower().split())


def _bare_key(line: str) -> str:
    """A line's key without the numbers at its ends."""
    return _key(line).strip("# ")


def _edges_and_middle(lines: list[str]) -> tuple[list[str], list[str]]:
    filled = [line for line in lines if line]
    middle = filled[EDGE_LINES:-EDGE_LINES]
    return filled[:EDGE_LINES] + filled[EDGE_LINES:][-EDGE_LINES:], middle


class _RunningLines:
    """What a document's running headers and footers are: lines that stand in a page's first or last EDGE_LINES
    on enough pages (RUNNING_SHARE), never inside a page's text (pages that repeat whole lines of text have
    none), and lines repeated at the edges of two pages or more that carry the page's printed number."""

    def __init__(self, page_lines: list[list[str]]) -> None:
        pages_with: Counter[str] = Counter()
        bare_pages_with: Counter[str] = Counter()  # the page number on either side (odd and even pages)
        in_middle: set[str] = set()
        for lines in page_lines:
            edges, middle = _edges_and_middle(lines)
            pages_with.update({_key(line) for line in edges})
            bare_pages_with.update({_bare_key(line) for line in edges})
            in_middle.update(_key(line) for line in middle)
        self.pages = len(page_lines)
        least = max(RUNNING_MIN_PAGES, RUNNING_SHARE * len(page_lines))
        self.keys = {key for key, count in pages_with.items() if count >= least and key not in in_middle}
        self.repeated = {key for key, count in bare_pages_with.items() if count >= 2}
        self.offset = self._printed_number_offset(page_lines, least)

    def _printed_number_offset(self, page_lines: list[list[str]], least: float) -> int | None:
        """The printed page number minus the page's place in the file, when enough pages agree on one."""
        offsets: Counter[int] = Counter()
        for n, lines in enumerate(page_lines):
            edges = [line for line in _edges_and_middle(lines)[0] if _bare_key(line) in self.repeated]
            offsets.update({number - n for line in edges for number in _end_numbers(line)})
        if not offsets:
            return None
        offset, pages = offsets.most_common(1)[0]
        return offset if pages >= least else None

    def of_page(self, page: int) -> Callable[[str], bool]:
        """Whether a line at the edge of page `page` (its place in the file) is a running line or a page number."""
        printed = None if self.offset is None else page + self.offset
        pages = self.pages

        def is_running(line: str) -> bool:
            if _BARE_NUMBER.fullmatch(line):  # before the running keys: all bare numbers have the key "#"
                return int(line) == printed if printed is not None else 1 <= int(line) <= pages
            key = _key(line)
            if key in self.keys or _PAGE_NUMBER.fullmatch(line):
                return True
            return printed is not None and _bare_key(line) in self.repeated and printed in _end_numbers(line)

        return is_running


def _end_numbers(line: str) -> set[int]:
    """The numbers a line starts or ends with, when it is short enough to be a running header (HEADER_WORDS)."""
    if not line or len(line.split()) > HEADER_WORDS:
        return set()
    return {int(a or b) for a, b in _END_NUMBERS.findall(line)}


def _without_running(lines: list[str], is_running: Callable[[str], bool]) -> list[str]:
    """The page's lines without the running lines among the EDGE_LINES at its top and bottom; a page made
    only of them (every page the same) is kept whole. Blank lines at either end go."""
    filled = [i for i, line in enumerate(lines) if line]
    if not filled:
        return []
    first, last = 0, len(filled)  # the body is filled[first:last]
    while first < min(EDGE_LINES, len(filled)) and is_running(lines[filled[first]]):
        first += 1
    while last > max(first, len(filled) - EDGE_LINES) and is_running(lines[filled[last - 1]]):
        last -= 1
    if first == last:
        first, last = 0, len(filled)
    return lines[filled[first] : filled[last - 1] + 1]


def _with_paragraph_breaks(lines: list[str]) -> list[str]:
    """The page's lines with a "" after each line that ends a paragraph and around each heading (SHORT_LINE)."""
    lengths = sorted(len(line) for line in lines if line)
    if len(lengths) < _MIN_LINES or (width := lengths[(len(lengths) - 1) * 9 // 10]) < _MIN_WIDTH:
        return lines
    out: list[str] = []
    for n, line in enumerate(lines):
        after = lines[n + 1] if n + 1 < len(lines) else ""
        if not line or len(line) >= SHORT_LINE * width or not (after[:1].isupper() or after[:1].isdigit()):
            out.append(line)
            continue
        if _SENTENCE_END.search(line):
            out += [line, ""]
        elif not out or not out[-1] or _SENTENCE_END.search(out[-1]):  # a heading
            out += ([""] if out and out[-1] else []) + [line, ""]
        else:
            out.append(line)
    return out


def _continues(last_line: str, next_line: str) -> bool:
    """Whether a page's first line goes on with the sentence the page before it ended in."""
    return next_line[:1].islower() and not _SENTENCE_END.search(last_line)


class _Vocabulary:
    """The document's words and hyphenated compounds, to tell a word broken at a line end (`inter-` +
    `national`) from a compound that happens to break at its hyphen (`state-` + `owned`)."""

    def __init__(self, lines: list[str]) -> None:
        text = "\n".join(lines).lower()
        self.words = set(_FIRST_WORD.findall(text))
        self.compounds = set(_COMPOUND.findall(text))

    def keeps_hyphen(self, head: str, tail: str) -> bool:
        head, tail = head.lower(), tail.lower()
        return f"{head}-{tail}" in self.compounds and head + tail not in self.words


def _joined(lines: list[str], vocabulary: _Vocabulary) -> str:
    """One paragraph's lines as one line: a word hyphenated at a line end is joined (as pdftotext does),
    its hyphen kept only where the document writes that compound with a hyphen and never without."""
    pieces = [lines[0]]
    for line in lines[1:]:
        broken = _BROKEN_WORD.search(pieces[-1])
        first = _FIRST_WORD.match(line)
        if broken and first and line[:1].islower():
            hyphen = vocabulary.keeps_hyphen(broken.group(1), first.group())
            pieces[-1] = pieces[-1][: broken.end(1)] + ("-" if hyphen else "")
            pieces.append(line)
        else:
            pieces.extend((" ", line))
    return "".join(pieces)
