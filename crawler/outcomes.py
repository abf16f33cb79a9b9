"""Settling a page request's outcome: count the reason for the report and record the page as done, so that
`--resume` does not ask for it again. Shared by the middlewares, the spider's errback and its signals.

A request is *settled* once its reason is counted (meta key SETTLED); later handlers leave it alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import Request

from crawler.urls import canonicalize_url

if TYPE_CHECKING:
    from crawler.state import CrawlState

logger = logging.getLogger(__name__)

PAGE = "page"
SETTLED = "dr_settled"
SAME_PAGE = "dr_same_page"  # the URL a redirect into its own page was let through for


def is_page(request: Request) -> bool:
    return request.meta.get("dr_kind") == PAGE


def request_urls(request: Request) -> list[str]:
    """The page the request was made for (first), the URL it ended at and every redirect hop between."""
    urls = [request.meta.get("dr_url", canonicalize_url(request.url)), canonicalize_url(request.url)]
    return list(dict.fromkeys(urls + [canonicalize_url(u) for u in request.meta.get("redirect_urls", [])]))


def settle(state: CrawlState, request: Request, reason: str, detail: str = "") -> None:
    """Count `reason` once for this request and, for a page, record it as done (with its reason)."""
    if request.meta.get(SETTLED):
        return
    request.meta[SETTLED] = reason
    if is_page(request):
        state.settle_page(reason, detail or request.url, request_urls(request))
    else:
        state.skip(reason, detail or request.url)
    logger.info("%s: %s", reason, request.url)


def follow_same_page(request: Request) -> bool:
    """Whether a redirect into a page already asked for is that page's own next fetch, followed once: a hop
    to another URL of the same identity not fetched yet in its chain (`/p` -> `/p?utm_source=x`). Anything
    else into a known page is a loop or a duplicate (a meta refresh to the very URL never gets here:
    `SelfRefreshMiddleware` keeps that page as it is)."""
    if request.meta.get(SAME_PAGE) == request.url:
        return True
    chain = request.meta.get("redirect_urls") or []
    if not chain or request.url in chain or canonicalize_url(chain[-1]) != canonicalize_url(request.url):
        return False
    request.meta[SAME_PAGE] = request.url
    return True


def settle_redirect_to_known(state: CrawlState, request: Request) -> None:
    """A redirect to a page this crawl already asked for: a loop when the target is in its own chain,
    else a duplicate of that page. Only the chain is marked done; the target settles on its own."""
    if request.meta.get(SETTLED):
        return
    target = canonicalize_url(request.url)
    chain = [canonicalize_url(u) for u in request.meta.get("redirect_urls", [])]
    reason = "redirect_loop" if target in chain else "duplicate"
    request.meta[SETTLED] = reason
    urls = list(dict.fromkeys([request.meta.get("dr_url", target), *chain]))
    state.settle_page(reason, chain[0] if chain else target, urls)


def late_failure_reason(exc: BaseException) -> str:
    """Reason for an exception raised from a downloader middleware's process_response, which Scrapy hands
    to the errback only (no process_exception): the redirect cap or the decompressed-size cap (Scrapy
    2.19's messages are the only distinguishing mark), or a redirect whose Location no request can be made
    for (a ValueError building it: a port out of range, say)."""
    if isinstance(exc, ValueError):
        return "redirect_bad_url"
    text = str(exc).lower()
    if "max redirections" in text:
        return "redirect_limit"
    if "download_maxsize" in text or "decompress" in text:
        return "too_large"
    return "error"
