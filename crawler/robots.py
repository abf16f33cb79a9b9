"""robots.txt: Scrapy's middleware, fixed and completed.

- Rules are kept per scheme and host (Scrapy keeps them per host).
- Every request waiting for a robots.txt gets its rules. In Scrapy 2.19 the requests that arrive while a
  host's robots.txt is still being fetched all await one shared Deferred as an asyncio Future; turning a
  Deferred into a Future consumes its result, so only the first of them sees the parser and the others get
  None, which means "allow everything". A resumed crawl (many pending pages per host at once) or several
  seeds on one host then fetch disallowed pages.
- A robots.txt that answers 5xx or 429 (after retries) or cannot be fetched at all (timeout, connection
  error) disallows the whole host for this run (RFC 9309 2.3.1.4; a 429 asks the crawler to slow down,
  which "no robots.txt, crawl everything" would not); Scrapy parses the error page or allows all.
  Those pages count as `robots_unreachable` and are not recorded as done, so `--resume` asks again.
  A 4xx, or a robots.txt our own rules refuse (offsite redirect, redirect cap), still allows all.
- Its `Crawl-delay` (for our product token) becomes the least delay of the host's download slot
  (politeness.CrawlDelays, capped by DRSEARCH_CRAWL_DELAY_MAX).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.outcomes import SETTLED
from crawler.politeness import CrawlDelays
from crawler.urls import url_domain

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.robotstxt import RobotParser

logger = logging.getLogger(__name__)

ROBOTS_UNREACHABLE = "robots_unreachable"


class _Unreachable:
    """The parser slot's value for a host whose robots.txt could not be fetched: disallow everything."""


UNREACHABLE = _Unreachable()


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.crawl_delays = CrawlDelays(crawler)

    async def robot_parser(self, request: Request) -> RobotParser | None:
        """Scrapy's, keyed by scheme and host (RFC 9309 2.3: rules apply to one scheme, host and port; Scrapy
        keys by host only, so an https robots.txt that fails would also rule the http pages), and every
        request waiting for a robots.txt still in flight gets its rules."""
        url = urlparse_cached(request)
        key = f"{url.scheme}://{url.netloc}"
        pending = self._parsers.get(key)  # private, Scrapy pinned
        if isinstance(pending, Deferred):
            mine: Deferred[RobotParser | None] = Deferred()

            def relay(parser: RobotParser | None) -> RobotParser | None:
                mine.callback(parser)
                return parser  # keep the result for the next waiter

            pending.addCallback(relay)
            return await maybe_deferred_to_future(mine)
        if key not in self._parsers:
            self._parsers[key] = Deferred()
            robots_request = Request(
                f"{key}/robots.txt", priority=self.DOWNLOAD_PRIORITY, meta={"dont_obey_robotstxt": True},
                callback=NO_CALLBACK,
            )  # fmt: skip
            try:
                response = await self.crawler.engine.download_async(robots_request)
                await self._parse_robots(response, key, request)
            except Exception as exc:  # noqa: BLE001  (any failure to fetch it is judged by _robots_error)
                logger.info("robots.txt of %s: %s", key, exc)
                self._robots_error(exc, key)
            self._stats.inc_value("robotstxt/request_count")
        return self._parsers[key]  # type: ignore[return-value]

    def process_request_2(self, rp: RobotParser | None, request: Request) -> None:
        if rp is UNREACHABLE:
            self._stats.inc_value("robotstxt/forbidden_unreachable")
            request.meta[SETTLED] = ROBOTS_UNREACHABLE  # counted here, left pending for --resume
            self.crawler.spider.crawl_state.skip(ROBOTS_UNREACHABLE, request.url)  # type: ignore[union-attr]
            raise IgnoreRequest(f"robots.txt unreachable: {request.url}")
        super().process_request_2(rp, request)

    async def _parse_robots(self, response: Response, key: str, request: Request) -> None:
        if response.status >= 500 or response.status == 429:
            self._stats.inc_value(f"robotstxt/response_status_count/{response.status}")
            logger.info("robots.txt of %s answered %s: the host is disallowed", key, response.status)
            self._settle(key, UNREACHABLE)
            return
        await super()._parse_robots(response, key, request)
        rp = self._parsers[key]
        delay = rp.crawl_delay(self._robotstxt_useragent or self._default_useragent) if rp is not None else None
        if delay:
            self.crawl_delays.set(url_domain(request.url), delay)

    def _robots_error(self, exc: Exception, key: str) -> None:
        if isinstance(exc, IgnoreRequest):
            super()._robots_error(exc, key)
            return
        self._stats.inc_value(f"robotstxt/exception_count/{type(exc)}")
        self._settle(key, UNREACHABLE)

    def _settle(self, key: str, parser: _Unreachable) -> None:
        waiting = self._parsers[key]
        self._parsers[key] = parser  # type: ignore[assignment]
        if isinstance(waiting, Deferred):
            waiting.callback(parser)
