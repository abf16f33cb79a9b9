"""One crawl of a small fixture web (127.0.0.1 only) of awkward pages: malformed links and sitemap entries,
redirects to unusable locations, HTML served under another content type, a charset named only in the HTTP
header, robots directives of a page (noindex, nofollow), redirects to another URL of the same page, markup
that is costly or fatal to parse. Some pages are handed to the spider's `parse_page` directly, no crawl."""

from __future__ import annotations

import asyncio
import json
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.config import CrawlConfig
from crawler.extract import extract_html
from crawler.items import PageItem
from crawler.pipelines import ExtractPipeline
from crawler.settings import build_settings
from crawler.spiders.authority import AuthoritySpider
from tests.crawler.conftest import SM_NS, crawled, page, paras, read_docs
from tests.crawler.fixture_web import PARA, FixtureWeb, Resp, article, minimal_pdf

BAD = "www.badlink.org"
BAD_LINK = f"http://{BAD}:99999/x"  # port out of range: no request can be made for it
BAD_LOC = f"http://{BAD}:0x/s0"
TYPES = "www.types.org"
CHARSET = "www.charset.org"
NOIDX = "www.noidx.org"
REDIR = "www.redir.org"
MARKUP = "www.markup.org"
HEAVY = "www.heavy.org"
HEAVY_PARAS = [f"Paragraph {i} of a long report on consumer prices, household income and regional employment." for i in range(20_000)]
FRENCH = (
    "Le r\u00e9sum\u00e9 co\u00fbte 5\u20ac \u2013 \u201cna\u00efve\u201d fa\u00e7ade, "
    "\u00e9t\u00e9 \u00e0 l\u2019h\u00f4tel"
)


def build_web() -> FixtureWeb:
    web = FixtureWeb()
    web.site(
        BAD,
        {
            "/": page("bad link home", ["/a", BAD_LINK, "/b", "/badloc"]),
            "/a": page("alpha"),
            "/b": page("beta"),
            "/badloc": Resp(301, b"", headers={"Location": f"http://{BAD}:99999/moved"}),
            "/sitemap.xml": Resp(
                body=(
                    f'<?xml version="1.0"?><urlset {SM_NS}><url><loc>{BAD_LOC}</loc></url>'
                    f"<url><loc>http://{BAD}/s1</loc></url></urlset>"
                ).encode(),
                ctype="application/xml",
            ),
            "/s1": page("sitemap one"),
        },
    )
    web.site(
        TYPES,
        {
            "/": page("content types home", ["/plain-html", "/octet-html"]),
            "/plain-html": Resp(body=page("html served as plain text", ["/from-plain"]).body, ctype="text/plain"),
            "/from-plain": page("linked from plain text"),
            "/octet-html": Resp(
                body=page("html served as octets", ["/from-octet"]).body, ctype="application/octet-stream"
            ),
            "/from-octet": page("linked from octets"),
        },
    )
    french = [f"{FRENCH}, des donn\u00e9es \u00e9conomiques pour la {w}." for w in ("r\u00e9gion", "nation")]
    web.site(
        CHARSET,
        {
            "/": page("charset home", ["/cp1252"]),
            # windows-1252 named in the Content-Type header only (the page has no <meta charset>)
            "/cp1252": Resp(
                body=(
                    "<html><head><title>Donn\u00e9es \u00e9t\u00e9</title></head><body><article>"
                    + "".join(f"<p>{p}</p>" for p in french)
                    + "</article></body></html>"
                ).encode("cp1252"),
                ctype="text/html; charset=windows-1252",
            ),
        },
    )
    web.site(
        NOIDX,
        {
            "/": page("directives home", ["/meta", "/hdr", "/meta-nofollow", "/hdr-none", "/ours", "/others"]),
            "/meta": page("meta noindex", ["/from-meta"], head='<meta name="ROBOTS" content="NoIndex">'),
            "/from-meta": page("linked from a noindex page"),
            "/hdr": Resp(body=page("header noindex").body, headers={"X-Robots-Tag": "noindex"}),
            "/meta-nofollow": page(
                "meta nofollow", ["/from-nofollow"], head='<meta name="robots" content="index, nofollow">'
            ),
            "/from-nofollow": page("linked from a nofollow page"),
            "/hdr-none": Resp(body=page("header none", ["/from-none"]).body, headers={"X-Robots-Tag": "none"}),
            "/from-none": page("linked from a none page"),
            "/ours": page("our bot noindex", head='<meta name="drsearch-crawler" content="noindex">'),
            "/others": Resp(body=page("other bot noindex").body, headers={"X-Robots-Tag": "otherbot: noindex"}),
        },
    )
    web.site(
        REDIR,
        {
            "/": page("redirects home", ["/self", "/refresh", "/refresh-abs", "/loop"]),
            "/self": Resp(302, b"", headers={"Location": "/self?utm_source=redirect"}),
            "/self?utm_source=redirect": page("self after a tracking redirect"),
            "/refresh": page("refreshing live page", head='<meta http-equiv="refresh" content="30; url=/refresh">'),
            "/refresh-abs": page("at once", head=f'<meta http-equiv="refresh" content="0;URL=http://{REDIR}/refresh-abs">'),
            "/loop": Resp(302, b"", headers={"Location": "/loop?utm_source=x"}),
            "/loop?utm_source=x": Resp(302, b"", headers={"Location": "/loop"}),
        },
    )
    web.site(
        MARKUP,
        {
            "/": page("markup home", ["/attributes", "/control"]),
            # libxml2 parses a tag's attributes in quadratic time: seconds for these unless stripped
            "/attributes": Resp(body=flood_page(10_000, "/after-flood")),
            "/after-flood": page("after the flood"),
            # a reference to a character XML forbids: trafilatura dropped the whole page
            "/control": Resp(body=article("Control", [f"{PARA} one&#1;reference", "Another paragraph. " * 5])),
        },
    )
    web.site(
        HEAVY,
        {
            "/": page("heavy home", ["/heavy", "/report", "/report-print"]),
            # ~2 MB of paragraphs: seconds to extract; /after-heavy is found only by reading its links
            "/heavy": Resp(body=article("Heavy", HEAVY_PARAS, links=["/after-heavy"])),
            "/after-heavy": page("after the heavy page"),
            # one page under two URLs, fetched side by side: the short one is stored first
            "/report": Resp(body=article("Report", [p.replace("Paragraph", "Section") for p in HEAVY_PARAS[:8000]])),
            "/report-print": page("printable report", head=f'<link rel="canonical" href="http://{HEAVY}/report">'),
        },
    )
    return web


