"""Downloader and spider middlewares: safety (allowlist, private addresses) on every request including
redirect targets and robots.txt/sitemap fetches, host mapping for tests, 429 Retry-After, retry backoff,
frontier bookkeeping (resume, page limits) and outcome classification for the report."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import threads
from twisted.internet.error import TimeoutError as TxTimeoutError

from crawler.urls import canonicalize_url, host_is_private, literal_ip, registrable_domain, system_resolve

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.state import CrawlState

logger = logging.getLogger(__name__)

PAGE = "page"


class Refused(IgnoreRequest):
    """A request the crawler refuses before it is sent (reason already counted)."""

    def __init__(self, reason: str, url: str):
        super().__init__(f"refused ({reason}): {url}")
        self.reason = reason


def _state(crawler: Crawler) -> CrawlState:
    return crawler.spider.crawl_state  # type: ignore[union-attr]


def _is_page(request: Request) -> bool:
    return request.meta.get("dr_kind") == PAGE


def _is_retry(request: Request) -> bool:
    return bool(request.meta.get("retry_times"))


class SafetyMiddleware:
    """Refuse any request outside the allowlist (also after redirects) or to a private address."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.host_map: dict[str, tuple[str, int]] = crawler.settings.getdict("DRSEARCH_HOST_MAP")
        self.allow_private = crawler.settings.getbool("DRSEARCH_ALLOW_PRIVATE")
        self._private_cache: dict[str, bool] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SafetyMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        state = _state(self.crawler)
        allowlist = self.crawler.spider.allowlist  # type: ignore[union-attr]
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        redirected = bool(request.meta.get("redirect_urls"))
        if parts.scheme not in ("http", "https") or not allowlist.allows_host(host):
            reason = "redirect_offsite" if redirected else "offsite"
            self._refuse(state, request, reason)
        if self.allow_private or host in self.host_map:
            return
        private = self._private_cache.get(host)
        if private is None:
            if literal_ip(host) is not None or host == "localhost":
                private = host_is_private(host, system_resolve)
            else:
                d = threads.deferToThread(host_is_private, host, system_resolve)
                private = await maybe_deferred_to_future(d)
            self._private_cache[host] = private
        if private:
            self._refuse(state, request, "private_address")

    @staticmethod
    def _refuse(state: CrawlState, request: Request, reason: str) -> None:
        url = request.url
        state.skip(reason, url)
        if _is_page(request):
            state.mark_done(request.meta.get("dr_url", url))
            for u in request.meta.get("redirect_urls", []):
                state.mark_done(canonicalize_url(u))
        logger.info("refused %s: %s", reason, url)
        raise Refused(reason, url)


class FrontierDownloaderMiddleware:
    """Never refetch a stored/done page (resume), fetch a page once per run, cap pages per domain."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.max_pages = crawler.settings.getint("DRSEARCH_MAX_PAGES_PER_DOMAIN")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierDownloaderMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if not _is_page(request) or _is_retry(request):
            return
        state = _state(self.crawler)
        url = canonicalize_url(request.url)
        if url in state.stored or url in state.done:
            state.skips["already_done"] += 1
            raise IgnoreRequest(f"already stored or done: {url}")
        if url in state.issued:
            raise IgnoreRequest(f"already requested in this run: {url}")
        domain = registrable_domain(urlsplit(url).hostname or "")
        if self.max_pages and state.fetched_per_domain[domain] >= self.max_pages:
            state.skip("page_limit", url)
            state.mark_done(url)
            raise Refused("page_limit", url)
        state.issued.add(url)
        state.fetched_per_domain[domain] += 1


class HostMapMiddleware:
    """Send requests for mapped hostnames to their IP:PORT (as an HTTP proxy) while the URL keeps the
    hostname, so allowlist, ids and output URLs are unchanged. For tests and local mirrors; http only."""

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
        target = self.host_map.get((parts.hostname or "").lower())
        if target is not None and parts.scheme == "http":
            request.meta["proxy"] = f"http://{target[0]}:{target[1]}"
            request.meta["dr_host_mapped"] = True
        elif request.meta.pop("dr_host_mapped", None):
            request.meta.pop("proxy", None)


def retry_after_seconds(value: bytes | str | None, default: float, cap: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped."""
    if value is None:
        return min(default, cap)
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            seconds = default
    return max(0.0, min(seconds, cap))


