"""Downloader and spider middlewares: safety (allowlist, non-public addresses) on every request including
redirect targets and robots.txt/sitemap fetches, host mapping for tests, frontier bookkeeping (resume,
page limits) and outcome classification for the report. Politeness (slots, retries) is in politeness.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Response
from scrapy.utils.response import get_meta_refresh
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import threads
from twisted.internet.error import TimeoutError as TxTimeoutError

from crawler.outcomes import SETTLED, follow_same_page, is_page, settle, settle_redirect_to_known
from crawler.pinning import AddressBook
from crawler.urls import canonicalize_url, url_domain
from indexer.domains import host_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.state import CrawlState

logger = logging.getLogger(__name__)


class Refused(IgnoreRequest):
    """A request the crawler refuses before it is sent (reason already counted)."""

    def __init__(self, reason: str, url: str):
        super().__init__(f"refused ({reason}): {url}")
        self.reason = reason


def _state(crawler: Crawler) -> CrawlState:
    return crawler.spider.crawl_state  # type: ignore[union-attr]


def _is_retry(request: Request) -> bool:
    return bool(request.meta.get("retry_times"))


def refuse(state: CrawlState, request: Request, reason: str) -> None:
    settle(state, request, reason)
    raise Refused(reason, request.url)


class _CrawlerBound:
    """A component Scrapy builds with `from_crawler`, keeping the crawler (settings, spider, crawl state)."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return cls(crawler)


class SafetyMiddleware(_CrawlerBound):
    """Refuse any request outside the allowlist (also after redirects), to a non-public address, or (with a
    host map and without `--allow-dns`) to an unmapped host.

    Addresses come from the crawl's `AddressBook`: one lookup per host, and the resolver connections use
    answers with the address checked here. A host-mapped host is judged by its map target;
    `--allow-private` admits loopback addresses only, never private, link-local or shared (CGNAT) ranges."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.book = AddressBook.from_settings(crawler.settings)

    async def process_request(self, request: Request) -> None:
        state = _state(self.crawler)
        allowlist = self.crawler.spider.allowlist  # type: ignore[union-attr]
        parts = urlsplit(request.url)
        host = host_of(request.url) or ""
        if parts.scheme not in ("http", "https") or not allowlist.allows_host(host):
            refuse(state, request, "redirect_offsite" if request.meta.get("redirect_urls") else "offsite")
        if self.book.needs_dns(host):
            _, reason = await maybe_deferred_to_future(threads.deferToThread(self.book.lookup, host))
        else:
            _, reason = self.book.lookup(host)
        if reason in ("private_address", "unmapped_host"):  # a dns_error fails later as an ordinary download error
            refuse(state, request, reason)


class ExtractBacklogMiddleware(_CrawlerBound):
    """A page download waits while DRSEARCH_EXTRACT_BACKLOG pages are waiting for extraction or in it
    (`pipelines.ExtractBacklog`): the waiting requests fill the downloader, so the engine takes no more from
    the scheduler, and at most that many pages plus CONCURRENT_REQUESTS are held in memory (and lost to a
    kill). robots.txt and sitemap fetches never wait: no page is extracted from them."""

    async def process_request(self, request: Request) -> None:
        if is_page(request):
            await self.crawler.spider.extract_backlog.room()  # type: ignore[union-attr]


class FrontierDownloaderMiddleware(_CrawlerBound):
    """Never refetch a stored/done page (resume) and fetch a page once per run. A redirect into a page
    already asked for (a loop, or another URL of a known page) settles its chain, unless it is that page's
    own next fetch (`follow_same_page`)."""

    def process_request(self, request: Request) -> None:
        if not is_page(request) or _is_retry(request):
            return
        state = _state(self.crawler)
        url = canonicalize_url(request.url)
        done = url in state.stored or url in state.done
        if request.meta.get("redirect_urls") and (done or url in state.issued):
            if not done and follow_same_page(request):
                return
            settle_redirect_to_known(state, request)
            raise Refused(str(request.meta[SETTLED]), url)
        if done:
            request.meta[SETTLED] = "already_done"
            state.skips["already_done"] += 1
            raise IgnoreRequest(f"already stored or done: {url}")
        if url in state.issued:
            request.meta[SETTLED] = "already_requested"  # its first request settles it
            raise IgnoreRequest(f"already requested in this run: {url}")
        state.issued.add(url)


class PageLimitMiddleware(_CrawlerBound):
    """Cap the pages fetched per registrable domain (redirect hops count, retries do not). Placed after
    RobotsTxtMiddleware so that pages robots.txt forbids never use up the allowance. A page an earlier run
    let through (in flight when it stopped) is already counted and goes again."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.max_pages = crawler.settings.getint("DRSEARCH_MAX_PAGES_PER_DOMAIN")

    def process_request(self, request: Request) -> None:
        if not is_page(request) or _is_retry(request):
            return
        state = _state(self.crawler)
        url = canonicalize_url(request.url)
        if url in state.fetched:
            return
        if state.fetched_per_domain[url_domain(url)] >= self.max_pages:
            refuse(state, request, "page_limit")
        state.mark_fetched(url)


