"""Depth is the shortest path to a page, whichever path reaches it first (127.0.0.1 fixture web).

In a crawl of many sites a page is often first found by a longer path: a sitemap or another site's page
read late, a start page that Scrapy's lazy start() hands over after another site's link to it. The page
must still be crawled from its least depth, or the pages one hop under it are lost at --max-depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawler.conftest import SM_NS, crawled, page, read_docs
from tests.crawler.fixture_web import FixtureWeb, Resp

SITE = "http://www.deep.org"
SITEMAP_DELAY = 1.5  # the sitemap (a shorter path to /x) arrives after /a has linked /x ...
X_DELAY = 3.0  # ... and before /x itself


def build_web() -> FixtureWeb:
    web = FixtureWeb()
    sitemap = f'<?xml version="1.0"?><urlset {SM_NS}><url><loc>{SITE}/x</loc></url></urlset>'.encode()
    web.site(
        "www.deep.org",
        {
            "/sitemap.xml": Resp(body=sitemap, ctype="application/xml", delay=SITEMAP_DELAY),
            "/": page("deep home", ["/a"]),
            "/a": page("first level", ["/x", "/b"]),  # /x at depth 2 this way, at 1 by the sitemap
            "/b": page("second level", ["/", "/a", "/z"]),  # at --max-depth 2: links to stored pages, and /z
            "/x": Resp(body=page("sitemap listed", ["/y"]).body, delay=X_DELAY),
            "/y": page("under the sitemap page"),  # depth 2 under /x's least depth
            "/z": page("beyond the depth limit"),
        },
    )
    return web


@pytest.fixture(scope="module")
def depth_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FixtureWeb, Path, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("depth")
    web = build_web()
    with crawled(web, tmp, f"{SITE}/\n", "--max-depth", "2", settings={"DOWNLOAD_TIMEOUT": 10}) as report:
        yield web, tmp / "out", report


def test_page_found_by_a_shorter_path_later_is_crawled_from_its_least_depth(depth_crawl) -> None:
    web, out, report = depth_crawl
    urls = {d["url"] for d in read_docs(out)}
    assert f"{SITE}/y" in urls, report["skipped_examples"].get("depth")
    assert web.count("www.deep.org", "/x") == 1  # the shorter path costs no second fetch
    assert f"{SITE}/z" not in urls and web.count("www.deep.org", "/z") == 0




def test_depth_skips_count_pages_beyond_the_limit_not_links_to_crawled_pages(depth_crawl) -> None:
    _, _, report = depth_crawl
    assert report["skipped_examples"]["depth"] == [f"{SITE}/z"]
    assert report["skips"]["depth"] == 1


def test_resume_keeps_the_least_depth_of_a_pending_page(tmp_path: Path) -> None:
    from crawler.state import CrawlState

    url = f"{SITE}/x"
    state = CrawlState(tmp_path, resume=False, shard_docs=10, flush_docs=1)
    state.mark_seen(url, 3)
    state.mark_seen(url, 1)  # a shorter path, found before the page was fetched
    state.mark_seen(url, 2)
    state.close()
    assert CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=1).pending() == [(url, 1)]
