"""Politeness on top of Scrapy: one download slot per registrable domain, retries with exponential
backoff (5xx, timeouts), a 429's Retry-After pausing the whole domain's slot, and robots.txt's
Crawl-delay as the least delay of its domain's slot."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.utils.asyncio import call_later

from crawler import settings as defaults
from crawler.urls import url_domain

if TYPE_CHECKING:
    from scrapy.core.downloader import Downloader
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

DOWNLOAD_SLOT = "download_slot"  # Scrapy's meta key; without it slots are keyed by host name


class DomainSlotMiddleware:
    """Key every request's download slot by registrable domain, so that www.x.org and data.x.org share one
    concurrency cap, download delay, AutoThrottle state and Retry-After pause. Runs on redirect targets
    and robots.txt fetches too (the spider also sets it, for the scheduler's per-slot queues)."""

    def process_request(self, request: Request) -> None:
        request.meta[DOWNLOAD_SLOT] = url_domain(request.url)


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


class SlotPauses:
    """Hold a download slot's queue for a while without blocking the reactor. Scrapy's downloader sends
    nothing from a slot while `slot.latercall` is pending (its own download-delay mechanism), so a pause
    is a longer latercall; requests already in flight finish normally."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def pause(self, downloader: Downloader, key: str | None, seconds: float) -> bool:
        slot = downloader.slots.get(key) if key is not None else None
        if slot is None or seconds <= 0:
            return False
        until = time.monotonic() + seconds
        if self._until.get(key, 0.0) >= until:  # a longer pause is already running
            return False
        self._until[key] = until
        if slot.latercall is not None:
            slot.latercall.cancel()
        slot.latercall = call_later(seconds, downloader._latercall, slot)  # private, Scrapy pinned
        return True


class CrawlDelays:
    """robots.txt's Crawl-delay (capped by DRSEARCH_CRAWL_DELAY_MAX) as the least delay between requests of a
    download slot: the largest of its hosts' values. Applied whenever a request reaches the downloader (a slot
    may be new, or recreated after Scrapy collected an idle one) and after each response, because
    AutoThrottle lowers a slot's delay there. Jitter is narrowed so that no delay falls below it."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.cap = crawler.settings.getfloat("DRSEARCH_CRAWL_DELAY_MAX", defaults.DRSEARCH_CRAWL_DELAY_MAX)
        self.floors: dict[str, float] = {}
        crawler.signals.connect(self._apply, signal=signals.request_reached_downloader)
        # Extensions (AutoThrottle) connect before the downloader's middlewares are built, which is when this
        # runs, so on response_downloaded this handler comes after AutoThrottle's adjustment.
        crawler.signals.connect(self._apply, signal=signals.response_downloaded)

    def set(self, key: str, seconds: float) -> None:
        floor = min(float(seconds), self.cap)
        if floor > self.floors.get(key, 0.0):
            self.floors[key] = floor
            logger.info("Crawl-delay of %s: %.1fs", key, floor)

    def _apply(self, request: Request, **_: Any) -> None:
        key = request.meta.get(DOWNLOAD_SLOT)
        floor = self.floors.get(key) if key is not None else None
        slot = self.crawler.engine.downloader.slots.get(key) if floor else None
        if slot is None or floor is None:
            return
        slot.delay = max(slot.delay, floor)
        slot.jitter = max(0.0, min(slot.jitter, 1.0 - floor / slot.delay))


class PoliteRetryMiddleware(RetryMiddleware):
    """Scrapy's retries plus exponential backoff (5xx, timeouts); a 429 pauses its domain's slot for
    Retry-After seconds (capped) and is retried after the pause."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        # the project's defaults also where a caller's settings lack them (crawler/settings.py)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", defaults.RETRY_BACKOFF_BASE)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", defaults.RETRY_BACKOFF_MAX)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", defaults.RETRY_AFTER_MAX)
        self.retry_after_default = settings.getfloat("RETRY_AFTER_DEFAULT", defaults.RETRY_AFTER_DEFAULT)
        self.pauses = SlotPauses()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PoliteRetryMiddleware:
        mw = super().from_crawler(crawler)
        # response_downloaded fires before the downloader frees the slot for its next request; by the time
        # process_response runs, another request of the domain may already be on its way.
        crawler.signals.connect(mw._pause_on_429, signal=signals.response_downloaded)
        return mw

    def _pause_on_429(self, response: Response, request: Request) -> None:
        if response.status != 429:
            return
        wait = retry_after_seconds(response.headers.get(b"Retry-After"), self.retry_after_default, self.retry_after_max)
        if self.pauses.pause(self.crawler.engine.downloader, request.meta.get(DOWNLOAD_SLOT), wait):
            logger.info("429 on %s: pausing %s for %.1fs (Retry-After)", request.url, request.meta.get(DOWNLOAD_SLOT), wait)

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _backoff(self, request: Request) -> float:
        n = int(request.meta.get("retry_times", 1))
        return min(self.backoff_max, self.backoff_base * (2 ** max(0, n - 1)))

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False):
            return response
        if response.status == 429:  # the slot is paused already; the retry waits in its queue
            return self._retry(request, "429 Too Many Requests") or response
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await self._sleep(self._backoff(result))
        return result

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:  # type: ignore[override]
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await self._sleep(self._backoff(result))
        return result