def flood_page(attributes: int, link: str) -> bytes:
    """A page whose first paragraph's tag has `attributes` attributes, then a link."""
    flood = " ".join(f"a{i}=1" for i in range(attributes))
    first, second = paras("flooded tags")
    return (
        f'<html><head><title>Flood</title></head><body><article><p {flood}>{first}</p><p>{second}</p>'
        f'<a href="{link}">next</a></article></body></html>'
    ).encode()


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FixtureWeb, Path, dict]]:
    web, tmp = build_web(), tmp_path_factory.mktemp("pages")
    domains = "".join(f"http://{host}/\n" for host in web.sites)
    with crawled(web, tmp, domains, settings={"DOWNLOAD_MAXSIZE": 4 << 20}) as report:
        yield web, tmp / "out", report


def pending(out: Path) -> set[str]:
    """Pages the frontier log has seen but not settled: a resume would ask for them again."""
    seen, done = set(), set()
    for line in (out / "job" / "frontier.jsonl").read_text().splitlines():
        rec = json.loads(line)
        seen.add(rec.get("seen"))
        done.add(rec.get("done"))
    return seen - done - {None}


def stored(out: Path) -> set[str]:
    return {d["url"] for d in read_docs(out)}


def test_a_malformed_link_or_sitemap_entry_is_skipped_alone(crawl) -> None:
    web, out, report = crawl
    assert {"/", "/a", "/b", "/s1"} <= {path for host, path in web.requested() if host == BAD}
    assert {f"http://{BAD}{p}" for p in ("/", "/a", "/b", "/s1")} <= stored(out)
    assert report["skips"]["bad_url"] == 2
    assert set(report["skipped_examples"]["bad_url"]) == {BAD_LINK, BAD_LOC}
    assert report["finish_reason"] == "finished"
    assert pending(out) == set()


def test_a_redirect_to_an_unusable_location_is_settled(crawl) -> None:
    _, out, report = crawl
    assert report["skipped_examples"]["redirect_bad_url"] == [f"http://{BAD}/badloc"]
    assert f"http://{BAD}/badloc" not in pending(out)


def test_html_under_another_content_type_is_stored_and_its_links_followed(crawl) -> None:
    web, out, _ = crawl
    assert {(TYPES, "/from-plain"), (TYPES, "/from-octet")} <= web.requested()
    pages = ("/plain-html", "/from-plain", "/octet-html", "/from-octet")
    assert {f"http://{TYPES}{p}" for p in pages} <= stored(out)


