"""The one generic spider: starts from each domain's home page and sitemaps, follows links.

It only parses: requests and PageItems out; allowlist, depth, safety, dedupe, extraction and
storage live in the middlewares and pipelines.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider, signals
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.gz import gunzip, gzip_magic_number
from scrapy.utils.sitemap import Sitemap
from w3lib.encoding import http_content_type_encoding

from crawler.config import CrawlConfig
from crawler.directives import page_directives
from crawler.extract import media_type, page_kind
from crawler.tag_floods import MAX_TAG_ATTRIBUTES, strip_attribute_floods
from crawler.items import PageItem
from crawler.outcomes import (
    PAGE,
    SETTLED,
    follow_same_page,
    is_page,
    late_failure_reason,
    settle,
    settle_redirect_to_known,
)
from crawler.pipelines import ExtractBacklog
from crawler.politeness import DOWNLOAD_SLOT
from crawler.state import CrawlState
from crawler.urls import Allowlist, canonicalize_url, url_domain

logger = logging.getLogger(__name__)

SITEMAP_DEPTH = 1  # pages listed in a sitemap count as one hop from the home page
MAX_SITEMAP_NESTING = 3
_SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "ftp:", "#")


class AuthoritySpider(Spider):
    name = "authority"

    config: CrawlConfig

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> AuthoritySpider:
        spider: AuthoritySpider = super().from_crawler(crawler, *args, **kwargs)
        cfg = spider.config
        spider.allowlist = Allowlist(cfg.domains)
        spider.crawl_state = CrawlState(
            Path(cfg.out_dir), resume=cfg.resume, shard_docs=cfg.shard_docs, flush_docs=cfg.flush_docs
        )
        # Start pages are depth 0 before anything is crawled: Scrapy reads start() lazily, so a link from another
        # site's page (or a redirect from its apex) could otherwise claim one at depth 1 and shift its whole site.
        for url in cfg.start_urls:
            spider.crawl_state.mark_seen(url, 0)
        spider.extract_backlog = ExtractBacklog(crawler.settings.getint("DRSEARCH_EXTRACT_BACKLOG"))
        spider.sitemap_maxsize = crawler.settings.getint("SITEMAP_MAX_DECOMPRESSED_SIZE") or crawler.settings.getint(
            "DOWNLOAD_MAXSIZE"
        )
        spider._sitemaps = set()
        spider.max_links = crawler.settings.getint("DRSEARCH_MAX_LINKS_PER_PAGE", 1000)
        spider.robots_token = crawler.settings.get("ROBOTSTXT_USER_AGENT") or ""
        crawler.signals.connect(spider._robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(spider._request_dropped, signal=signals.request_dropped)
        return spider

    # -- requests -------------------------------------------------------------------------------
    def page_request(self, url: str, depth: int, *, dont_filter: bool = False) -> Request:
        url = canonicalize_url(url)
        return Request(
            url,
            callback=self.parse_page,
            errback=self.on_error,
            priority=-depth,
            dont_filter=dont_filter,
            meta={"dr_kind": PAGE, "dr_depth": depth, "dr_url": url, DOWNLOAD_SLOT: url_domain(url)},
        )

    def link_request(self, base: str, href: str, depth: int, page: str | None = None) -> Request | None:
        """A page request for a link of `page` or a sitemap entry; None for another scheme (`ftp:`, `sms:`, ...)
        and, counted as `bad_url`, for a URL no request can be made for (a port out of range, say), so that
        the rest of its page or sitemap still goes on."""
        url = href
        try:
            url = urljoin(base, href)
            if urlsplit(url).scheme not in ("http", "https"):
                return None
            return self.page_request(url, depth)
        except ValueError:
            self.crawl_state.skip_link(page, "bad_url", url)
            return None

    def sitemap_request(self, base: str, href: str, nesting: int = 0) -> Request | None:
        """A sitemap fetch, once per run (None for a URL already asked for or unusable: `bad_url`). Not left
        to Scrapy's persistent dupefilter: a crawl killed after a sitemap's fingerprint was saved but before
        it was parsed would lose its pages on resume."""
        url = href
        try:
            url = canonicalize_url(urljoin(base, href))
        except ValueError:
            self.crawl_state.skip("bad_url", url)
            return None
        if url in self._sitemaps:
            return None
        self._sitemaps.add(url)
        return Request(
            url,
            callback=self.parse_sitemap,
            errback=self.on_error,
            priority=1,
            dont_filter=True,
            meta={"dr_kind": "sitemap", "dr_nesting": nesting, "dr_depth": 0, DOWNLOAD_SLOT: url_domain(url)},
        )

    async def start(self) -> AsyncIterator[Any]:
        pending = self.crawl_state.pending()
        if pending:
            logger.info("resuming: %d pending page(s) from the previous run: %s", len(pending), [u for u, _ in pending][:20])
        for url, depth in pending:
            yield self.page_request(url, depth, dont_filter=True)
        seen_sites: set[str] = set()
        for url in self.config.start_urls:
            # dont_filter: stored/done pages are skipped by FrontierDownloaderMiddleware instead
            yield self.page_request(url, 0, dont_filter=True)
            parts = urlsplit(url)
            site = f"{parts.scheme}://{parts.netloc}"
            if site not in seen_sites:
                seen_sites.add(site)
                req = self.sitemap_request(site, "/sitemap.xml")
                if req is not None:
                    yield req

    def _robots_parsed(self, robotparser: Any, request: Request) -> None:
        """robots.txt was fetched (by RobotsTxtMiddleware): schedule its `Sitemap:` URLs."""
        rp = getattr(robotparser, "rp", None)  # ProtegoRobotParser (ROBOTSTXT_PARSER) keeps Protego here
        sitemaps = list(getattr(rp, "sitemaps", None) or [])
        base = f"{urlsplit(request.url).scheme}://{urlsplit(request.url).netloc}/"
        for sm in sitemaps:
            req = self.sitemap_request(base, sm)
            if req is not None and not self.allowlist.allows_url(req.url):
                self.crawl_state.skip("offsite", req.url)
            elif req is not None:
                self.crawler.engine.crawl(req)

    # -- parsing --------------------------------------------------------------------------------
    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        body = self._sitemap_body(response)
        if body is None:
            logger.info("not a sitemap (or too large): %s", response.url)
            return
        try:
            sitemap = Sitemap(body)
        except Exception:
            logger.info("unparsable sitemap: %s", response.url)
            return
        nesting = int(response.meta.get("dr_nesting", 0))
        if sitemap.type == "sitemapindex":
            if nesting >= MAX_SITEMAP_NESTING:
                return
            for entry in sitemap:
                req = self.sitemap_request(response.url, entry["loc"], nesting + 1) if entry.get("loc") else None
                if req is not None:
                    yield req
        elif sitemap.type == "urlset":
            for entry in sitemap:
                req = self.link_request(response.url, entry["loc"], SITEMAP_DEPTH) if entry.get("loc") else None
                if req is not None:
                    yield req

    def _sitemap_body(self, response: Response) -> bytes | None:
        if gzip_magic_number(response):
            try:
                return gunzip(response.body, max_size=self.sitemap_maxsize)
            except Exception:  # too large after decompression or corrupt
                self.crawl_state.skip("too_large", response.url)
                return None
        head = response.body[:512].lstrip()
        if head.startswith(b"<?xml") or b"<urlset" in head or b"<sitemapindex" in head:
            return response.body
        return None

    def parse_page(self, response: Response) -> Iterator[Request | PageItem]:
        fetched = canonicalize_url(response.url)
        hops = [canonicalize_url(u) for u in response.meta.get("redirect_urls", [])]
        depth = self.crawl_state.least_depth([response.meta.get("dr_url", fetched), *hops, fetched],
                                             int(response.meta.get("dr_depth", 0)))  # fmt: skip
        header = response.headers.get(b"Content-Type", b"").decode("latin-1")
        ctype = media_type(header)
        identity = fetched
        robots_headers = [v.decode("latin-1") for v in response.headers.getlist(b"X-Robots-Tag")]
        directives = page_directives(robots_headers, [], self.robots_token)
        if page_kind(ctype, response.body) == "html":
            if not isinstance(response, TextResponse):  # HTML sent as application/octet-stream
                response = response.replace(cls=HtmlResponse)
            body, stripped = strip_attribute_floods(response.body, response.encoding)
            if stripped:  # the links below and the stored body (extraction) both read the stripped page
                logger.info("%d tag(s) of over %d attributes reduced to their names: %s", stripped, MAX_TAG_ATTRIBUTES, response.url)
                response = response.replace(body=body)
            metas = [(m.attrib.get("name", ""), m.attrib.get("content", "")) for m in response.xpath("//meta[@name]")]
            directives |= page_directives([], metas, self.robots_token)
            # A page with 50,000 links must not cost minutes of refusals: the first max_links only, capped in
            # the XPath itself (listing a page's 1.2M links first took 3.2 GB). No union (`//a/@href |
            # //area/@href`): libxml2 merges two node sets in quadratic time, 19 s for 50,000 of each.
            first_links = f"(//*[self::a or self::area]/@href)[position() <= {self.max_links}]"
            links = [] if "nofollow" in directives else response.xpath(first_links).getall()
            for href in links:
                href = href.strip()
                if not href or href.lower().startswith(_SKIP_SCHEMES):
                    continue
                req = self.link_request(response.url, href, depth + 1, response.meta.get("dr_url", fetched))
                if req is not None:
                    yield req
            identity = self._canonical_link(response, fetched)
        request_urls = hops + [response.meta.get("dr_url", fetched), fetched, identity]
        yield PageItem(
            url=identity,
            fetched_url=fetched,
            request_urls=list(dict.fromkeys(request_urls)),
            status=response.status,
            content_type=ctype,
            body=response.body,
            depth=depth,
            fetched_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            domain=url_domain(identity),
            charset=http_content_type_encoding(header),
            noindex="noindex" in directives,
        )

    def _canonical_link(self, response: TextResponse, fetched: str) -> str:
        """rel=canonical target when it is on the same allowed site, else the fetched URL."""
        for href in response.xpath("//link[contains(concat(' ', normalize-space(@rel), ' '), ' canonical ')]/@href").getall():
            try:
                target = canonicalize_url(response.urljoin(href.strip()))
            except ValueError:
                continue
            if self.allowlist.allows_url(target) and url_domain(target) == url_domain(fetched):
                return target
            break
        return fetched

    def on_error(self, failure: Any) -> None:
        """Most failures are settled by OutcomeMiddleware already; those raised in process_response (the
        redirect cap, the decompressed-size cap, a redirect to an unusable URL) arrive only here."""
        request = failure.request
        if not failure.check(HttpError) and not request.meta.get(SETTLED):  # HttpError: a response, settled
            settle(self.crawl_state, request, late_failure_reason(failure.value))
        logger.debug("request failed: %s", failure.getErrorMessage())

    def _request_dropped(self, request: Request) -> None:
        """The scheduler's duplicate filter dropped a request: for a redirect, its chain ends at a known page,
        unless it is a hop to another URL of its own page (`follow_same_page`) that an earlier chain asked for."""
        if is_page(request) and request.meta.get("redirect_urls"):
            if follow_same_page(request):
                self.crawler.engine.crawl(request.replace(dont_filter=True))
            else:
                settle_redirect_to_known(self.crawl_state, request)
