"""Live fetch of one page that is not in the index, with the crawler's safety checks and extraction.

Every hop (the URL and each redirect target) must be http(s), must be on an allowed host (the
authority list, unless `fetch_any_host`) and must be allowed by its host's robots.txt; every
connection goes only to an address checked as it connects (`service.fetch_connect`: never a private,
loopback or link-local one; loopback only when the server allows it, for tests). Responses are
streamed and cut at `max_bytes`; the whole fetch has one deadline. HTML goes through the crawler's
extractor, PDF through its PDF path. Successes are cached per URL, robots.txt rules per origin, both
for `cache_ttl_s` and within a bound in bytes (`FetchLimits.cache_bytes`, `robots_cache_bytes`).

HTML extraction (trafilatura over libxml2) cannot be stopped once it runs, and it takes seconds on
large pages, on some more than their size would say: a paragraph of 8,000 distinct links (250 KB) took
4 s, 1.9 MB of short paragraphs 8.5 s. An HTML page over `IN_THREAD_BYTES` is therefore extracted in
a worker process (`pebble`), killed at the fetch's deadline; smaller pages in the extraction thread itself.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import cachetools
import httpx

from w3lib.encoding import http_content_type_encoding

from crawler.config import DEFAULT_USER_AGENT, product_token
from crawler.extract import HTML_TYPES, PDF_TYPES, SNIFFED_TYPES, extract_html, extract_pdf, media_type, page_kind
from crawler.urls import AddressRefused, canonicalize_url, connect_addresses, is_localhost_name, literal_ip, system_resolve
from indexer.domains import host_of
from indexer.errors import echo
from service.fetch_connect import BlockedAddress, checked_transport

ROBOTS_MAX_BYTES = 512 * 1024
# Parsed robots.txt rules (Protego) take ~16-21x the file's bytes: a 43 KB file's ~680 KB. A cached
# entry is weighed at this multiple of its file (plus ENTRY_BYTES), so that the bound counts the rules.
ROBOTS_WEIGHT = 24
ENTRY_BYTES = 1024  # what an entry costs besides its text or rules: its key, the cache's links, the objects
IN_THREAD_BYTES = 256 * 1024  # larger HTML is extracted in a worker process killed at the deadline
STOPPED = "the server stopped before the page's text was extracted"
WORKER_GRACE_S = 2.0  # past its deadline, the most a page waits for a worker's answer (one killed, or none free)


class FetchFailure(Exception):
    """One item's outcome other than success: a stable `code` and a one-line message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def __reduce__(self):  # raised in an extraction process, it crosses back whole
        return FetchFailure, (self.code, self.message)


@dataclass(frozen=True)
class LivePage:
    url: str  # after redirects
    title: str
    text: str
    published: str | None
    language: str | None
    content_type: str  # "html" | "pdf"


@dataclass(frozen=True)
class FetchLimits:
    any_host: bool = False
    allow_loopback: bool = False
    extra_hosts: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    cache_ttl_s: float = 600.0
    cache_bytes: int = 64 << 20  # fetched pages' text (an entry at most half of it)
    robots_cache_bytes: int = 16 << 20  # robots.txt rules, weighed at ROBOTS_WEIGHT x their file
    user_agent: str = DEFAULT_USER_AGENT
    extract_threads: int = 2


