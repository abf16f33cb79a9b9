"""A second, small fixture web (127.0.0.1 only): per-domain politeness (one download slot for a domain's
subdomains, a 429 pausing the whole domain), seed URLs, robots.txt for requests that wait for it, and a
configured User-Agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drsearch
from tests.crawler.conftest import crawled, page, paras, read_docs
from tests.crawler.fixture_web import FixtureWeb, Hit, Resp, article

WWW, DATA, LIMITED = "www.shared.org", "data.shared.org", "www.ratelimited.org"
USER_AGENT = "drsearch-crawler/9.9 (+https://example.invalid/tests)"
SLOW = 0.3  # seconds each slow page takes: long enough that two at once would overlap visibly
RETRY_AFTER = 1
DEEP_SEED = "http://www.shared.org/archive/deep-report"
# Start requests arrive together, so these wait for a robots.txt still on its way (the slow robots.txt makes
# sure of it): each must still be judged by it.
FORBIDDEN_SEEDS = ["http://www.shared.org/private/a", "http://www.shared.org/private/b"]


def slow_page(topic: str) -> Resp:
    return Resp(body=article(topic.title(), paras(topic)), delay=SLOW)


def build_small_web() -> FixtureWeb:
    web = FixtureWeb()
    web.site(
        WWW,
        {
            "/robots.txt": Resp(body=b"User-agent: *\nDisallow: /private/\n", ctype="text/plain", delay=SLOW),
            "/": page("shared portal", ["http://data.shared.org/p1", "http://data.shared.org/p2", "/p3", "/p4"]),
            "/p3": slow_page("portal third"),
            "/p4": slow_page("portal fourth"),
            "/archive/deep-report": page("deep archive report"),  # linked from nowhere: reached as a seed only
            "/private/a": page("private a"),
            "/private/b": page("private b"),
        },
    )
    web.site(DATA, {"/p1": slow_page("data first"), "/p2": slow_page("data second")})
    web.site(
        LIMITED,
        {
            "/": page("rate limited home", ["/wait", "/a", "/b", "/c"]),
            "/wait": lambda n: (
                Resp(429, b"slow down", headers={"Retry-After": str(RETRY_AFTER)}) if n == 1 else page("waited")
            ),
            "/a": page("first sibling"),
            "/b": page("second sibling"),
            "/c": page("third sibling"),
        },
    )
    return web


@pytest.fixture(scope="module")
def small_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FixtureWeb, Path, dict]]:
    web, tmp = build_small_web(), tmp_path_factory.mktemp("small")
    (tmp / "seeds.txt").write_text("# deep pages\n" + "\n".join([DEEP_SEED, *FORBIDDEN_SEEDS]) + "\n")
    with crawled(web, tmp, "http://www.shared.org/\nhttp://www.ratelimited.org/\n", "--seeds", str(tmp / "seeds.txt"),
                 "--user-agent", USER_AGENT, settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 1}) as report:  # fmt: skip
        yield web, tmp / "out", report


def test_subdomains_share_one_download_slot(small_crawl) -> None:
    web, _, _ = small_crawl
    hits = sorted((h for h in web.log if h.host in (WWW, DATA)), key=lambda h: h.t)
    assert {(DATA, "/robots.txt"), (DATA, "/p1"), (DATA, "/p2"), (WWW, "/p3")} <= {(h.host, h.path) for h in hits}
    # CONCURRENT_REQUESTS_PER_DOMAIN = 1 across www. and data.: each request starts after the previous answer
    overlaps = [(a.host + a.path, b.host + b.path) for a, b in zip(hits, hits[1:]) if b.t < a.answered]
    assert overlaps == []


def test_429_pauses_the_whole_domain(small_crawl) -> None:
    web, _, _ = small_crawl
    hits = [h for h in web.log if h.host == LIMITED]
    first: Hit = next(h for h in hits if h.path == "/wait")
    later = [h for h in hits if h.t > first.t]
    assert {"/a", "/b", "/c"} <= {h.path for h in hits}
    assert any(h.path != "/wait" for h in later)  # other pages of the domain were waiting to be fetched
    assert all(h.t - first.t >= RETRY_AFTER for h in later), [(h.path, round(h.t - first.t, 3)) for h in later]


def test_seed_deep_url_is_fetched_and_stored(small_crawl) -> None:
    web, out, _ = small_crawl
    assert web.count(WWW, "/archive/deep-report") == 1
    doc = next(d for d in read_docs(out) if d["url"] == DEEP_SEED)
    assert "deep archive report" in doc["text"]


def test_robots_txt_holds_for_requests_that_waited_for_it(small_crawl) -> None:
    web, _, report = small_crawl
    assert not any(h.path.startswith("/private/") for h in web.log)
    assert report["skips"]["robots"] == 2 and set(report["skipped_examples"]["robots"]) == set(FORBIDDEN_SEEDS)


def test_configured_user_agent_on_every_request(small_crawl) -> None:
    web, _, report = small_crawl
    assert {h.user_agent for h in web.log} == {USER_AGENT}
    assert report["config"]["user_agent"] == USER_AGENT


def test_seed_outside_the_allowlist_is_refused(tmp_path: Path) -> None:
    (tmp_path / "domains.txt").write_text("www.shared.org\n")
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"{DEEP_SEED}\nhttp://evil.example.com/x\n")
    proc = drsearch("crawl", "--out", tmp_path / "out", "--domains", tmp_path / "domains.txt", "--seeds", seeds,
                    "--quiet", timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"drsearch: error: {seeds}:2: seed URL outside the allowed domains: http://evil.example.com/x"
    ]
    assert not (tmp_path / "out").exists()