class HostMapMiddleware:
    """Send requests for mapped hostnames to their IP:PORT (as an HTTP proxy) while the URL keeps the
    hostname, so allowlist, ids and output URLs are unchanged. For tests and local mirrors. https URLs of
    a mapped host go to the target too (as a CONNECT), never to the real site."""

    def __init__(self, host_map: dict[str, Any]):
        self.host_map = {h: (str(v[0]), int(v[1])) for h, v in host_map.items()}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostMapMiddleware:
        host_map = crawler.settings.getdict("DRSEARCH_HOST_MAP")
        if not host_map:
            raise NotConfigured
        return cls(host_map)

    def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        target = self.host_map.get(host_of(request.url) or "")
        if target is not None and parts.scheme in ("http", "https"):
            request.meta["proxy"] = f"http://{target[0]}:{target[1]}"
            request.meta["dr_host_mapped"] = True
        elif request.meta.pop("dr_host_mapped", None):
            request.meta.pop("proxy", None)


class OutcomeMiddleware(_CrawlerBound):
    """Classify the final outcome of requests (after retries and redirects) for the report.

    Exceptions raised by another middleware's process_response (redirect cap, decompressed-size cap) never
    reach here: the spider's errback settles those."""

    def process_response(self, request: Request, response: Response) -> Response:
        if is_page(request):
            state = _state(self.crawler)
            state.pages_per_domain[url_domain(response.url)] += 1
            if response.status >= 300:
                settle(state, request, "http_status", f"{response.status} {response.url}")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if request.meta.get(SETTLED):
            return None
        state = _state(self.crawler)
        if isinstance(exception, IgnoreRequest):
            if "robots.txt" in str(exception):
                settle(state, request, "robots")
            return None
        if isinstance(exception, (DownloadTimeoutError, TxTimeoutError, TimeoutError)):
            reason = "timeout"
        elif isinstance(exception, DownloadCancelledError) or "max size" in str(exception).lower():
            reason = "too_large"
        else:
            reason = "error"
        settle(state, request, reason)
        logger.info("%s on %s: %s", reason, request.url, exception)
        return None


class SelfRefreshMiddleware(MetaRefreshMiddleware):
    """Scrapy's meta refresh, except that a page refreshing to its own URL is kept as it is: it is its own
    content, and following the refresh would only fetch it again."""

    def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if isinstance(response, HtmlResponse) and not request.meta.get("dont_redirect"):
            _, url = get_meta_refresh(response, ignore_tags=self._ignore_tags)
            if url == response.url:
                return response
        return super().process_response(request, response)


class FrontierSpiderMiddleware(_CrawlerBound):
    """Spider output: keep page requests inside the allowlist and the depth limit; log them as seen."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.max_depth = crawler.settings.getint("DRSEARCH_MAX_DEPTH")

    def _filter(self, result: Any, page: str | None) -> bool:
        """`page`: the page whose output this is (None for a sitemap's or the start requests)."""
        state = _state(self.crawler)
        if not isinstance(result, Request):
            if page is not None:
                state.log_links(page)  # the page's item: its outcome follows
            return True
        spider = self.crawler.spider
        if not spider.allowlist.allows_url(result.url):  # type: ignore[union-attr]
            state.skip_link(page, "offsite", result.url)
            return False
        if is_page(result):
            depth = int(result.meta.get("dr_depth", 0))
            url = result.meta.get("dr_url", result.url)
            if url in state.stored or url in state.done:
                return False
            if depth > self.max_depth:
                if url not in state.seen:  # a page linked from every page deep down is not skipped each time
                    state.skip_link(page, "depth", url)
                return False
            state.mark_seen(url, depth)
        return True

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        page = _page_of(response)
        for r in result:
            if self._filter(r, page):
                yield r

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        page = _page_of(response)
        async for r in result:
            if self._filter(r, page):
                yield r

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for r in start:
            if self._filter(r, None):
                yield r


def _page_of(response: Response) -> str | None:
    return response.meta.get("dr_url") if is_page(response.request) else None
