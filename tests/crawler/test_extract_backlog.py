"""Pages waiting for extraction are bounded by count (DRSEARCH_EXTRACT_BACKLOG), not only by their bytes.

Scrapy pauses downloads at SCRAPER_SLOT_MAX_ACTIVE_SIZE (48 MiB) of responses, counting a small page as
1 KiB, while each page waiting for extraction keeps its response, its parsed tree and Scrapy's tasks: when
downloads outpaced extraction, a 50-site crawl held 7,700 pages (470 MB) and a crawl killed then fetched
them all again on --resume. Here one page slow to extract is followed by many quick ones: while it is
extracted, the quick ones must not all be downloaded.
"""

from __future__ import annotations

from pathlib import Path

from crawler.shards import complete_members
from tests.crawler.conftest import crawled, page, paras
from tests.crawler.fixture_web import FixtureWeb, Resp, article

SITE = "www.backlog.org"
QUICK = [f"/p{i}" for i in range(30)]
PAGES = {"/", "/slow", *QUICK}
BACKLOG = 1
CONCURRENT = 2


def stored_docs(out: Path) -> int:
    """Documents in the shards as they are now (every flushed gzip member, .tmp shards included)."""
    n = 0
    for path in (out / "docs").glob("part-*"):
        text, _ = complete_members(path.read_bytes())
        n += sum(1 for line in text.splitlines() if line.strip())
    return n


def test_page_downloads_wait_while_extraction_is_behind(tmp_path: Path) -> None:
    web = FixtureWeb()
    held: list[int] = []  # at each page request: pages answered and not yet stored

    def quick(path: str):
        def answer(_: int) -> Resp:
            answered = sum(1 for h in web.log if h.path in PAGES and h.answered)
            held.append(answered - stored_docs(tmp_path / "out"))
            return page(f"quick page {path[2:]} about topic {path[2:]}")

        return answer

    slow = article("Slow", paras("slow extraction") * 4000)  # ~1.5 MB of paragraphs: about a second to extract
    web.site(SITE, {"/": page("backlog home", ["/slow", *QUICK]), "/slow": Resp(body=slow),
                    **{p: quick(p) for p in QUICK}})  # fmt: skip
    settings = {"DRSEARCH_EXTRACT_THREADS": 1, "DRSEARCH_EXTRACT_BACKLOG": BACKLOG, "CONCURRENT_REQUESTS": CONCURRENT,
                "DOWNLOAD_MAXSIZE": 4_000_000, "DOWNLOAD_TIMEOUT": 10}  # fmt: skip
    with crawled(web, tmp_path, f"http://{SITE}/\n", "--flush-docs", "1", settings=settings) as report:
        assert report["docs"] == len(PAGES)
    assert len(held) == len(QUICK)
    # In extraction or waiting for it: at most the backlog plus the downloads let through before it filled.
    assert max(held) <= BACKLOG + CONCURRENT, held
