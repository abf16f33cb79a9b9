"""The crawler's one Scrapy settings module. `build_settings` layers a CrawlConfig on top of it."""

from __future__ import annotations

import json
import logging
import math
from typing import Any, NoReturn

from indexer.errors import ConfigError

from crawler import config as crawl_config  # not a name in capitals: every such name here is a setting
from crawler.config import CrawlConfig, product_token

BOT_NAME = "drsearch-crawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# Politeness
USER_AGENT = crawl_config.DEFAULT_USER_AGENT
ROBOTSTXT_USER_AGENT = product_token(crawl_config.DEFAULT_USER_AGENT)  # robots.txt groups match this token
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 2  # per registrable domain: DomainSlotMiddleware keys the slots
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # +-50% around DOWNLOAD_DELAY (Scrapy 2.19; RANDOMIZE_DOWNLOAD_DELAY is deprecated)
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no listening control port
LOG_INSTALL_ROOT_HANDLER = True

# Retries: 5xx and timeouts with exponential backoff; 429 honours Retry-After (capped)
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
RETRY_BACKOFF_BASE = 2.0
RETRY_BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 60.0
RETRY_AFTER_DEFAULT = 10.0
DRSEARCH_CRAWL_DELAY_MAX = 60.0  # robots.txt Crawl-delay is honoured up to this many seconds

# Safety and size limits
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
SITEMAP_MAX_DECOMPRESSED_SIZE = 50 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
METAREFRESH_ENABLED = True  # meta-refresh targets pass the same safety middleware
DEPTH_LIMIT = 0  # depth is counted by the crawler itself (sitemap entries count as depth 1)
DNS_TIMEOUT = 10
TWISTED_DNS_RESOLVER = "crawler.pinning.PinnedResolver"  # connections use the address the safety check accepted
DRSEARCH_RESOLVE = "crawler.urls.system_resolve"  # host -> addresses (tests pass a recording resolver)
DRSEARCH_ALLOW_DNS = False  # with a host map: unmapped hosts are refused unless --allow-dns
DRSEARCH_MAX_LINKS_PER_PAGE = 1000

# Extraction runs in its own threads (trafilatura took 13 s for a 4 MB page: on the reactor thread the
# whole crawl stopped meanwhile). Responses of up to SCRAPER_SLOT_MAX_ACTIVE_SIZE bytes in all may wait
# for it before new downloads pause: room for two pages of DOWNLOAD_MAXSIZE (Scrapy's default, 5 MB, paused
# them for any page over 5 MB).
DRSEARCH_EXTRACT_THREADS = 2
DRSEARCH_EXTRACT_LARGE_BYTES = 4 * 1024 * 1024  # larger pages are extracted one at a time (memory)
# Page downloads wait while this many pages wait for extraction or are in it (a small page counts as 1 KiB
# against SCRAPER_SLOT_MAX_ACTIVE_SIZE but keeps ~60-140 KB while it waits: 7,700 of them took 470 MB).
DRSEARCH_EXTRACT_BACKLOG = 64
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 48 * 1024 * 1024
DRSEARCH_MIN_FREE_BYTES = 100 * 1024 * 1024  # the crawl stops cleanly when its --out file system has less free
DRSEARCH_PDF_READ_SECONDS = 60.0  # a PDF's pages are read until then; what was read is kept

# Broad-crawl friendly scheduling (breadth first)
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.DownloaderAwarePriorityQueue"
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"

LOG_LEVEL = "WARNING"
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"

