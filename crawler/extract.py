"""Main-text extraction: HTML with trafilatura, PDF with pypdf. Paragraphs are separated by a blank line
(the indexer's chunker splits on `\\n\\n`). Page content is data: nothing here executes or follows it."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import AnyStr

from w3lib.encoding import html_body_declared_encoding, read_bom, resolve_encoding

from crawler.page_dates import page_date, pdf_date
from crawler.pdf_text import document_text_blocks
from crawler.tag_floods import strip_attribute_floods
from indexer.language import normalise as normalise_language
from indexer.schema import untypeset

# Options chosen on the article-extraction benchmark (bench/extraction_quality.py).
HTML_OPTIONS: dict[str, object] = {
    "include_comments": False,
    "include_tables": True,
    "favor_recall": False,
    "favor_precision": True,
    "deduplicate": False,
}

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
SNIFFED_TYPES = ("", "application/octet-stream", "text/plain")  # media types whose body decides what the page is
_LANG_ATTR = re.compile(rb"<html[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)?", re.I)
_WS = re.compile(r"[ \t\r\f\v\u00a0]+")

# A numeric character reference to a code point XML forbids (`&#1;`, `&#xFFFF;`, a surrogate) makes
# trafilatura drop the whole page; HTML also reads one without its `;`.
_CHAR_REF = r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?"
_CHAR_REFS = {str: re.compile(_CHAR_REF), bytes: re.compile(_CHAR_REF.encode())}
# A note mark stands right after its word (`surveys<sup><a href="#fn12">12</a></sup>`) and trafilatura's text
# glues them: `surveys12` is one term, so neither `surveys` nor the number is found (`2023<sup>4</sup>`: `20234`).
# A superscript that starts with a digit, bracket or asterisk gets a space before it (`m<sup>2</sup>`: `m 2`).
# A tag's text stops at the next `<` too: `<sup` with no `>` after it (in a comment, a script's string) was
# scanned to the next `>` each, quadratic time (2 MB of them: minutes).
_NOTE_MARK = r"<sup\b[^<>]*>(?:\s*<a\b[^<>]*>)?\s*[0-9\[(*]"
_NOTE_MARKS = {str: re.compile(_NOTE_MARK, re.I), bytes: re.compile(_NOTE_MARK.encode(), re.I)}


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    published: str | None
    language: str | None


def media_type(content_type: str) -> str:
    """The media type a Content-Type header value names, lower-cased, without its parameters."""
    return content_type.split(";")[0].strip().lower()


def page_kind(content_type: str, body: bytes) -> str | None:
    """'html', 'pdf' or None (unsupported) from the media type, sniffing the body when unclear. The spider
    follows the links of exactly the pages stored as HTML."""
    head = body[:1024].lstrip().lower()
    if content_type in PDF_TYPES or body.startswith(b"%PDF-"):
        return "pdf"
    if content_type in HTML_TYPES:
        return "html"
    if content_type in SNIFFED_TYPES and (
        head.startswith((b"<!doctype html", b"<html")) or b"<body" in head
    ):
        return "html"
    return None


def paragraphs_to_text(blocks: list[str]) -> str:
    """Join non-empty blocks with a blank line; whitespace inside a block collapsed."""
    out = []
    for block in blocks:
        block = _WS.sub(" ", block).strip()
        if block:
            out.append(block)
    return "\n\n".join(out)


@lru_cache(maxsize=1)
def _langid():  # type: ignore[no-untyped-def]
    try:
        from indexer.language import identifier

        return identifier()
    except ImportError:  # optional dependency
        return None


def detect_language(text: str, html: bytes | None = None) -> str | None:
    """ISO 639-1 code: the text's language (py3langid when installed) else the page's `<html lang>`. The
    `lang` decides a text under 40 characters only when it is in Latin script (site templates say
    lang="en" on pages in every language): CJK says its language by its script, others go to py3langid."""
    from indexer.language import mostly_latin, script_language

    short = len(text) < 40
    if short and (by_script := script_language(text)):
        return by_script
    ident = _langid()
    if ident is not None and (not short or not mostly_latin(text)):
        lang, prob = ident.classify(text[:5000])
        if prob >= 0.5:
            return normalise_language(str(lang))
    if html:
        m = _LANG_ATTR.search(html[:20000])
        if m:
            return normalise_language(m.group(1).decode("ascii"))
    return None


def _xml_forbidden(code: int) -> bool:
    """C0 controls but tab, LF and CR; surrogates; U+FFFE and U+FFFF; past U+10FFFF."""
    return code < 0x20 and code not in (0x9, 0xA, 0xD) or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF) or code > 0x10FFFF


def blank_xml_forbidden_refs(html: AnyStr) -> AnyStr:
    """`html` with each numeric character reference to a code point XML forbids replaced by a space."""
    space, zero = (" ", "0") if isinstance(html, str) else (b" ", b"0")

    def blank(m: re.Match[AnyStr]) -> AnyStr:
        digits = (m.group(1) or m.group(2)).lstrip(zero) or zero
        code = int(digits, 16 if m.group(1) else 10) if len(digits) <= 8 else 0x110000  # int() refuses 4,300+ digits
        return space if _xml_forbidden(code) else m.group(0)  # type: ignore[return-value]

    return _CHAR_REFS[type(html)].sub(blank, html)


def space_note_marks(html: AnyStr) -> AnyStr:
    """`html` with a space before each superscript that starts with a digit, bracket or asterisk (`_NOTE_MARK`)."""
    space = " " if isinstance(html, str) else b" "
    return _NOTE_MARKS[type(html)].sub(lambda m: space + m.group(0), html)  # type: ignore[arg-type, return-value]


def decode_declared(body: bytes, charset: str | None = None) -> str | None:
    """The page as text in the encoding it declares: its byte order mark, else `charset` (the HTTP
    header's), else its own `<meta>` or XML declaration, as browsers and Scrapy's `response.encoding` read
    them. None when it declares none or its bytes are not valid in it: left to trafilatura's guess."""
    encoding, bom = read_bom(body)
    if encoding is None:
        encoding = (resolve_encoding(charset) if charset else None) or html_body_declared_encoding(body)
    if encoding is None:
        return None
    try:
        return body[len(bom or b""):].decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return None


def extract_html(
    html: bytes | str, url: str | None = None, *, charset: str | None = None, **overrides: object
) -> Extracted:
    """Title, main text (paragraphs separated by blank lines), published date and language of a page;
    `charset`: the one its HTTP Content-Type header names. Attribute floods are stripped first (the
    crawler's spider has done so already; the live fetch has not)."""
    import trafilatura  # lazy: heavy import

    options = {**HTML_OPTIONS, **overrides}
    html = strip_attribute_floods(html, charset)[0]
    raw = html.encode("utf-8", "replace") if isinstance(html, str) else html
    page = html if isinstance(html, str) else decode_declared(raw, charset)
    markup = space_note_marks(blank_xml_forbidden_refs(raw if page is None else page))
    try:
        doc = trafilatura.bare_extraction(markup, url=url, with_metadata=True, output_format="python", **options)
    except Exception:  # malformed input must never stop a crawl
        doc = None
    if doc is None:
        return Extracted(title="", text="", published=None, language=detect_language("", raw))
    body = getattr(doc, "text", None) or ""
    # trafilatura's text output puts one block (paragraph, heading, list item, table row) per line.
    text = untypeset(paragraphs_to_text(body.split("\n")))  # as the indexer reads documents and queries (NFC)
    title = untypeset(_WS.sub(" ", getattr(doc, "title", None) or "").strip())
    published = page_date(markup, getattr(doc, "url", None) or url)
    return Extracted(title=title, text=text, published=published, language=detect_language(text, raw))


# A PDF's work is bounded by what its pages hold, not by its size on the wire: pypdf reads a page's
# operators in about quadratic time (4 MB of text operators on one page took 10 s, 20 MB 221 s), and
# 2,000 pages may all show one shared 100 KB stream (187 M characters from a 315 KB file). A page whose
# decoded content passes MAX_PDF_PAGE_BYTES is skipped; reading stops after MAX_PDF_CONTENT_BYTES of
# pages, MAX_PDF_TEXT_CHARS of text or the caller's deadline, keeping what was read.
MAX_PDF_PAGES = 2000
MAX_PDF_PAGE_BYTES = 1 << 20
MAX_PDF_CONTENT_BYTES = 32 << 20
MAX_PDF_TEXT_CHARS = 5_000_000
MAX_TITLE_CHARS = 500
_SURROGATE = re.compile("[\ud800-\udfff]")  # pypdf decodes CMaps with surrogatepass; UTF-8 cannot hold them
_CONTROL = re.compile("[\x00-\x1f\x7f]+")
# The title a word processor writes into a PDF is often the file's name: `Microsoft Word - FINAL report.docx`.
# Its words go with every passage of the document into BM25 (a query for `microsoft word` finds all of them).
_TOOL_TITLE = re.compile(
    r"^\s*microsoft (?:word|powerpoint|excel) - |\.(?:docx?|pptx?|xlsx?|rtf|odt|indd|pdf)\s*$", re.I
)


def extract_pdf(data: bytes, max_pages: int = MAX_PDF_PAGES, *, deadline: float | None = None) -> Extracted:
    """Text of a PDF with pypdf: its pages' lines as paragraphs (`crawler.pdf_text`: a page's blank lines, its
    page break, a short line ending a sentence and a heading's line end one), without running headers, footers
    and page numbers, hyphenated line ends and sentences running on across a page joined, ligatures spelled
    out. Title and date from the document info when present and
    usable (a broken /Info loses them, not the text). `deadline`: a `time.monotonic()` after which no
    further page is read."""
    from pypdf import PdfReader

    pages: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        content_bytes = chars = 0
        for i, page in enumerate(reader.pages):
            if i >= max_pages or content_bytes >= MAX_PDF_CONTENT_BYTES or chars >= MAX_PDF_TEXT_CHARS:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                contents = page.get_contents()
                size = len(contents.get_data()) if contents is not None else 0
                content_bytes += size
                text = (page.extract_text() or "") if size <= MAX_PDF_PAGE_BYTES else ""
            except Exception:
                text = ""
            pages.append(text[: MAX_PDF_TEXT_CHARS - chars])
            chars += len(pages[-1])
    except Exception:
        return Extracted(title="", text="", published=None, language=None)
    title, published = _pdf_info(reader)
    text = paragraphs_to_text(document_text_blocks([_SURROGATE.sub("\ufffd", page) for page in pages]))
    return Extracted(title=title, text=text, published=published, language=detect_language(text))


def _pdf_info(reader: object) -> tuple[str, str | None]:
    """(title, published) from the document info: a title only when it is text, on one line, capped, without
    the application and file extension a word processor puts around a file name (`_TOOL_TITLE`)."""
    from pypdf.generic import NameObject

    try:
        meta = reader.metadata  # type: ignore[attr-defined]
        title, created = (meta.title, meta.creation_date_raw) if meta is not None else (None, None)
    except Exception:  # an /Info that is no dictionary, a broken reference
        return "", None

    def text(value: object) -> str | None:  # a name (/Some#20Name), number or dictionary is no text
        return value if isinstance(value, str) and not isinstance(value, NameObject) else None

    title = untypeset(" ".join(_CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text(title) or "")).split()))
    title = _TOOL_TITLE.sub("", title).strip()[:MAX_TITLE_CHARS]
    return title, pdf_date(text(created) or "")