def test_the_charset_of_the_http_header_decodes_the_page(crawl) -> None:
    _, out, _ = crawl
    doc = next(d for d in read_docs(out) if d["url"] == f"http://{CHARSET}/cp1252")
    assert doc["title"] == "Donn\u00e9es \u00e9t\u00e9"
    assert FRENCH in doc["text"]


def test_noindex_pages_are_not_stored_and_nofollow_links_not_followed(crawl) -> None:
    web, out, report = crawl
    docs = {url for url in stored(out) if url.startswith(f"http://{NOIDX}/")}
    assert docs == {f"http://{NOIDX}{p}" for p in ("/", "/from-meta", "/meta-nofollow", "/others")}
    noindex = {f"http://{NOIDX}{p}" for p in ("/meta", "/hdr", "/hdr-none", "/ours")}
    assert report["skips"]["noindex"] == 4 and set(report["skipped_examples"]["noindex"]) == noindex
    requested = {path for host, path in web.requested() if host == NOIDX}
    assert "/from-meta" in requested and not {"/from-nofollow", "/from-none"} & requested
    assert not noindex & pending(out)


def test_a_redirect_to_another_url_of_the_same_page_is_followed_once(crawl) -> None:
    web, out, report = crawl
    assert {f"http://{REDIR}/self", f"http://{REDIR}/refresh", f"http://{REDIR}/refresh-abs"} <= stored(out)
    assert web.count(REDIR, "/self?utm_source=redirect") == 1
    assert web.count(REDIR, "/refresh") == 1  # a meta refresh to itself: the page is the content, fetched once
    assert web.count(REDIR, "/refresh-abs") == 1
    assert report["skipped_examples"]["redirect_loop"] == [f"http://{REDIR}/loop"]  # a real loop still stops
    assert web.count(REDIR, "/loop") == 1 and web.count(REDIR, "/loop?utm_source=x") == 1
    assert not {u for u in pending(out) if REDIR in u}


def test_a_page_with_a_tag_of_thousands_of_attributes_is_stored(crawl) -> None:
    web, out, _ = crawl
    doc = next(d for d in read_docs(out) if d["url"] == f"http://{MARKUP}/attributes")
    assert all(p in doc["text"] for p in paras("flooded tags"))
    assert (MARKUP, "/after-flood") in web.requested()



def test_the_crawl_goes_on_while_a_page_is_extracted(crawl) -> None:
    """Extraction runs beside the reactor: the page linked from a heavy one is fetched, extracted and
    stored while the heavy page is still being extracted (on the reactor thread it waited its turn)."""
    _, out, _ = crawl
    order = [d["url"] for d in read_docs(out)]
    heavy, after = order.index(f"http://{HEAVY}/heavy"), order.index(f"http://{HEAVY}/after-heavy")
    assert after < heavy
    assert read_docs(out)[heavy]["text"].count("Paragraph ") == len(HEAVY_PARAS)


def test_a_page_is_stored_once_when_another_url_of_it_comes_during_its_extraction(crawl) -> None:
    _, out, report = crawl
    docs = [d for d in read_docs(out) if d["url"] == f"http://{HEAVY}/report"]
    assert len(docs) == 1
    assert report["skips"]["duplicate"] == 1  # the one that came second


def test_a_reference_to_a_character_xml_forbids_does_not_lose_the_page(crawl) -> None:
    _, out, report = crawl
    doc = next(d for d in read_docs(out) if d["url"] == f"http://{MARKUP}/control")
    assert f"{PARA} one reference" in doc["text"]
    assert f"http://{MARKUP}/control" not in report["skipped_examples"].get("empty", [])

# -- pages handed to the spider directly ---------------------------------------------------------------

UNIT = "www.unit.org"


@pytest.fixture
def spider(tmp_path: Path) -> Iterator[AuthoritySpider]:
    spider = AuthoritySpider.from_crawler(get_crawler(AuthoritySpider), config=CrawlConfig(tmp_path, [UNIT]))
    yield spider
    spider.crawl_state.close()


def html_response(body: bytes) -> HtmlResponse:
    url = f"http://{UNIT}/page"
    return HtmlResponse(url, body=body, headers={"Content-Type": "text/html; charset=utf-8"},
                        request=Request(url, meta={"dr_depth": 0}))  # fmt: skip