DOWNLOADER_MIDDLEWARES = {
    "crawler.politeness.DomainSlotMiddleware": 40,
    "crawler.middlewares.SafetyMiddleware": 50,  # before robots.txt: no request leaves for a refused host
    "crawler.middlewares.OutcomeMiddleware": 60,  # sees final outcomes (after retries/redirects)
    "crawler.middlewares.ExtractBacklogMiddleware": 65,  # page downloads wait while extraction is behind
    "crawler.middlewares.FrontierDownloaderMiddleware": 70,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.robots.RobotsTxtMiddleware": 100,  # Scrapy's, every waiter gets the rules
    "crawler.middlewares.PageLimitMiddleware": 110,  # after robots.txt: forbidden pages do not count
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,  # SafetyMiddleware does it
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.politeness.PoliteRetryMiddleware": 550,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.middlewares.SelfRefreshMiddleware": 580,  # a page refreshing to itself is stored, not refetched
    "crawler.middlewares.HostMapMiddleware": 745,  # just before HttpProxyMiddleware (750)
}
SPIDER_MIDDLEWARES = {
    "crawler.middlewares.FrontierSpiderMiddleware": 100,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
}
ITEM_PIPELINES = {
    "crawler.pipelines.ValidatePipeline": 100,
    "crawler.pipelines.UrlDedupePipeline": 200,
    "crawler.pipelines.ExtractPipeline": 300,
    "crawler.pipelines.ContentDedupePipeline": 400,
    "crawler.pipelines.StorePipeline": 500,
}
EXTENSIONS = {
    "crawler.extensions.CrawlReport": 100,
    "scrapy.extensions.logstats.LogStats": None,
    "scrapy.extensions.spiderstate.SpiderState": None,  # spider.state is unused: the crawl state is CrawlState
}

DRSEARCH_PROGRESS_INTERVAL = 10.0


# Settings derived from the crawl's options: --set may not change them (the report records the options).
_MANAGED_SETTINGS = {
    "USER_AGENT": "--user-agent",
    "ROBOTSTXT_USER_AGENT": "--user-agent",
    "JOBDIR": "--out",
    "DRSEARCH_HOST_MAP": "--host-map",
    "DRSEARCH_ALLOW_PRIVATE": "--allow-private",
    "DRSEARCH_ALLOW_DNS": "--allow-dns",
    "DRSEARCH_MAX_PAGES_PER_DOMAIN": "--max-pages-per-domain",
    "DRSEARCH_MAX_DEPTH": "--max-depth",
    "DRSEARCH_QUIET": "--quiet",
}


# Scrapy 2.19 counts a request against its slot's concurrency only once its download task has started, so
# with no delay every request queued in a slot leaves at once. Any delay makes it send one at a time.
_MIN_DOWNLOAD_DELAY = 0.001


# The crawler's components: its safety checks (private addresses, robots.txt, page limits) and its
# output are built of them, so --set may not replace or reorder them.
_COMPONENT_SETTINGS = {
    f"{name}{suffix}" for name in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "ITEM_PIPELINES", "EXTENSIONS",
                                   "DOWNLOAD_HANDLERS") for suffix in ("", "_BASE")
} | {"SCHEDULER", "DOWNLOADER", "DOWNLOADER_CLIENTCONTEXTFACTORY", "DNS_RESOLVER", "TWISTED_DNS_RESOLVER", "TWISTED_REACTOR",
     "SPIDER_LOADER_CLASS"}


def check_override(key: str) -> None:
    """Refuse a --set KEY that one of the crawl's options owns, that wires the crawler's components, or
    that is no setting at all (a misspelt name would be ignored)."""
    import scrapy.settings.default_settings as scrapy_defaults

    flag = _MANAGED_SETTINGS.get(key)
    if flag is not None:
        raise ConfigError(f"{key} is set by {flag}, not by --set", where="--set")
    if key in _COMPONENT_SETTINGS:
        raise ConfigError(f"{key} wires the crawler's safety checks and output together; it cannot be changed by --set",
                          where="--set")  # fmt: skip
    if key not in globals() and not hasattr(scrapy_defaults, key):
        raise ConfigError(f"{key} is not a Scrapy or drsearch setting", where="--set")


# --set ranges. Every other number is >= 0 unless it is a priority; these need more.
_AT_LEAST_ONE = {"CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "DRSEARCH_MAX_LINKS_PER_PAGE",
                 "DRSEARCH_EXTRACT_THREADS", "DRSEARCH_EXTRACT_BACKLOG"}  # fmt: skip
