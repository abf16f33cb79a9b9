"""The live fetcher's caches hold a bounded amount of memory over a server's life: robots.txt rules per
origin were kept for good (~0.7 MB for a large site's file, per distinct origin ever fetched: a
server's RSS climbed by 720 MB per 1,000 origins), and pages past their time stayed until 1,024 newer
ones pushed them out. Real fetches from a loopback fixture web."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from tests.crawler.fixture_web import FixtureWeb, Resp, article

# A large site's robots.txt (~22 KB: 700 rules), and pages of ~1 MB of distinct text.
ROBOTS = ("User-agent: *\n" + "".join(f"Disallow: /private/section-{i}/*.php\nAllow: /public/area-{i}/\n"
                                      for i in range(350))).encode()  # fmt: skip
BIG = article("Trial results", [" ".join(f"Statin therapy in trial {k}, arm {j}, lowered LDL cholesterol." for j in range(60))
                                for k in range(250)])  # fmt: skip


BASE: list[str] = []  # host:port of the fixture web


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    w = FixtureWeb()
    w.site("127.0.0.1", {
        "/robots.txt": Resp(body=ROBOTS, ctype="text/plain"),
        "/page": Resp(body=article("Monthly statistics", ["Consumer prices for energy fell for the third month."])),
        "/big": Resp(body=BIG),
    })  # fmt: skip
    w.start()
    BASE[:] = [f"127.0.0.1:{w.ports['127.0.0.1']}"]
    yield BASE[0]
    w.stop()


def retained_after(fetches, **limits) -> int:
    """Bytes still allocated after `fetches(fetcher)` ran (the fetcher kept open), once a page of each
    kind was fetched first (extraction loads its models and word lists once per process)."""
    from service.fetch_live import FetchLimits, LiveFetcher

    async def run() -> int:
        fetcher = LiveFetcher(FetchLimits(any_host=True, allow_loopback=True, **limits), resolve=lambda host: ["127.0.0.1"])
        try:
            for path in ("/page?warm-up", "/big?warm-up"):
                await fetcher.fetch(f"http://warm-up@{BASE[0]}{path}", lambda host: True)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            await fetches(fetcher)
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
            await fetcher.close()

    return asyncio.run(run())


def test_robots_rules_of_many_origins_are_not_all_kept(base):
    async def fetches(fetcher) -> None:
        for i in range(30):  # 30 origins (the user part differs) of one host, each with its own robots.txt rules
            page, _ = await fetcher.fetch(f"http://u{i}@{base}/page?i={i}", lambda host: True)
            assert page.title == "Monthly statistics"

    # All kept: 30 x ~0.35 MB = ~10.5 MB. The bound weighs each entry at ~0.53 MB: 7 fit in 4 MB (~2.5 MB).
    assert retained_after(fetches, robots_cache_bytes=4 << 20) < 5 << 20


def test_pages_past_their_time_are_let_go(base):
    async def fetches(fetcher) -> None:
        for i in range(12):  # ~12 MB of page text
            page, _ = await fetcher.fetch(f"http://{base}/big?copy={i}", lambda host: True)
            assert len(page.text) > 900_000
        await asyncio.sleep(1.2)  # past the pages' time
        await fetcher.fetch(f"http://{base}/page", lambda host: True)

    assert retained_after(fetches, cache_ttl_s=1.0) < 6 << 20  # all kept: ~12 MB


def test_a_page_and_its_rules_are_reused_within_their_time(base):
    async def twice(fetcher) -> None:
        first = await fetcher.fetch(f"http://{base}/page?again", lambda host: True)
        second = await fetcher.fetch(f"http://{base}/page?again", lambda host: True)
        assert (first[1], second[1]) == (False, True) and second[0] is first[0]

    retained_after(twice)
