"""robots.txt that cannot be fetched (5xx, connection refused) disallows its host, and Crawl-delay spaces a
domain's requests (up to a cap, also under AutoThrottle)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawler.conftest import TEST_SETTINGS, crawled, page, read_docs, run_crawl
from tests.crawler.fixture_web import FixtureWeb, Resp

DOWN, GONE, NOBOTS, BUSY = "www.down.org", "www.gone.org", "www.nobots.org", "www.busy.org"
SLOW, HOSTILE = "www.slowpoke.org", "www.hostile.org"
DELAY_CAP = 1.5
ROBOTS_ATTEMPTS = 1 + TEST_SETTINGS["RETRY_TIMES"]  # a 5xx robots.txt is retried like any 5xx


def robots(text: str) -> Resp:
    return Resp(body=text.encode(), ctype="text/plain")


def build_robots_web() -> FixtureWeb:
    web = FixtureWeb()
    web.site(
        DOWN,
        {
            # 503 for the first crawl (all its attempts), then up: the resumed crawl gets its pages
            "/robots.txt": lambda n: (
                Resp(503, b"busy") if n <= ROBOTS_ATTEMPTS else robots("User-agent: *\nAllow: /\n")
            ),
            "/": page("down home", ["/a"]),
            "/a": page("down a"),
        },
    )
    web.site(NOBOTS, {"/": page("no robots home")})  # robots.txt 404: everything allowed
    web.site(BUSY, {"/robots.txt": Resp(429, b"slow down"), "/": page("busy home")})  # rate-limited: not a 4xx "none"
    web.site(SLOW, {"/robots.txt": robots("User-agent: *\nCrawl-delay: 1\n"), "/": page("slow home", ["/p1"]),
                    "/p1": page("slow one")})  # fmt: skip
    web.site(HOSTILE, {"/robots.txt": robots("User-agent: drsearch-crawler\nCrawl-delay: 86400\n"),
                       "/": page("hostile home")})  # fmt: skip
    return web


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SETTINGS = {
    # AutoThrottle on, pulling delays down to nothing: Crawl-delay must hold anyway
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 8,
    "DRSEARCH_CRAWL_DELAY_MAX": DELAY_CAP,
    "RETRY_BACKOFF_BASE": 0.1,
    # busy.org's robots.txt answers 429 with no Retry-After: each retry waits this long (10 s by default)
    "RETRY_AFTER_DEFAULT": 0.5,
}


@pytest.fixture(scope="module")
def robots_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FixtureWeb, Path, dict, int]]:
    web, tmp = build_robots_web(), tmp_path_factory.mktemp("robots")
    domains = "".join(f"http://{h}/\n" for h in (DOWN, GONE, NOBOTS, BUSY, SLOW, HOSTILE))
    with crawled(web, tmp, domains, hosts_extra=f"{GONE} 127.0.0.1:{closed_port()}\n", settings=SETTINGS) as report:
        yield web, tmp, report, len(web.log)


def test_robots_txt_5xx_disallows_the_host(robots_crawl) -> None:
    web, _, report, first_run = robots_crawl
    assert [h.path for h in web.log[:first_run] if h.host == DOWN] == ["/robots.txt"] * ROBOTS_ATTEMPTS
    assert "http://www.down.org/" in report["skipped_examples"]["robots_unreachable"]


def test_robots_txt_429_disallows_the_host_like_a_5xx(robots_crawl) -> None:
    web, _, report, first_run = robots_crawl
    assert "http://www.busy.org/" in report["skipped_examples"]["robots_unreachable"]
    assert [h.path for h in web.log[:first_run] if h.host == BUSY] == ["/robots.txt"] * ROBOTS_ATTEMPTS


def test_unreachable_robots_txt_disallows_the_host(robots_crawl) -> None:
    _, _, report, _ = robots_crawl
    assert "http://www.gone.org/" in report["skipped_examples"]["robots_unreachable"]
    assert "http://www.gone.org/" not in report["skipped_examples"].get("error", [])


def test_robots_txt_404_allows_all(robots_crawl) -> None:
    web, _, report, _ = robots_crawl
    assert web.count(NOBOTS, "/") == 1 and report["docs_per_domain"]["nobots.org"] == 1


def test_crawl_delay_spaces_the_domains_requests_up_to_a_cap(robots_crawl) -> None:
    web, _, report, first_run = robots_crawl
    for host, delay in ((SLOW, 1.0), (HOSTILE, DELAY_CAP)):
        times = [h.t for h in web.log[:first_run] if h.host == host]
        gaps = [round(b - a, 3) for a, b in zip(times, times[1:])]
        assert len(gaps) >= 2 and min(gaps) >= delay - 0.05, (host, gaps)
        assert max(gaps) < delay + 5, (host, gaps)  # capped: 86400 s would never end
    assert report["docs_per_domain"]["slowpoke.org"] == 2


def test_resume_asks_again_for_pages_refused_while_robots_txt_was_down(robots_crawl) -> None:
    web, tmp, _, first_run = robots_crawl
    proc = run_crawl(tmp / "out", tmp / "domains.txt", tmp / "hosts.txt", "--resume", settings=SETTINGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {h.path for h in web.log[first_run:] if h.host == DOWN} == {"/robots.txt", "/", "/a", "/sitemap.xml"}
    assert {"http://www.down.org/", "http://www.down.org/a"} <= {d["url"] for d in read_docs(tmp / "out")}