class LiveFetcher:
    """Fetches pages for `POST /v1/fetch`; one per server (holds an HTTP client and the caches)."""

    def __init__(self, limits: FetchLimits, resolve: Callable[[str], list[str]] = system_resolve):
        self.limits = limits
        self.resolve = resolve
        self._agent = product_token(limits.user_agent) or "*"
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, headers={"User-Agent": limits.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(limits.timeout_s), transport=checked_transport(resolve, allow_loopback=limits.allow_loopback),
        )  # fmt: skip
        # Least recently used out first, and what is past its time goes at the next insert: an origin's
        # rules were kept for the process's life (~0.7 MB for a large site's robots.txt, per distinct origin
        # ever fetched), pages up to 1,024 of any size (5 MB each) after their time.
        self._pages = _cache(limits.cache_bytes, limits.cache_ttl_s, _page_bytes)
        self._robots = _cache(limits.robots_cache_bytes, limits.cache_ttl_s, lambda entry: entry[1])
        # Extraction is CPU work of seconds for a large page: its own threads bound how many cores fetches
        # take from searches, and a fetch whose deadline passes while it waits for one is never extracted.
        self._extractors = ThreadPoolExecutor(limits.extract_threads, "drsearch-fetch-extract")
        self._processes: Any = None  # pebble.ProcessPool for large HTML, started at its first page
        self._processes_lock = threading.Lock()
        # Pages waiting for a worker process. A stopped pool never answers a page that no worker had taken,
        # and Python's exit joins the extraction threads: close() cancels them so that no thread waits for good.
        self._in_processes: set[Any] = set()
        self._closed = False

    async def close(self) -> None:
        await self._client.aclose()
        self._extractors.shutdown(wait=False, cancel_futures=True)
        with self._processes_lock:
            self._closed = True
            pool, waiting = self._processes, list(self._in_processes)
        for future in waiting:
            future.cancel()
        if pool is not None:
            pool.stop()  # kills a page still extracting
            # A stopped pebble pool's join takes no timeout; a daemon thread keeps a stuck one from holding exit.
            joined = threading.Thread(target=pool.join, name="drsearch-fetch-pool-join", daemon=True)
            joined.start()
            await asyncio.to_thread(joined.join, 10)

    def _extract_within(self, url: str, kind: str | None, charset: str | None, body: bytes, deadline: float) -> LivePage:
        """`_extract`, for large HTML in a worker process killed at `deadline` (in an extraction thread,
        which waits for it: the threads still bound how many pages are extracted at once)."""
        if kind != "html" or len(body) <= IN_THREAD_BYTES:
            return _extract(url, kind, charset, body, deadline)
        future = self._schedule(_extract, (url, kind, charset, body, deadline), timeout=max(0.0, deadline - time.monotonic()))
        try:
            # The pool's timeout runs from when a worker takes the page; this one bounds the wait for a worker too.
            return future.result(timeout=max(0.0, deadline - time.monotonic()) + WORKER_GRACE_S)
        except FutureTimeout:
            future.cancel()
            raise FetchFailure("timeout", f"no complete answer within {self.limits.timeout_s:g} s "
                               "(the page's text extraction was stopped)") from None  # fmt: skip
        except CancelledError:
            raise FetchFailure("fetch_failed", STOPPED) from None
        except FetchFailure:
            raise
        except Exception as exc:  # the worker died (killed, out of memory): this page only
            raise FetchFailure("fetch_failed", f"the page's text extraction failed: {echo(str(exc) or type(exc).__name__)}") from None
        finally:
            with self._processes_lock:
                self._in_processes.discard(future)

    def _schedule(self, function: Callable[..., LivePage], args: tuple, timeout: float) -> Any:
        """`function(*args)` in a worker process, killed after `timeout` s of work: a pebble future."""
        from pebble import ProcessPool

        with self._processes_lock:
            if self._closed:
                raise FetchFailure("fetch_failed", STOPPED)
            if self._processes is None:
                # spawn: a fork of a server holding the JVM's and other threads could inherit a held lock.
                self._processes = ProcessPool(self.limits.extract_threads, context=multiprocessing.get_context("spawn"))
            future = self._processes.schedule(function, args, timeout=timeout)
            self._in_processes.add(future)
            return future

    async def fetch(self, url: str, allowed_host: Callable[[str], bool]) -> tuple[LivePage, bool]:
        """(page, from_cache) or FetchFailure. `allowed_host` says whether a host is on the authority list."""
        try:
            key = canonicalize_url(url)
        except ValueError as exc:  # callers pass a checked URL (FetchItem); this keeps one bad item an item error
            raise FetchFailure("fetch_failed", f"malformed URL {echo(url)}: {echo(str(exc))}") from None
        hit = self._pages.get(key)
        if hit is not None:
            return hit, True
        try:
            deadline = time.monotonic() + self.limits.timeout_s
            page = await asyncio.wait_for(self._fetch(url, allowed_host, deadline), self.limits.timeout_s)
        except BlockedAddress as exc:
            raise FetchFailure("host_not_allowed", str(exc)) from None
        except (asyncio.TimeoutError, httpx.TimeoutException):
            raise FetchFailure("timeout", f"no complete answer within {self.limits.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchFailure("fetch_failed", f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        _put(self._pages, key, page)
        return page, False

    async def _fetch(self, url: str, allowed_host: Callable[[str], bool], deadline: float) -> LivePage:
        for _ in range(self.limits.max_redirects + 1):
            await self._check_target(url, allowed_host)
            try:
                await self._check_robots(url)
                async with self._client.stream("GET", url) as resp:
                    if resp.is_redirect:
                        url = urljoin(url, resp.headers.get("location", ""))
                        continue
                    if resp.status_code >= 400:
                        raise FetchFailure("fetch_failed", f"HTTP {resp.status_code} from {echo(url)}")
                    header = resp.headers.get("content-type") or ""
                    mime = media_type(header)
                    if mime not in HTML_TYPES + PDF_TYPES + SNIFFED_TYPES:  # refused before its body is read
                        raise FetchFailure("not_html_or_pdf", f"content type {echo(header)} is neither HTML nor PDF")
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
                        raise FetchFailure("too_large", f"{declared} bytes, more than the limit of {self.limits.max_bytes}")
                    body = await _read_capped(resp, self.limits.max_bytes)
                    if body is None:
                        raise FetchFailure("too_large", f"more than the limit of {self.limits.max_bytes} bytes")
            except (ValueError, httpx.InvalidURL) as exc:
                # A redirect's Location no request can go to (a broken IPv6 literal or IDNA label, a
                # scheme httpx refuses): httpx reads it as the request is built, robots.txt's first.
                raise FetchFailure("fetch_failed", f"unusable URL {echo(url)}: {echo(str(exc))}") from None
            # A thread cannot be stopped at the timeout: a PDF reads no page past the deadline, large HTML
            # is extracted in a process that is (`_extract_within`).
            return await asyncio.get_running_loop().run_in_executor(
                self._extractors, self._extract_within, url, page_kind(mime, body), http_content_type_encoding(header), body,
                deadline,
            )  # fmt: skip
        raise FetchFailure("fetch_failed", f"more than {self.limits.max_redirects} redirects")

    async def _check_target(self, url: str, allowed_host: Callable[[str], bool]) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise FetchFailure("fetch_failed", f"not an http(s) URL: {echo(url)}")
        try:
            parts.port  # noqa: B018 - reading it checks it: a port past 65535 would fail only at connect
        except ValueError as exc:
            raise FetchFailure("fetch_failed", f"{echo(str(exc))}: {echo(url)}") from None
        if literal_ip(host) is not None or is_localhost_name(host):  # refused early, with no lookup; names at connect
            try:
                connect_addresses(host, self.resolve, allow_loopback=self.limits.allow_loopback)
            except AddressRefused as exc:
                raise FetchFailure("host_not_allowed", str(exc) if literal_ip(host) else f"{echo(host)}: {exc}") from None
        listed = host in self.limits.extra_hosts or (not host.isascii() and host_of(host) in self.limits.extra_hosts)
        if not (self.limits.any_host or listed or allowed_host(host)):
            raise FetchFailure("host_not_allowed",
                               f"{echo(host)} is not on the authority list (the server allows listed hosts only)")  # fmt: skip

    async def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        cached = self._robots.get(origin)
        if cached is None:
            parser, size = await self._robots_parser(origin)
            cached = (parser, ROBOTS_WEIGHT * size + ENTRY_BYTES)
            _put(self._robots, origin, cached)
        parser = cached[0]
        if parser is False:
            raise FetchFailure("blocked_by_robots",
                               f"{echo(origin + '/robots.txt')} could not be read (server error): not fetching")  # fmt: skip
        if parser is not None and not parser.can_fetch(url, self._agent):  # type: ignore[attr-defined]
            raise FetchFailure("blocked_by_robots", f"{echo(origin + '/robots.txt')} disallows {echo(parts.path or '/')}")

    async def _robots_parser(self, origin: str) -> tuple[object | None, int]:
        """(A Protego parser, the bytes it was parsed from); None = no rules (missing robots.txt); False =
        server error (fetch nothing)."""
        from protego import Protego

        async with self._client.stream("GET", origin + "/robots.txt") as resp:
            if resp.status_code >= 500:
                return False, 0
            if resp.status_code != 200:  # 4xx or a redirect: no usable rules
                return None, 0
            body = await _read_capped(resp, ROBOTS_MAX_BYTES)
        return Protego.parse((body or b"").decode("utf-8", "replace")), len(body or b"")


def _cache(max_bytes: int, ttl_s: float, weigh: Callable[[object], int]) -> cachetools.TTLCache:
    return cachetools.TTLCache(maxsize=max(1, max_bytes), ttl=ttl_s, timer=time.monotonic, getsizeof=weigh)


def _put(cache: cachetools.TTLCache, key: str, value: object) -> None:
    """`cache[key] = value` (dropping what has expired, then the least recently used past the bound), unless
    the value alone would take more than half the bound."""
    if cache.getsizeof(value) <= cache.maxsize // 2:
        cache[key] = value


def _page_bytes(page: LivePage) -> int:
    return sys.getsizeof(page.text) + sys.getsizeof(page.title) + sys.getsizeof(page.url) + ENTRY_BYTES


async def _read_capped(resp: httpx.Response, limit: int) -> bytes | None:
    """The decoded body, or None past `limit` bytes, counted after decompression: httpx's own decoders
    inflate each network read whole, so a few KB of gzip or brotli could become GBs before any check.
    The client asks for gzip and deflate only (`ACCEPT_ENCODING`); any other coding is refused."""
    decoder = _decoder(resp.headers.get("content-encoding", ""))
    chunks, size = [], 0
    async for raw in resp.aiter_raw():
        if decoder is None:
            chunk = raw
        else:
            try:
                chunk = decoder.decompress(raw, limit - size + 1)  # output capped: the rest waits in unconsumed_tail
            except zlib.error as exc:
                raise FetchFailure("fetch_failed", f"the compressed body is corrupt ({exc})") from None
            if decoder.unconsumed_tail:
                return None
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    if decoder is not None:
        chunks.append(decoder.flush())  # at most what a stopped-short stream left buffered
        size += len(chunks[-1])
    return b"".join(chunks) if size <= limit else None


ACCEPT_ENCODING = "gzip, deflate"


def _decoder(content_encoding: str) -> "zlib._Decompress | None":
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, whichever the body has
    raise FetchFailure("fetch_failed", f"content encoding {echo(coding)} is not supported (the fetcher asks for {ACCEPT_ENCODING})")


def _extract(url: str, kind: str | None, charset: str | None, body: bytes, deadline: float) -> LivePage:
    """The page as the crawler extracts it: `kind` and `charset` as the crawler reads them from the
    Content-Type header and the body (`crawler.extract.page_kind`)."""
    if kind is None:
        raise FetchFailure("not_html_or_pdf", "the body is neither HTML nor PDF")
    ex = extract_pdf(body, deadline=deadline) if kind == "pdf" else extract_html(body, url=url, charset=charset)
    if not ex.text.strip():
        raise FetchFailure("fetch_failed", f"no main text could be extracted from the {kind.upper()}")
    return LivePage(url=url, title=ex.title, text=ex.text, published=ex.published, language=ex.language, content_type=kind)
