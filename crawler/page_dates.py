"""The date a crawled page or PDF states it was published on, as date filters and time ranges read it.

htmldate (which trafilatura runs) reads a date from a page's metadata, URL, `<time>` and date-classed
elements and, in its extensive search, from dated lines of text. Where it finds no full date it makes one
up, and those made-up dates put pages inside date filters they have no business in:
- a year found anywhere (a title's `Report 2023`, a copyright line) becomes 1 January of it;
- a month alone (`March 2024`), and a full date it refuses (29 February 2023, a day after the crawl:
  `2026-12-25`), become the 1st of that month, from the year and month the refused date still shows;
- a date in a link's target (`<a href="/2020/02/29/story/">` on an undated home page) becomes the page's.
So links' targets are left out before the search, a 1 January is kept only where the metadata, the URL
or a `<time>` or date-classed element states it, and any other 1st only where the page writes that day.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import AnyStr

from indexer.schema import published_problem

FIRST_WEB_YEAR = 1995  # htmldate's earliest date
FIRST_PDF_YEAR = 1993  # PDF 1.0
# The latest calendar day anywhere on Earth (UTC+14): a page dated later is dated after its own crawl.
_EARTH_LEAD = dt.timedelta(hours=14)

# Metadata fields that state a publication date, and may state its year alone (scholarly and Dublin Core).
_YEAR_FIELDS = frozenset({
    "citation_publication_date", "citation_date", "citation_year", "citation_online_date", "datepublished",
    "dc.date", "dc.date.issued", "dc.date.created", "dcterms.date", "dcterms.issued", "dcterms.created",
    "prism.publicationdate", "article:published_time",
})  # fmt: skip
_YEAR = re.compile(r"[0-9]{4}")
# A PDF date (`D:YYYYMMDDHHmmSS+HH'mm'`, each field after the year optional in turn; a year or month
# followed by `-`, `/` or `.` is the start of another form), or an ISO date some tools write instead (whose year alone the PDF form would read).
_PDF_DATE = re.compile(
    r"(?:D:)?(?:(\d{4})-(\d{2})-(\d{2})|(\d{4})(?:(\d{2})(?:(\d{2})(?:\d{2}(?:\d{2}(?:\d{2})?)?)?)?)?(?!\d)(?:(?<=\d{8})|(?![-/.])))"
)


def latest_day() -> dt.date:
    """The day of the crawl where it is latest: a publisher east of the crawler may already date today's
    page tomorrow (the crawler's own clock, or UTC, would refuse it)."""
    return (dt.datetime.now(dt.timezone.utc) + _EARTH_LEAD).date()


def iso_or_none(value: object) -> str | None:
    """`value` when it is a date the indexer accepts as `published` (indexer.schema), else None: an
    undated page is indexed, a page with a date off the calendar would be a bad line of the shard."""
    return value if isinstance(value, str) and value and published_problem(value) is None else None


def page_date(markup: AnyStr, url: str | None) -> str | None:
    """The date `markup` (the page at `url`) states, as the publisher wrote it (not shifted to UTC), or
    the year a publication-date metadata field states alone, or None."""
    from htmldate import find_date
    from trafilatura import load_html

    tree = load_html(markup)
    if tree is None:
        return None
    for link in tree.iter("a", "area"):
        link.attrib.pop("href", None)
    latest = dt.datetime.combine(latest_day(), dt.time.max)  # htmldate compares the time of day too
    try:
        found = iso_or_none(find_date(tree, url=url, original_date=True, max_date=latest))
        if found is not None and found.endswith("-01-01"):  # a year alone reads 1 January
            found = iso_or_none(find_date(tree, url=url, original_date=True, max_date=latest, extensive_search=False))
        if found is not None and found.endswith("-01") and not _writes_first_day(tree, url, found):
            found = None
        if found is not None and _read_swapped(markup, found):
            found = None
    except Exception:  # malformed input must never stop a crawl
        found = None
    return found or _stated_year(tree)


def _writes_first_day(tree, url: str | None, date: str) -> bool:
    """Whether the page (its text, its attributes but links' targets, and its URL) writes the 1st of
    `date`'s month as a day: in digits, with the month's name, or as Korean, Chinese or Japanese write it.
    Text, not markup: `March 1<sup>st</sup>, 2024` and `<b>1</b> March 2024` are read as shown."""
    year, month = int(date[:4]), int(date[5:7])
    values = " ".join(str(value) for element in tree.iter() for value in element.attrib.values())
    text = f"{url or ''}\n{values}\n{' '.join(tree.itertext())}"  # spaced: no heading runs into the date
    return _first_day_pattern(year, month).search(text) is not None


def _read_swapped(markup: AnyStr, date: str) -> bool:
    """Whether `date` is htmldate's reading (dateutil's) of a value off the calendar as year-day-month:
    `2024-13-01`, no date, came out as 13 January. Only a day past 12 can have been read so."""
    year, month, day = date[:4], date[5:7], date[8:10]
    if not day or int(day) <= 12:
        return False
    written = f"{year}-{day}-{month}"
    as_given = f"{year}-{month}-{day}"
    if isinstance(markup, bytes):
        return written.encode() in markup and as_given.encode() not in markup
    return written in markup and as_given not in markup


# Month names htmldate's own list lacks (it reads these through dateparser): Spanish, Portuguese, Italian,
# Dutch and Russian, as stems (a declined form such as марта starts with март).
_MORE_MONTHS = (
    ("enero", "janeiro", "gennaio", "январ"), ("febrero", "fevereiro", "febbraio", "februari", "феврал"),
    ("marzo", "março", "maart", "март"), ("abril", "aprile", "апрел"), ("mayo", "maio", "maggio", "mei", "мая", "май"),
    ("junio", "junho", "giugno", "июн"), ("julio", "julho", "luglio", "июл"), ("agosto", "augustus", "август"),
    ("septiembre", "setiembre", "setembro", "settembre", "сентябр"), ("octubre", "outubro", "ottobre", "октябр"),
    ("noviembre", "novembro", "ноябр"), ("diciembre", "dezembro", "dicembre", "декабр"),
)  # fmt: skip


@lru_cache(maxsize=256)
def _first_day_pattern(year: int, month: int) -> re.Pattern[str]:
    from htmldate.extractors import MONTHS

    names = "|".join(sorted(map(re.escape, {*MONTHS[month - 1], *_MORE_MONTHS[month - 1]}), key=len, reverse=True))
    name = rf"(?<![^\W\d_])(?:{names})[^\W\d_]*\.?"
    y, m = rf"(?<!\d){year}", rf"0?{month}"
    return re.compile(
        "|".join((
            rf"{y}[-/._]{m}[-/._]0?1(?!\d)",  # 2024-03-01, 2024/3/1, /2024/03/01/
            rf"{y}{month:02d}01(?!\d)",  # 20240301
            rf"(?<!\d)0?1[-/.]\s?{m}[-/.]\s?{year}(?!\d)",  # 01.03.2024, 1/3/2024
            rf"(?<!\d){m}/0?1/{year}(?!\d)",  # 3/1/2024
            rf"(?<!\d)0?1\s*(?:st|er|\.|º)?\s+(?:of\s+|de\s+)?{name}\s*,?\s+(?:de\s+)?{year}(?!\d)",  # 1 March 2024, 1. März 2024
            rf"{name}\s+0?1\s*(?:st)?\s*,?\s+{year}(?!\d)",  # March 1, 2024; March 1<sup>st</sup>, 2024
            rf"{year}\s*[년年]\s*{m}\s*[월月]\s*0?1\s*[일日]",  # 2024년 3월 1일, 2024年3月1日
        )),
        re.I,
    )  # fmt: skip


def _stated_year(tree) -> str | None:
    """The year a publication-date metadata field states alone (`<meta name="citation_publication_date"
    content="2024">`) as YYYY, or None: htmldate reads no date from a bare year (its extensive search made
    it 1 January only when that year won among all those on the page)."""
    for meta in tree.iterfind(".//meta"):
        field = (meta.get("name") or meta.get("property") or meta.get("itemprop") or "").strip().lower()
        year = (meta.get("content") or "").strip()
        if field in _YEAR_FIELDS and _YEAR.fullmatch(year) and FIRST_WEB_YEAR <= int(year) <= latest_day().year:
            return year
    return None


def pdf_date(value: str) -> str | None:
    """The date of a PDF date string (`D:YYYYMMDDHHmmSS+HH'mm'`, the fields after the year optional) or of
    an ISO date some tools write instead, as it was written (no shift to UTC) and to the day, month or
    year it gives; None when it is no date or one no PDF can have: before PDF existed (zeroed clocks write
    1970 or 1601) or after the day of the crawl."""
    m = _PDF_DATE.match(value)
    if not m:
        return None
    y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
    published = iso_or_none("-".join(part for part in (y, mo, d) if part))  # "D:20231345" is no date
    if published is None or int(y) < FIRST_PDF_YEAR or published > latest_day().isoformat():
        return None
    return published
