"""A live page whose extraction runs past the fetch's deadline is stopped there. trafilatura over
libxml2 takes seconds on large pages (and grows faster than their size on some: a paragraph of 8,000
distinct links, 250 KB, took 4 s), and the thread that ran it could not be stopped, so it held one of
the extraction threads long after its fetch had answered `timeout`. Real fetches from a loopback
fixture web."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Iterator

import pytest

from tests.crawler.fixture_web import FixtureWeb, Resp, article

# ~1.8 MB of short paragraphs: seconds of extraction, far more than the deadline below.
SLOW = article("Register", [f"Entry {i} of the register, filed in {1990 + i % 30}." for i in range(40_000)])
LARGE = article("Trial results", [" ".join(f"Statin therapy in trial {k}, arm {j}, lowered LDL cholesterol." for j in range(30))
                                  for k in range(150)])  # fmt: skip


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    web = FixtureWeb()
    web.site("127.0.0.1", {
        "/slow": Resp(body=SLOW),
        "/page": Resp(body=article("Monthly statistics", ["Consumer prices for energy fell for the third month."])),
        "/large": Resp(body=LARGE),
    })  # fmt: skip
    web.start()
    yield f"127.0.0.1:{web.ports['127.0.0.1']}"
    web.stop()


@pytest.mark.timeout(120)  # a hang guard only
def test_an_extraction_past_the_deadline_is_stopped_and_frees_its_thread(base):
    """With one extraction thread, a page fetched right after a timed-out one is extracted in time:
    before, it waited for the thread still extracting the first page, and timed out too."""
    from service.fetch_live import IN_THREAD_BYTES, FetchFailure, FetchLimits, LiveFetcher

    assert len(SLOW) > IN_THREAD_BYTES and len(LARGE) > IN_THREAD_BYTES

    async def run() -> None:
        fetcher = LiveFetcher(FetchLimits(any_host=True, allow_loopback=True, timeout_s=1.5, extract_threads=1),
                              resolve=lambda host: ["127.0.0.1"])  # fmt: skip
        allowed = lambda host: True  # noqa: E731
        try:
            # The worker process started first: spawning one (it imports the extractor) takes a second or two.
            large = await asyncio.to_thread(fetcher._extract_within, f"http://{base}/large", "html", None, LARGE,
                                            time.monotonic() + 60)  # fmt: skip
            assert large.title == "Trial results" and "lowered LDL cholesterol" in large.text
            with pytest.raises(FetchFailure) as failed:
                await fetcher.fetch(f"http://{base}/slow", allowed)
            assert failed.value.code == "timeout", failed.value.message
            page, _ = await fetcher.fetch(f"http://{base}/page", allowed)
            assert "Consumer prices" in page.text
        finally:
            await fetcher.close()

    asyncio.run(run())
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]  # close() stops the workers


def test_a_large_page_extracts_in_a_worker_as_in_the_thread(base):
    """What a worker process extracts is what the thread extracts; a failure raised there (no text)
    arrives as the same one-line failure."""
    from crawler.extract import extract_html
    from service.fetch_live import FetchFailure, FetchLimits, LiveFetcher

    async def run() -> None:
        fetcher = LiveFetcher(FetchLimits(any_host=True, allow_loopback=True, timeout_s=60.0), resolve=lambda host: ["127.0.0.1"])
        try:
            page, _ = await fetcher.fetch(f"http://{base}/large", lambda host: True)
            alone = extract_html(LARGE, url=f"http://{base}/large")
            assert (page.title, page.text, page.language) == (alone.title, alone.text, alone.language)
            empty = b"<html><body>" + b"<div></div>" * 60_000 + b"</body></html>"
            with pytest.raises(FetchFailure) as failed:
                await asyncio.to_thread(fetcher._extract_within, "http://x/empty", "html", None, empty, time.monotonic() + 60)
            assert failed.value.code == "fetch_failed" and "no main text" in failed.value.message
        finally:
            await fetcher.close()

    asyncio.run(run())


@pytest.mark.timeout(120)  # a hang guard only
def test_closing_the_fetcher_ends_every_wait_for_a_worker(base):
    """A fetcher closed (its server stopping) while a large page waited for a worker still starting left
    that page's extraction thread waiting for good: the stopped pool never answers a page no worker had
    taken, and Python's exit joins the extraction threads, so the process never ended (the suite hung
    after its last test). Closing now ends every such wait."""
    from service.fetch_live import FetchFailure, FetchLimits, LiveFetcher

    fetcher = LiveFetcher(FetchLimits(any_host=True, allow_loopback=True, timeout_s=0.6, extract_threads=1),
                          resolve=lambda host: ["127.0.0.1"])  # fmt: skip

    async def burst() -> list[object]:
        try:  # each times out while the pool's worker is still starting
            fetches = [fetcher.fetch(f"http://{base}/slow?copy={i}", lambda host: True) for i in range(3)]
            return await asyncio.gather(*fetches, return_exceptions=True)
        finally:
            await fetcher.close()

    assert [o.code if isinstance(o, FetchFailure) else o for o in asyncio.run(burst())] == ["timeout"] * 3
    # The extraction threads end: a daemon thread waits for them, so that a stuck one cannot hang the tests.
    waiting = threading.Thread(target=fetcher._extractors.shutdown, kwargs={"wait": True}, daemon=True)
    waiting.start()
    waiting.join(10)
    assert not waiting.is_alive(), "an extraction thread still waits for a pool that was stopped"
    with pytest.raises(FetchFailure) as refused:  # and a page after the close is refused in one line
        fetcher._extract_within(f"http://{base}/large", "html", None, LARGE, time.monotonic() + 60)
    assert refused.value.code == "fetch_failed" and "stopped" in refused.value.message