class PoliteRetryMiddleware(RetryMiddleware):
    """Scrapy's retries plus exponential backoff (5xx, timeouts) and Retry-After on 429 (capped)."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 30.0)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 60.0)
        self.retry_after_default = settings.getfloat("RETRY_AFTER_DEFAULT", 5.0)

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _backoff(self, request: Request) -> float:
        n = int(request.meta.get("retry_times", 1))
        return min(self.backoff_max, self.backoff_base * (2 ** max(0, n - 1)))

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False):
            return response
        if response.status == 429:
            wait = retry_after_seconds(response.headers.get(b"Retry-After"), self.retry_after_default,
                                       self.retry_after_max)
            retry = self._retry(request, "429 Too Many Requests")
            if retry is None:
                return response
            logger.info("429 on %s: waiting %.1fs (Retry-After)", request.url, wait)
            await self._sleep(wait)
            return retry
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await self._sleep(self._backoff(result))
        return result

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:  # type: ignore[override]
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await self._sleep(self._backoff(result))
        return result


class OutcomeMiddleware:
    """Classify the final outcome of page requests (after retries and redirects) for the report."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OutcomeMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if _is_page(request):
            state = _state(self.crawler)
            domain = registrable_domain(urlsplit(response.url).hostname or "")
            state.pages_per_domain[domain] += 1
            if response.status >= 300:
                state.skip("http_status", f"{response.status} {response.url}")
                self._done(state, request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, Refused):
            return None
        state = _state(self.crawler)
        if isinstance(exception, IgnoreRequest):
            if "robots.txt" in str(exception):
                state.skip("robots", request.url)
                if _is_page(request):
                    self._done(state, request)
            return None
        if isinstance(exception, (DownloadTimeoutError, TxTimeoutError, TimeoutError)):
            reason = "timeout"
        elif isinstance(exception, DownloadCancelledError) or "max size" in str(exception).lower():
            reason = "too_large"
        else:
            reason = "error"
        state.skip(reason, request.url)
        logger.info("%s on %s: %s", reason, request.url, exception)
        if _is_page(request):
            self._done(state, request)
        return None

    @staticmethod
    def _done(state: CrawlState, request: Request) -> None:
        state.mark_done(request.meta.get("dr_url", canonicalize_url(request.url)))
        state.mark_done(canonicalize_url(request.url))
        for u in request.meta.get("redirect_urls", []):
            state.mark_done(canonicalize_url(u))


class FrontierSpiderMiddleware:
    """Spider output: keep page requests inside the allowlist and the depth limit; log them as seen."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.max_depth = crawler.settings.getint("DRSEARCH_MAX_DEPTH")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierSpiderMiddleware:
        return cls(crawler)

    def _filter(self, result: Any) -> bool:
        if not isinstance(result, Request):
            return True
        state = _state(self.crawler)
        spider = self.crawler.spider
        if not spider.allowlist.allows_url(result.url):  # type: ignore[union-attr]
            state.skip("offsite", result.url)
            return False
        if _is_page(result):
            depth = int(result.meta.get("dr_depth", 0))
            url = result.meta.get("dr_url", result.url)
            if depth > self.max_depth:
                state.skip("depth", url)
                return False
            if url in state.stored or url in state.done:
                return False
            state.mark_seen(url, depth)
        return True

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        for r in result:
            if self._filter(r):
                yield r

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        async for r in result:
            if self._filter(r):
                yield r

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for r in start:
            if self._filter(r):
                yield r