_ABOVE_ZERO = {"DOWNLOAD_TIMEOUT", "DNS_TIMEOUT", "AUTOTHROTTLE_MAX_DELAY", "AUTOTHROTTLE_TARGET_CONCURRENCY",
               "DRSEARCH_PROGRESS_INTERVAL", "DRSEARCH_PDF_READ_SECONDS"}  # fmt: skip
_WHOLE = _AT_LEAST_ONE | {"RETRY_TIMES", "REDIRECT_MAX_TIMES", "DEPTH_LIMIT", "DOWNLOAD_MAXSIZE", "DOWNLOAD_WARNSIZE",
                          "SITEMAP_MAX_DECOMPRESSED_SIZE", "CLOSESPIDER_PAGECOUNT", "CLOSESPIDER_ITEMCOUNT",
                          "DRSEARCH_EXTRACT_LARGE_BYTES", "DRSEARCH_MIN_FREE_BYTES"}  # fmt: skip
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _default(key: str) -> Any:
    """The value a setting has without --set: this module's, else Scrapy's (None for an unknown name)."""
    import scrapy.settings.default_settings as scrapy_defaults

    return globals()[key] if key in globals() else getattr(scrapy_defaults, key, None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(key: str, value: Any) -> None:
    """Refuse a --set value the crawl could not use, before anything starts: the wrong type for the
    setting (judged by its default), a number out of range, an unknown log level."""
    from scrapy.settings import BaseSettings

    default = _default(key)

    def refuse(what: str) -> NoReturn:
        raise ConfigError(f"{key} must be {what}, got {value!r}", where="--set")

    if key.endswith("LOG_LEVEL"):
        if not isinstance(value, str) or value not in logging.getLevelNamesMapping():
            refuse("one of " + ", ".join(_LOG_LEVELS))
    elif isinstance(default, bool):
        try:
            BaseSettings({key: value}).getbool(key)
        except ValueError:
            refuse("true or false")
    elif _is_number(default) or key in _WHOLE | _ABOVE_ZERO:
        if key in _WHOLE and not (isinstance(value, int) and not isinstance(value, bool)):
            refuse("a whole number")
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):  # comparisons with NaN are false
            refuse("a finite number")
        if key in _AT_LEAST_ONE and value < 1:
            refuse(">= 1")
        if key in _ABOVE_ZERO and value <= 0:
            refuse("> 0")
        if value < 0 and "PRIORITY" not in key:
            refuse(">= 0")
    elif isinstance(default, list):
        if not isinstance(value, list):
            refuse("a JSON list, e.g. " + json.dumps(default[:2]))
        if default and all(_is_number(v) for v in default) and not all(_is_number(v) for v in value):
            refuse("a JSON list of numbers")
    elif isinstance(default, dict):
        if not isinstance(value, dict):
            refuse("a JSON object")
    elif isinstance(default, str) and not isinstance(value, str):
        refuse("a string")


def build_settings(config: CrawlConfig) -> dict[str, Any]:
    """This module's settings + the crawl's options + explicit overrides (config.settings)."""

    import crawler.settings as module

    values = {k: getattr(module, k) for k in dir(module) if k.isupper() and not k.startswith("_")}
    values.update(
        {
            "USER_AGENT": config.user_agent,
            "ROBOTSTXT_USER_AGENT": product_token(config.user_agent),
            "JOBDIR": str(config.out_dir / "job"),
            "DRSEARCH_HOST_MAP": {h: list(t) for h, t in config.host_map.items()},
            "DRSEARCH_ALLOW_PRIVATE": config.allow_private,
            "DRSEARCH_ALLOW_DNS": config.allow_dns,
            "DRSEARCH_MAX_PAGES_PER_DOMAIN": config.max_pages_per_domain,
            "DRSEARCH_MAX_DEPTH": config.max_depth,
            "DRSEARCH_QUIET": config.quiet,
        }
    )
    values.update(config.settings)
    values["DOWNLOAD_DELAY"] = max(float(values["DOWNLOAD_DELAY"]), _MIN_DOWNLOAD_DELAY)
    return values
