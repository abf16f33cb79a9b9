"""robots.txt: Scrapy's middleware, fixed so that every request waiting for a robots.txt gets its rules.

In Scrapy 2.19 the requests that arrive while a host's robots.txt is still being fetched all await one
shared Deferred as an asyncio Future; turning a Deferred into a Future consumes its result, so only the
first of them sees the parser and the others get None, which means "allow everything". A resumed crawl
(many pending pages per host at once) or several seeds on one host then fetch disallowed pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.robotstxt import RobotParser


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)  # private, Scrapy pinned
        if isinstance(pending, Deferred):
            mine: Deferred[RobotParser | None] = Deferred()

            def relay(parser: RobotParser | None) -> RobotParser | None:
                mine.callback(parser)
                return parser  # keep the result for the next waiter

            pending.addCallback(relay)
            return await maybe_deferred_to_future(mine)
        return await super().robot_parser(request)
