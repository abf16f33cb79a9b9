"""Crawler isolation with a host map (issue 16): mapped hosts (http and https) go to their target
without DNS, unmapped hosts are refused unless --allow-dns, and each host is looked up once with
the checked address used for the connection. A resolver that records lookups stands in for DNS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawler.conftest import build_web, run_crawl, write_inputs
from tests.crawler.fixture_web import FixtureWeb
from tests.crawler.recording_resolver import LOG_ENV

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RECORDING = {"DRSEARCH_RESOLVE": "tests.crawler.recording_resolver.resolve"}


@pytest.fixture
def web() -> Iterator[FixtureWeb]:
    """The standard fixture web less /slow, whose three timed-out attempts (6 s) held each crawl up: a 404
    now. Its retries are covered by test_crawl; here /flaky and /broken still retry through the host map."""
    w = build_web()
    del w.sites["www.centralbank.int"]["/slow"]
    w.start()
    yield w
    w.stop()


def crawl(tmp_path: Path, web, seeds: list[str], *extra: str, monkeypatch) -> tuple[dict, list[str]]:
    domains, hosts = write_inputs(tmp_path, web)
    seeds_file = tmp_path / "seeds.txt"
    seeds_file.write_text("\n".join(seeds) + "\n")
    log = tmp_path / "lookups.txt"
    log.touch()
    monkeypatch.setenv(LOG_ENV, str(log))
    proc = run_crawl(tmp_path / "out", domains, hosts, "--seeds", str(seeds_file), "--max-depth", "1", *extra,
                     settings=RECORDING)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    return report, log.read_text().split()


def test_host_map_crawl_makes_no_dns_lookup(tmp_path, web, monkeypatch):
    seeds = ["https://www.statgov.org/inflation", "http://news.statgov.org/", "https://news.statgov.org/x"]
    report, lookups = crawl(tmp_path, web, seeds, monkeypatch=monkeypatch)
    assert lookups == []  # mapped hosts (http or https) need none; unmapped ones are refused before any
    assert {"http://news.statgov.org/", "https://news.statgov.org/x"} <= set(report["skipped_examples"]["unmapped_host"])
    assert report["docs"] > 0  # the mapped sites were crawled as usual


def test_allow_dns_looks_each_host_up_once_and_checks_it(tmp_path, web, monkeypatch):
    seeds = ["http://news.statgov.org/", "http://news.statgov.org/a", "https://news.statgov.org/b",
             "http://private.statgov.org/", "http://private.statgov.org/c"]  # fmt: skip
    report, lookups = crawl(tmp_path, web, seeds, "--allow-dns", monkeypatch=monkeypatch)
    assert sorted(lookups) == ["news.statgov.org", "private.statgov.org"]  # once per host, not per request
    assert {"http://private.statgov.org/", "http://private.statgov.org/c"} <= set(report["skipped_examples"]["private_address"])
    assert "unmapped_host" not in report["skips"] or report["skips"]["unmapped_host"] == 0
