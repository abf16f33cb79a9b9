"""Ordered item pipelines: validate -> dedupe (URL) -> extract -> dedupe (content) -> store.

Every drop is counted in the crawl state with its reason and recorded as done (the page will
not be refetched on resume); stored pages are recorded as done once their shard member is flushed.
Extraction runs in a pool of threads; every other stage, and all crawl state, stays on the reactor thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from crawler.extract import Extracted, extract_html, extract_pdf, page_kind
from crawler.items import PageItem
from crawler.state import content_hash, near_hash
from crawler.urls import doc_id_for

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.state import CrawlState

logger = logging.getLogger(__name__)

class _Stage:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return cls(crawler)

    @property
    def state(self) -> CrawlState:
        return self.crawler.spider.crawl_state  # type: ignore[union-attr]

    def drop(self, item: PageItem, reason: str, detail: str = "", duplicate: tuple[str, str, str] | None = None,
             *, for_text: bool = False) -> DropItem:  # fmt: skip
        """`duplicate`: (kept url, its content hash, the duplicate) for the report's groups; `for_text`: dropped
        for the kept url's text, which, when the page is its identity's own, is its identity's text too (see
        CrawlState.settle_page)."""
        # The URLs this fetch asked for are settled; a page its rel=canonical names is another page, done by
        # the record stored for it once that is flushed (marked done here, a kill before the flush lost it).
        # request_urls ends with the identity only when it is none of the URLs asked for (the page asked for
        # may redirect to one naming it rel=canonical: it is asked for, and done).
        urls = item.request_urls
        if urls[-1] == item.url != item.fetched_url:
            urls = urls[:-1]
        own_page = item.url in urls  # not a print version only naming its identity
        self.state.settle_page(reason, item.fetched_url, urls, duplicate, same_text=for_text and own_page)
        return DropItem(f"{reason}: {item.fetched_url} {detail}".strip())

    def drop_if_identity_stored(self, item: PageItem) -> None:
        """A page whose identity is stored, or whose identity's own page was dropped as a duplicate of another
        page's text (a print version naming it rel=canonical: the identity is kept as that page), is a duplicate."""
        kept_hash = self.state.stored.get(item.url)
        if kept_hash is not None:
            raise self.drop(item, "duplicate", f"(identity {item.url} already stored)",
                            (item.url, kept_hash, item.fetched_url))  # fmt: skip
        if (kept := self.state.identities_kept_as.get(item.url)) is not None:
            raise self.drop(item, "duplicate", f"(identity {item.url} a duplicate of {kept[0]})",
                            (*kept, item.fetched_url))  # fmt: skip


class ValidatePipeline(_Stage):
    """Only successful HTML and PDF responses with a body that their robots directives let us index go on."""

    def process_item(self, item: PageItem) -> PageItem:
        if item.status != 200:
            raise self.drop(item, "http_status", str(item.status))
        if item.noindex:
            raise self.drop(item, "noindex")
        if not item.body:
            raise self.drop(item, "empty")
        kind = page_kind(item.content_type, item.body)
        if kind is None:
            raise self.drop(item, "content_type", item.content_type)
        item.extra["kind"] = kind
        return item


class UrlDedupePipeline(_Stage):
    """A page whose identity URL (after rel=canonical) is already stored is a duplicate."""

    def process_item(self, item: PageItem) -> PageItem:
        self.drop_if_identity_stored(item)
        return item


