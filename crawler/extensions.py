"""Progress line on stderr while crawling, the run's network counters logged every COUNTERS_CHECKPOINT_S,
report.json and state flush when the spider closes."""

from __future__ import annotations

import errno
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from scrapy import signals
from twisted.internet import task

from crawler.state import COUNTERS_CHECKPOINT_S
from indexer.layout import atomic_write_bytes

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

ERROR_REASONS = ("timeout", "error", "http_status", "too_large")


class DiskFullLines(logging.Filter):
    """Scrapy's own writes on a full disk (its request queue, its signal handlers) are logged as one line,
    not a traceback: the crawl stops and says why in one line of its own."""
    # asyncio logs "Task exception was never retrieved" for a request its disk queue could not take.

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            record.msg, record.args, record.exc_info = f"{record.getMessage()}: {exc.strerror}", (), None
        return True


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_SCRAPY_LOGGERS = ("scrapy.core.engine", "scrapy.core.scraper", "scrapy.utils.signal", "asyncio")
_DISK_FULL_LINES = DiskFullLines()  # one instance: adding it again (a later crawl in the process) is a no-op


class CrawlReport:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.quiet = crawler.settings.getbool("DRSEARCH_QUIET")
        self.interval = crawler.settings.getfloat("DRSEARCH_PROGRESS_INTERVAL", 10.0)
        self._loop: task.LoopingCall | None = None
        self._counters: task.LoopingCall | None = None  # made when the spider opens: it imports the reactor
        self._t0 = time.monotonic()
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlReport:
        return cls(crawler)

    def progress_line(self) -> str:
        state = self.crawler.spider.crawl_state  # type: ignore[union-attr]
        pages = sum(state.pages_per_domain.values())
        elapsed = max(1e-6, time.monotonic() - self._t0)
        errors = sum(state.skips.get(r, 0) for r in ERROR_REASONS)
        skipped = sum(state.skips.values()) - errors
        return (
            f"crawl {elapsed:6.0f}s  pages={pages} docs={state.writer.written + len(state.writer._buffer)} "
            f"skipped={skipped} errors={errors} rate={pages / elapsed:.2f} pages/s"
        )

    def _tick(self) -> None:
        print(self.progress_line(), file=sys.stderr, flush=True)

    def _stats(self) -> dict[str, Any]:
        return self.crawler.stats.get_stats() if self.crawler.stats else {}

    def _log_net(self) -> None:
        self.crawler.spider.crawl_state.log_net(self._stats())  # type: ignore[union-attr]

    def spider_opened(self, spider: Any) -> None:
        for name in _SCRAPY_LOGGERS:
            logging.getLogger(name).addFilter(_DISK_FULL_LINES)
        self._t0 = time.monotonic()
        if not self.quiet and self.interval > 0:
            self._loop = task.LoopingCall(self._tick)
            self._loop.start(self.interval, now=False)
        self._counters = task.LoopingCall(self._log_net)
        self._counters.start(COUNTERS_CHECKPOINT_S, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        for loop in (self._loop, self._counters):
            if loop is not None and loop.running:
                loop.stop()
        state = spider.crawl_state
        stats = self._stats()
        state.log_net(stats, final=True)
        state.close()
        path = state.out_dir / "report.json"
        try:
            report = state.report(stats, spider.config.as_dict(), reason)
            atomic_write_bytes(path, json.dumps(report, indent=1, ensure_ascii=False).encode("utf-8"))
        except OSError as exc:
            state.failed_write(exc)
        if not self.quiet and state.write_error is None:
            print(self.progress_line() + f"  [{reason}] report: {path}", file=sys.stderr, flush=True)