def parse_page(spider: AuthoritySpider, body: bytes) -> tuple[list[str], PageItem]:
    """The URLs the spider follows from an HTML page, and the item it makes of it."""
    *requests, item = spider.parse_page(html_response(body))
    return [r.url for r in requests], item


@pytest.mark.timeout(180)  # a hang guard only: unstripped, 20,000 attributes take seconds (40,000: a minute)
def test_a_tag_of_thousands_of_attributes_is_reduced_to_its_name(spider) -> None:
    body = flood_page(20_000, "/after")
    image = b'<img src="data:image/png;base64,' + b"QUJD" * 50_000 + b'">'  # long, with one attribute: kept
    body = body.replace(b"<article>", b"<article>" + image)
    links, item = parse_page(spider, body)
    first, second = paras("flooded tags")
    assert links == [f"http://{UNIT}/after"]
    assert f"<p>{first}</p>".encode() in item.body and b"a19999=1" not in item.body
    assert image in item.body
    assert f"{first}\n\n{second}" in extract_html(item.body, item.url).text  # what the crawl stores
    assert extract_html(body, item.url).text == extract_html(item.body, item.url).text  # live fetch: as sent


@pytest.mark.timeout(180)  # a hang guard only: listing all 100,000 links took 14 s
def test_only_the_first_links_of_a_page_are_listed(spider) -> None:
    cap = spider.max_links
    body = article("Links", paras("many links")).replace(
        b"</body>", b"".join(b'<a href="/l%d">l</a><area href="/m%d">' % (i, i) for i in range(50_000)) + b"</body>"
    )
    response = html_response(body)
    response.xpath("//title")  # parsed before the measurement
    tracemalloc.start()
    try:
        *requests, _ = spider.parse_page(response)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.url for r in requests] == [f"http://{UNIT}/{x}{i}" for i in range(cap // 2) for x in "lm"]
    assert peak < 20 * cap * 1024  # the requests for the first links (~8 MB), not 100,000 selectors (~50 MB)


def extraction_stage(spider: AuthoritySpider, **settings: object) -> ExtractPipeline:
    """The crawl's extraction stage, with `settings` over the crawl's."""
    crawler = get_crawler(AuthoritySpider, settings_dict=build_settings(spider.config) | settings)
    crawler.spider = spider
    return ExtractPipeline.from_crawler(crawler)


def page_item(body: bytes, kind: str, path: str) -> PageItem:
    url, ctype = f"http://{UNIT}{path}", "application/pdf" if kind == "pdf" else "text/html"
    return PageItem(url, url, [url], 200, ctype, body, 0, "2026-01-01T00:00:00Z", UNIT, extra={"kind": kind})


def extracted(spider: AuthoritySpider, body: bytes, **settings: object) -> PageItem:
    """`body` (a PDF) through the crawl's extraction stage, with `settings` over the crawl's."""
    stage = extraction_stage(spider, **settings)
    try:
        return asyncio.run(stage.process_item(page_item(body, "pdf", "/paper.pdf")))
    finally:
        stage.close_spider()


def test_large_pages_are_extracted_one_at_a_time(spider) -> None:
    stage = extraction_stage(spider, DRSEARCH_EXTRACT_LARGE_BYTES=20_000)
    extract, lock, running, most = stage._extract, threading.Lock(), [0], [0]

    def counted(kind: str, body: bytes, url: str, charset: str | None):  # the real extraction, counted
        large = len(body) > 20_000
        with lock:
            running[0] += large
            most[0] = max(most[0], running[0])
        try:
            return extract(kind, body, url, charset)
        finally:
            with lock:
                running[0] -= large

    stage._extract = counted
    pages = [article(f"Report {i}", [f"{PARA} Part {j}." for j in range(400)]) for i in range(3)]  # ~90 KB each

    async def crawl() -> list[PageItem]:
        return await asyncio.gather(*(stage.process_item(page_item(p, "html", f"/r{i}")) for i, p in enumerate(pages)))

    try:
        items = asyncio.run(crawl())
    finally:
        stage.close_spider()
    assert [item.text.count("Part ") for item in items] == [400] * 3
    assert most[0] == 1


def test_a_pdf_is_read_for_at_most_the_crawls_pdf_read_seconds(spider) -> None:
    pdf = minimal_pdf(["Working paper on labour markets."], pages=3)
    assert extracted(spider, pdf).text.count("Working paper") == 3
    with pytest.raises(DropItem, match="empty"):  # no page read: the time was spent before the first
        extracted(spider, pdf, DRSEARCH_PDF_READ_SECONDS=1e-9)
