"""Authority crawler: a Scrapy project that crawls the curated domains into documents JSONL shards.

Entry points: `crawler.run.run_crawl(CrawlConfig)` (in-process) and `python -m crawler.run` (subprocess).
Nothing here does work at import time.
"""
