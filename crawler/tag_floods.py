"""Tags flooded with attributes, found as the HTML parser finds tags and reduced to their names.

libxml2 (lxml, trafilatura) parses a tag with N attributes in O(N^2) time: one <p> with 40,000 of them
took 11 s to parse and 31 s to extract, and 70,000 stalled a crawl for minutes. A tag with more than
MAX_TAG_ATTRIBUTES keeps only its name. Tags must be read as libxml2 2.14's HTML5 tokenizer reads
them, or a flood hides from the scan: a tag is `<` and a letter up to the first `>` outside a quoted
value; a value is quoted only right after `=`; a `<` inside does not end it (`<p title=">" a0=1 ...>` and
`<p a0=1 <b a1=1 ...>` are each one tag). Comments and the text of raw-text elements (script, style,
title, ...) hold no tags. The page is read once, left to right, as the tokenizer does: linear time.
Bytes in UTF-16 or UTF-32 (by their byte order mark, or the encoding given) are read as text.
"""

from __future__ import annotations

import codecs
import re
from itertools import islice
from typing import AnyStr

from w3lib.encoding import read_bom

MAX_TAG_ATTRIBUTES = 256
_MIN_FLOOD_CHARS = 1024  # a shorter tag cannot hold enough attributes to matter (20 MB of them parse in seconds)
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")  # and plaintext
_SPACE = "\t\n\f\r "  # HTML's whitespace

# Where markup may start: a start or end tag (group 1: "/" or "", group 2: the name), a comment, or
# anything else `<!`, `<?` or `</` begins (a bogus comment or a doctype, up to the next `>`).
_OPENING = rf"<(/?)([a-zA-Z][^{_SPACE}/>]*)|<!--|<[!?]|</"
# The rest of a tag after its name: attribute text, quoted values only after `=`, then the closing `>`.
_TAG_REST = rf"""(?:[^>=]++|=[{_SPACE}]*+"[^"]*+"|=[{_SPACE}]*+'[^']*+'|=)*+>"""
_ATTRIBUTE = r"""[^\s"'/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"']*))?"""


class _Patterns:
    def __init__(self, kind: type):
        def c(pattern: str, flags: int = 0) -> re.Pattern:
            return re.compile(pattern if kind is str else pattern.encode(), flags)

        self.opening, self.tag_rest, self.attribute = c(_OPENING), c(_TAG_REST), c(_ATTRIBUTE)
        self.comment = c("<!--")
        self.comment_at_once, self.comment_end, self.gt = c("-?>"), c("--!?>"), c(">")
        self.raw_text_end = {
            (name if kind is str else name.encode()): c(rf"</{name}[{_SPACE}/>]", re.I) for name in _RAW_TEXT
        }
        self.plaintext = "plaintext" if kind is str else b"plaintext"


_PATTERNS = {str: _Patterns(str), bytes: _Patterns(bytes)}


def strip_attribute_floods(html: AnyStr, encoding: str | None = None) -> tuple[AnyStr, int]:
    """`html` with every tag of more than MAX_TAG_ATTRIBUTES attributes reduced to its bare name (the element
    and its content stay), and how many there were. A long tag with few attributes (`<img src="data:...">`)
    is kept as it is. `encoding`: the one the bytes are in, when known (the HTTP header's)."""
    if isinstance(html, bytes):
        bom_encoding, bom = read_bom(html)
        wide = _wide(bom_encoding or encoding)
        if wide is not None:
            try:
                text = html[len(bom or b""):].decode(wide, "surrogatepass")
            except UnicodeDecodeError:
                return html, 0
            stripped, n = strip_attribute_floods(text)
            return ((bom or b"") + stripped.encode(wide, "surrogatepass") if n else html), n
    p = _PATTERNS[type(html)]
    pieces: list[AnyStr] = []  # only around the flooded tags: a page has ~100,000 of the others
    done = pos = 0
    while (opening := p.opening.search(html, pos)) is not None:
        pos = opening.end()
        if opening.group(2) is None:  # a comment, doctype or bogus comment: no tags inside
            if p.comment.fullmatch(opening.group(0)):
                end = p.comment_at_once.match(html, pos) or p.comment_end.search(html, pos)
            else:
                end = p.gt.search(html, pos)
            if end is None:
                break  # the rest of the page is inside it
            pos = end.end()
            continue
        tag = p.tag_rest.match(html, pos)
        if tag is None:
            break  # no `>`: the rest of the page is inside this tag
        if _is_flood(html, pos, tag.end() - 1, p.attribute):
            pieces += [html[done:pos], html[tag.end() - 1 : tag.end()]]  # "<" name ">"
            done = tag.end()
        pos = tag.end()
        if opening.group(1):  # an end tag: no raw text follows
            continue
        name = opening.group(2).lower()
        if name == p.plaintext:
            break  # text to the end of the page
        if name in p.raw_text_end:
            end = p.raw_text_end[name].search(html, pos)
            if end is None:
                break  # raw text to the end of the page
            pos = end.start()
    if not pieces:
        return html, 0
    return html[:0].join([*pieces, html[done:]]), len(pieces) // 2


def _wide(encoding: str | None) -> str | None:
    """The codec's name when `encoding` is UTF-16 or UTF-32 (tags are no ASCII bytes there)."""
    try:
        name = codecs.lookup(encoding).name if encoding else ""
    except LookupError:
        return None
    return name if name.startswith(("utf-16", "utf-32")) else None


def _is_flood(html: AnyStr, start: int, end: int, attribute: re.Pattern) -> bool:
    if end - start < _MIN_FLOOD_CHARS:
        return False
    return sum(1 for _ in islice(attribute.finditer(html, start, end), MAX_TAG_ATTRIBUTES + 1)) > MAX_TAG_ATTRIBUTES