class ExtractBacklog:
    """Pages handed to extraction and not finished with. Page downloads wait (ExtractBacklogMiddleware) while
    there are DRSEARCH_EXTRACT_BACKLOG of them: Scrapy pauses downloads only at SCRAPER_SLOT_MAX_ACTIVE_SIZE
    bytes of responses, counting a small page as 1 KiB, and each page waiting keeps its response, parsed tree
    and Scrapy's tasks for it (60-140 KB for a 3 KB page): downloads outpacing two extraction threads piled up
    7,700 pages and 470 MB, which a killed crawl also fetches again on --resume."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.count = 0
        self._waiters: list[asyncio.Future[None]] = []

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count < self.limit:
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def room(self) -> None:
        """Return once fewer than `limit` pages are in extraction (at once when they are)."""
        while self.count >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class ExtractPipeline(_Stage):
    """Main text, title, date and language (HTML: trafilatura; PDF: pypdf), in DRSEARCH_EXTRACT_THREADS
    threads: a page slow to extract holds one of them, not the reactor (downloads, their timeouts and the
    other pages go on). A PDF's pages are read for at most DRSEARCH_PDF_READ_SECONDS."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.pdf_read_s = crawler.settings.getfloat("DRSEARCH_PDF_READ_SECONDS")
        self.pool = ThreadPoolExecutor(crawler.settings.getint("DRSEARCH_EXTRACT_THREADS"), "drsearch-extract")
        self.large_bytes = crawler.settings.getint("DRSEARCH_EXTRACT_LARGE_BYTES")
        self.one_large_page = asyncio.Lock()
        self.last_of_identity: dict[str, asyncio.Future[None]] = {}

    async def process_item(self, item: PageItem) -> PageItem:
        # Pages of one identity (a page and another URL naming it rel=canonical) go on in the order they came,
        # as on one thread: the first is stored, whichever extracts faster.
        before, mine = self.last_of_identity.get(item.url), asyncio.get_running_loop().create_future()
        self.last_of_identity[item.url] = mine
        backlog: ExtractBacklog = self.crawler.spider.extract_backlog  # type: ignore[union-attr]
        backlog.enter()
        try:
            if before is not None:
                await before
                self.drop_if_identity_stored(item)
            large = len(item.body) > self.large_bytes  # one at a time: an 18 MB page took 2.3 GB to extract
            async with self.one_large_page if large else contextlib.nullcontext():
                ex, item.content_hash, item.near_hash = await asyncio.wrap_future(
                    self.pool.submit(self._extract, item.extra["kind"], item.body, item.url, item.charset)
                )
        finally:
            backlog.leave()
            mine.set_result(None)
            if self.last_of_identity.get(item.url) is mine:
                del self.last_of_identity[item.url]
        if not ex.text.strip():
            raise self.drop(item, "empty", "(no main text)")
        item.title, item.text, item.published, item.language = ex.title, ex.text, ex.published, ex.language
        item.body = b""  # not needed any more
        return item

    def _extract(self, kind: str, body: bytes, url: str, charset: str | None) -> tuple[Extracted, str, str]:
        if kind == "pdf":
            ex = extract_pdf(body, deadline=time.monotonic() + self.pdf_read_s)
        else:
            ex = extract_html(body, url, charset=charset)
        return ex, content_hash(ex.text), near_hash(ex.text)

    def close_spider(self) -> None:
        self.pool.shutdown()


class ContentDedupePipeline(_Stage):
    """Same text under another URL: exact (hash of the text) -> duplicate; equal after normalising case,
    punctuation and whitespace -> near_duplicate. Kept once; groups go to the report. The identity is
    checked again: another page of it may have been stored while this one was extracted."""

    def process_item(self, item: PageItem) -> PageItem:
        self.drop_if_identity_stored(item)
        kept = self.state.by_hash.get(item.content_hash)
        reason = "duplicate"
        if kept is None:
            kept = self.state.by_near.get(item.near_hash)
            reason = "near_duplicate"
        if kept is not None and kept != item.url:
            group = (kept, self.state.stored.get(kept, item.content_hash), item.url)
            # the identity's own page dropped: its other pages (print versions) are duplicates of `kept` too; a
            # page only naming it is not its text (the identity's own page, fetched later, is checked as usual)
            raise self.drop(item, reason, f"(same text as {kept})", group, for_text=True)
        return item


class StorePipeline(_Stage):
    """Write the document to the current shard; it counts as stored once flushed. The crawl stops while the
    --out file system still has DRSEARCH_MIN_FREE_BYTES free (its last shard, log and report then fit:
    a clean stop that --resume continues), and at a failed write of its output all the same."""

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.min_free = crawler.settings.getint("DRSEARCH_MIN_FREE_BYTES")
        self.stopping = False

    def process_item(self, item: PageItem) -> dict[str, Any]:
        if not self.stopping and self.min_free and (free := shutil.disk_usage(self.state.out_dir).free) < self.min_free:
            self.state.write_error = (f"{free / 2**20:.1f} MiB left free on the file system of --out, under "
                                      f"DRSEARCH_MIN_FREE_BYTES ({self.min_free / 2**20:.1f} MiB)")  # fmt: skip
        record = {
            "id": doc_id_for(item.url),
            "url": item.url,
            "domain": item.domain,
            "title": item.title,
            "text": item.text,
            "published": item.published,
            "fetched_at": item.fetched_at,
            "content_type": item.content_type,
            "status": item.status,
            "content_hash": item.content_hash,
            "language": item.language,
        }
        self.state.register_stored(item.url, item.content_hash, item.near_hash, item.domain)
        try:
            self.state.writer.add(record, item.request_urls)  # kept in its buffer when the write fails
        except OSError as exc:
            self.state.failed_write(exc)
        if self.state.write_error is not None and not self.stopping:
            self.stopping = True  # a full disk: every later page would be fetched for nothing
            asyncio.ensure_future(self.crawler.engine.close_spider_async(reason="disk_full"))
        return {"id": record["id"], "url": item.url}
