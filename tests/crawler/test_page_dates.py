"""The date a page or PDF is published on, as date filters and time ranges read it: a date the page or
the document states is kept, and nothing is made up from a year that merely appears somewhere."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from crawler.extract import extract_html, extract_pdf
from tests.crawler.fixture_web import article, minimal_pdf

BODY = [
    "The committee reviewed developments in financial markets, inflation and the labour market, and members "
    "agreed that further data would be needed before any change of stance.",
    "Staff projections see inflation returning to target over the projection horizon as energy prices ease.",
]


def page(title: str, first: str = "", head: str = "", url: str = "https://www.example.org/pages/report") -> tuple:
    paragraphs = [first, *BODY] if first else BODY
    return article(title, paragraphs, extra_head=head), url


def ld(fields: str) -> str:
    schema = '"@context": "https://schema.org", "@type": "Article"'
    return f'<script type="application/ld+json">{{{schema}, {fields}}}</script>'


@pytest.mark.parametrize(("html", "url"), [
    page("World Trade Report 2023", "The World Trade Report 2023 looks at trade and re-globalization."),
    page("Annual report", "In 2022 the institute published forty papers and hosted two conferences."),
    page("A history of central banking",
         "The Riksbank was founded in 1668 and the Bank of England in 1694; the Federal Reserve followed in 1913 "
         "and the ECB in 1998."),
    page("Our mission", "We promote stable prices. <small>&copy; 2025 Example Organisation</small>"),
    page("Budget 2024-25", "The budget for 2024-25 sets out spending plans."),
    page("Economic outlook", "<span class='date'>March 2024</span>"),  # htmldate read January
    page("Rate change", "From 1 January 2025 the reserve requirement rises to five percent."),
], ids=["title-year", "text-year", "many-years", "copyright", "fiscal-year", "month-year",
        "effective-date"])  # fmt: skip
def test_a_year_that_merely_appears_on_a_page_is_no_date(html, url):
    """htmldate's extensive search falls back on a year found anywhere (title, text, copyright line) and
    calls it 1 January: such a page fell inside `published_after=2023-01-01` filters it has no business in."""
    assert extract_html(html, url).published is None


def days_from_today(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).date().isoformat()


@pytest.mark.parametrize("stated", ["2023-02-29", "2024-04-31", "2024-02-30T10:00:00Z", "2024-13-01", "future"])
def test_a_date_the_page_states_off_the_calendar_or_after_the_crawl_is_no_date(stated):
    """htmldate refused the day and kept the year and month the value still shows: the page was dated the
    1st of that month (a page dated after its crawl, the 1st of the crawl's own month); a month 13 was
    read as a day (`2024-13-01`: 13 January)."""
    stated = days_from_today(40) if stated == "future" else stated
    html, url = page("Wage report", head=f'<meta property="article:published_time" content="{stated}">')
    assert extract_html(html, url).published is None


def test_a_page_an_hour_old_is_dated_as_its_publisher_far_east_dates_it(monkeypatch):
    """The publisher's day may be the crawler's tomorrow (here always: UTC-12 against UTC+14): the
    crawler's own clock refused the date and the page got the 1st of the month instead, or none."""
    monkeypatch.setenv("TZ", "Etc/GMT+12")
    time.tzset()
    try:
        written = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        written = written.astimezone(dt.timezone(dt.timedelta(hours=14)))
        html, url = page("Rate decision", head=f'<meta property="article:published_time" content="{written.isoformat()}">')
        assert extract_html(html, url).published == written.date().isoformat()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_an_undated_page_takes_no_date_from_the_pages_it_links_to():
    links = ('<a href="https://other.example.com/2019/07/04/story/">A story</a> '
             '<a href="/2024/05/02/rates/">Rates</a>')  # fmt: skip
    html, url = page("Latest news", links, url="https://news.example.org/economy/")
    assert extract_html(html, url).published is None


@pytest.mark.parametrize(("first", "published"), [
    ("Release date: 1 March 2024", "2024-03-01"),
    ("Veröffentlicht am 1. März 2024", "2024-03-01"),
    ("Published March 1st, 2024", "2024-03-01"),
    ("<span class='date'>2024-03-01</span>", "2024-03-01"),
    # written across tags, in Korean, in Russian, Spanish: the check reads the page's text, not its markup
    ("<p class='date'>March 1<sup>st</sup>, 2024</p>", "2024-03-01"),
    ("<p class='date'>Published <b>1</b> March 2024</p>", "2024-03-01"),
    ("<time>2024년 3월 1일</time>", "2024-03-01"),
    ("<span class='date'>01 марта 2024</span>", "2024-03-01"),
    ("<p class='date'>1 de marzo de 2024</p>", "2024-03-01"),
])  # fmt: skip
def test_a_first_of_the_month_the_page_writes_is_kept(first, published):
    html, url = page("Consumer prices", first)
    assert extract_html(html, url).published == published


@pytest.mark.parametrize(("html", "url", "published"), [
    (*page("New rules", head='<meta property="article:published_time" content="2024-01-01T09:00:00Z">'), "2024-01-01"),
    (*page("New rules", head=ld('"datePublished": "2024-01-01"')), "2024-01-01"),
    (*page("New rules", "<time datetime='2024-01-01'>1 January 2024</time>"), "2024-01-01"),
    (*page("New rules", "<span class='date'>1 January 2024</span>"), "2024-01-01"),
    (*page("New rules", url="https://blog.example.com/2024/01/01/new-rules/"), "2024-01-01"),
    (*page("Monetary policy decisions", "<p class='publication-date'>11 April 2024</p>"), "2024-04-11"),
    (*page("Consumer price inflation, UK: February 2024", "Release date: 20 March 2024"), "2024-03-20"),
    (*page("Net Zero Strategy", "<dl><dt>Published</dt><dd>19 October 2021</dd></dl>"), "2021-10-19"),
    (*page("Analysis of growth", head=ld('"datePublished": "2022-06-01T09:00:00+00:00", '
                                         '"dateModified": "2024-01-10T12:00:00+00:00"')), "2022-06-01"),
    (*page("Late statement", head='<meta property="article:published_time" content="2024-03-15T23:30:00-05:00">'),
     "2024-03-15"),  # the date as the publisher wrote it, not shifted to UTC
    (*page("Rate decision", url="https://blog.example.com/2024/03/15/rate-decision/"), "2024-03-15"),
    # a year alone, as scholarly metadata may state it: that year, not 1 January of it
    (*page("Wages and hours", "Since 2008 wages rose.", head='<meta name="citation_publication_date" content="2019">'),
     "2019"),
    (*page("Wages and hours", head='<meta name="DC.date.issued" content="2020">'), "2020"),
], ids=["jan1-meta", "jan1-json-ld", "jan1-time", "jan1-date-class", "jan1-url", "press-release", "release-date",
        "published-dl", "json-ld-published-not-modified", "offset-near-midnight", "url", "citation-year",
        "dc-year"])  # fmt: skip
def test_a_date_the_page_states_is_kept(html, url, published):
    assert extract_html(html, url).published == published


@pytest.mark.parametrize("created", [
    b"D:19700101000000Z",  # a zeroed Unix clock
    b"D:16010101000000Z",  # a zeroed Windows clock
    b"D:20991231000000Z",  # after the crawl: it would be inside every time_range
])  # fmt: skip
def test_a_pdf_date_no_pdf_can_have_is_no_date(created):
    ex = extract_pdf(minimal_pdf(["Prices rose two percent."], info=b"<< /CreationDate (%s) >>" % created))
    assert ex.text == "Prices rose two percent." and ex.published is None


@pytest.mark.parametrize(("created", "published"), [
    (b"D:20240315233000-05'00'", "2024-03-15"),
    (b"2024-03-15T10:00:00Z", "2024-03-15"),  # an ISO date instead of a PDF date: its year alone read 2024-01-01
    (b"D:2023", "2023"),  # a year alone: that year, not 1 January of it
    (b"D:202403", "2024-03"),
    (b"D:2024031", None),  # no PDF date: a month's digits and one more
])  # fmt: skip
def test_a_pdf_creation_date_is_read_as_written(created, published):
    assert extract_pdf(minimal_pdf(["Prices rose."], info=b"<< /CreationDate (%s) >>" % created)).published == published
