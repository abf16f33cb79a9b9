"""The crawler's one Scrapy settings module. `build_settings` layers a CrawlConfig on top of it."""

from __future__ import annotations

from typing import Any

from crawler.config import DEFAULT_USER_AGENT, CrawlConfig

BOT_NAME = "drsearch-crawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# Politeness
USER_AGENT = DEFAULT_USER_AGENT
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # +-50% around DOWNLOAD_DELAY
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

# Safety and size limits
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
SITEMAP_MAX_DECOMPRESSED_SIZE = 50 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
METAREFRESH_ENABLED = True  # meta-refresh targets pass the same safety middleware
DEPTH_LIMIT = 0  # depth is counted by the crawler itself (sitemap entries count as depth 1)
DNS_TIMEOUT = 10

# Broad-crawl friendly scheduling (breadth first)
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.DownloaderAwarePriorityQueue"
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"

LOG_LEVEL = "WARNING"
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.SafetyMiddleware": 50,  # before robots.txt: no request leaves for a refused host
    "crawler.middlewares.OutcomeMiddleware": 60,  # sees final outcomes (after retries/redirects)
    "crawler.middlewares.FrontierDownloaderMiddleware": 70,
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,  # SafetyMiddleware does it
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.PoliteRetryMiddleware": 550,
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
}

DRSEARCH_PROGRESS_INTERVAL = 10.0


def build_settings(config: CrawlConfig) -> dict[str, Any]:
    """This module's settings + the crawl's options + explicit overrides (config.settings)."""

    import crawler.settings as module

    values = {k: getattr(module, k) for k in dir(module) if k.isupper()}
    values.update(
        {
            "USER_AGENT": config.user_agent,
            "JOBDIR": str(config.out_dir / "job"),
            "DRSEARCH_HOST_MAP": {h: list(t) for h, t in config.host_map.items()},
            "DRSEARCH_ALLOW_PRIVATE": config.allow_private,
            "DRSEARCH_MAX_PAGES_PER_DOMAIN": config.max_pages_per_domain,
            "DRSEARCH_MAX_DEPTH": config.max_depth,
            "DRSEARCH_QUIET": config.quiet,
        }
    )
    values.update(config.settings)
    return values
