"""End-to-end crawls of the fixture web (subprocesses of `python -m crawler.run`; 127.0.0.1 only)."""

from __future__ import annotations

import json
import random
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from crawler.config import DEFAULT_USER_AGENT
from crawler.shards import complete_members
from crawler.state import SKIP_REASONS, near_hash
from crawler.urls import doc_id_for, registrable_domain
from tests.crawler.conftest import REPO, TEST_SETTINGS, page, paras, read_docs, redirect, run_crawl, write_inputs
from tests.crawler.fixture_web import FixtureWeb, Resp, article

S, D, C, H, U = "www.statgov.org", "data.statgov.org", "www.centralbank.int", "www.health.gov", "www.uni.ac.uk"
REDIRECT_CAP = 5  # REDIRECT_MAX_TIMES in crawler/settings.py
NOT_PAGES = ("/robots.txt", "/sitemap.xml", "/sitemap_index.xml", "/sitemaps/pages.xml.gz")
HELD_S = 30  # longest a fixture page waits for an earlier page to be stored before it answers

EXPECTED_REQUESTS = {
    (S, "/robots.txt"), (S, "/sitemap.xml"), (S, "/sitemap_index.xml"), (S, "/sitemaps/pages.xml.gz"), (S, "/"),
    (S, "/reports/inflation"), (S, "/reports/inflation-print"), (S, "/reports/inflation-copy"),
    (S, "/reports/inflation-shouty"), (S, "/old-report"), (S, "/reports/moved"), (S, "/go-away"), (S, "/missing"),
    (S, "/data/table.csv"), (S, "/reports/annual.pdf"), (S, "/reports/employment"),
    (S, "/bomb"), *((S, f"/hop/{i}") for i in range(1, REDIRECT_CAP + 2)), (S, "/loop"), (S, "/loop-back"),
    (S, "/intranet-link"),
    (D, "/robots.txt"), (D, "/"),
    (C, "/robots.txt"), (C, "/sitemap.xml"), (C, "/"), (C, "/rates"), (C, "/flaky"), (C, "/busy"), (C, "/slow"),
    (C, "/broken"), (C, "/publications"),
    (H, "/robots.txt"), (H, "/sitemap.xml"), (H, "/"), (H, "/huge"), (H, "/logo.png"), (H, "/guidance"),
    (U, "/robots.txt"), (U, "/sitemap.xml"), (U, "/"), (U, "/paper.pdf"), (U, "/d1"), (U, "/d2"), (U, "/d3"),
}

EXPECTED_DOCS = {
    "http://www.statgov.org/", "http://www.statgov.org/reports/inflation", "http://www.statgov.org/reports/moved",
    "http://www.statgov.org/reports/annual.pdf", "http://www.statgov.org/reports/employment", "http://data.statgov.org/",
    "http://www.centralbank.int/", "http://www.centralbank.int/rates", "http://www.centralbank.int/flaky",
    "http://www.centralbank.int/busy", "http://www.centralbank.int/publications",
    "http://www.health.gov/", "http://www.health.gov/guidance",
    "http://www.uni.ac.uk/", "http://www.uni.ac.uk/paper.pdf", "http://www.uni.ac.uk/d1", "http://www.uni.ac.uk/d2",
    "http://www.uni.ac.uk/d3",
}


@pytest.fixture(scope="module")
def full_crawl(tmp_path_factory: pytest.TempPathFactory):
    from tests.crawler.conftest import build_web

    web = build_web()
    web.start()
    try:
        tmp = tmp_path_factory.mktemp("full")
        domains, hosts = write_inputs(tmp, web)
        proc = run_crawl(tmp / "out", domains, hosts)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads((tmp / "out" / "report.json").read_text())
        yield web, tmp / "out", report, proc
    finally:
        web.stop()


def test_requests_are_exactly_the_allowed_ones(full_crawl) -> None:
    web, _, _, _ = full_crawl
    assert web.requested() == EXPECTED_REQUESTS
    assert not any(h.host == "evil.example.com" for h in web.log)  # offsite redirect target never requested
    assert not any(h.host == "intranet.statgov.org" for h in web.log)  # allowed name, non-public address
    assert web.count(S, "/private/secret") == 0  # robots.txt
    assert web.count(H, "/drafts/plan") == 0  # robots.txt group for our product token
    assert web.count(S, f"/hop/{REDIRECT_CAP + 2}") == 0  # redirect cap
    assert web.count(U, "/d4") == 0  # depth limit
    assert not any("utm_" in h.path for h in web.log)
    # each page once, except retried ones
    for host, path in EXPECTED_REQUESTS - {(C, "/flaky"), (C, "/busy"), (C, "/slow"), (C, "/broken")}:
        assert web.count(host, path) == 1, (host, path)
    assert web.count(C, "/flaky") == 3  # 503, 503, 200
    assert web.count(C, "/broken") == 3  # 500 x (1 + RETRY_TIMES)
    assert web.count(C, "/slow") == 3  # timeouts, retried


def test_user_agent_on_every_request(full_crawl) -> None:
    web, _, report, _ = full_crawl
    assert {h.user_agent for h in web.log} == {DEFAULT_USER_AGENT}
    assert report["config"]["user_agent"] == DEFAULT_USER_AGENT


def test_retry_after_honoured(full_crawl) -> None:
    web, _, _, _ = full_crawl
    hits = [h.t for h in web.log if h.host == C and h.path == "/busy"]
    assert len(hits) == 2 and hits[1] - hits[0] >= 0.95


def test_retry_backoff(full_crawl) -> None:
    web, _, _, _ = full_crawl
    base = TEST_SETTINGS["RETRY_BACKOFF_BASE"]
    for path in ("/flaky", "/broken"):
        hits = [h.t for h in web.log if h.host == C and h.path == path]
        assert len(hits) == 3, path
        assert hits[1] - hits[0] >= base and hits[2] - hits[1] >= 2 * base, (path, hits)


def test_documents(full_crawl) -> None:
    _, out, report, _ = full_crawl
    docs = read_docs(out)
    assert {d["url"] for d in docs} == EXPECTED_DOCS
    assert len(docs) == len(EXPECTED_DOCS)  # kept once
    assert not list((out / "docs").glob("*.tmp"))
    keys = {"id", "url", "domain", "title", "text", "published", "fetched_at", "content_type", "status",
            "content_hash", "language"}
    by_url = {d["url"]: d for d in docs}
    for d in docs:
        assert set(d) == keys
        assert d["id"] == doc_id_for(d["url"]) and len(d["id"]) == 16
        assert d["status"] == 200 and d["text"].strip() and d["fetched_at"].endswith("Z")
    assert by_url["http://data.statgov.org/"]["domain"] == "statgov.org"
    assert by_url["http://www.uni.ac.uk/"]["domain"] == "uni.ac.uk"
    html = by_url["http://www.statgov.org/reports/inflation"]
    assert html["content_type"] == "text/html" and html["language"] == "en" and html["title"] == "Inflation"
    assert html["text"].count("\n\n") >= 2  # paragraphs separated by blank lines
    assert "Copyright footer" not in html["text"] and "link 0" not in html["text"]
    assert by_url["http://www.health.gov/guidance"]["published"] == "2024-03-05"
    assert "vaccination" in by_url["http://www.health.gov/"]["text"].lower()  # malformed HTML still extracted
    pdf = by_url["http://www.statgov.org/reports/annual.pdf"]
    assert pdf["content_type"] == "application/pdf" and "Prices rose by four percent." in pdf["text"]
    assert pdf["title"] == "Annual Report 2023" and pdf["published"] == "2023-04-15"
    # the indexer can read the shards
    from indexer.readers import read_documents

    assert {d.url for d in read_documents([out])} == EXPECTED_DOCS


def test_report(full_crawl) -> None:
    _, _, report, proc = full_crawl
    skips = report["skips"]
    assert skips["robots"] == 2 and skips["depth"] == 1 and skips["redirect_offsite"] == 1
    assert skips["duplicate"] == 2 and skips["near_duplicate"] == 1
    assert skips["content_type"] == 2  # csv + png
    assert skips["too_large"] == 2 and skips["timeout"] == 1  # /huge (body) and /bomb (inflated)
    assert "http://www.statgov.org/bomb" in report["skipped_examples"]["too_large"]
    assert report["skipped_examples"]["redirect_limit"] == [f"http://www.statgov.org/hop/{REDIRECT_CAP + 1}"]
    assert report["skipped_examples"]["redirect_loop"] == ["http://www.statgov.org/loop"]
    assert "http://intranet.statgov.org/" in report["skipped_examples"]["private_address"]
    assert skips["offsite"] >= 1 and "http://10.0.0.1/admin" in report["skipped_examples"]["offsite"]
    assert "http://192.168.1.1/router" in report["skipped_examples"]["private_address"]
    assert "http://evil.example.com/landing" in report["skipped_examples"]["redirect_offsite"]
    assert skips["http_status"] == 2  # /missing 404, /broken 500 after retries
    assert report["docs"] == len(EXPECTED_DOCS) and report["finish_reason"] == "finished"
    assert report["docs_per_domain"]["statgov.org"] == 6
    assert report["status_codes"]["429"] == 1 and report["status_codes"]["301"] == 1
    assert report["bytes"] > 0 and report["duration_s"] > 0
    (group,) = report["near_duplicate_groups"]
    assert group["kept"] == "http://www.statgov.org/reports/inflation"
    assert set(group["duplicates"]) == {
        "http://www.statgov.org/reports/inflation-copy",
        "http://www.statgov.org/reports/inflation-print",
        "http://www.statgov.org/reports/inflation-shouty",
    }
    assert "pages=" in proc.stderr and "docs=" in proc.stderr  # progress line


def _doc_keys(out: Path) -> set[tuple[str, str, str]]:
    return {(d["id"], d["url"], d["content_hash"]) for d in read_docs(out)}


def _outcome(out: Path, report: dict) -> tuple[set[tuple[str, str, str]], set[frozenset[str]], list[str]]:
    """A crawl's documents and duplicate groups, up to which page of a group of equivalent pages (one text,
    near duplicates, print versions naming one rel=canonical) is the one kept: the one whose extraction ends
    first, on two threads, which a resume that re-issues a group's pages at once leaves to chance. Documents
    outside the groups exactly; of the group's kept documents, the text up to case and punctuation."""
    groups = {frozenset([g["kept"], *g["duplicates"]]) for g in report["near_duplicate_groups"]}
    grouped = set().union(*groups)
    docs = read_docs(out)
    exact = {(d["id"], d["url"], d["content_hash"]) for d in docs if d["url"] not in grouped}
    return exact, groups, sorted(near_hash(d["text"]) for d in docs if d["url"] in grouped)


def test_resume_after_interruption(tmp_path: Path, web: FixtureWeb, full_crawl) -> None:
    _, full_out, full_report, _ = full_crawl
    domains, hosts = write_inputs(tmp_path, web)
    out = tmp_path / "out"
    first = run_crawl(out, domains, hosts, settings={"CLOSESPIDER_PAGECOUNT": 12})
    assert first.returncode == 3, first.stderr[-2000:]  # interrupted: not "finished"
    assert json.loads((out / "report.json").read_text())["finish_reason"] == "closespider_pagecount"
    stored_first = {d["url"] for d in read_docs(out)}
    assert 0 < len(stored_first) < len(EXPECTED_DOCS)
    n_first = len(web.log)
    again = run_crawl(out, domains, hosts)
    assert again.returncode == 2 and "--resume" in again.stderr  # refuses to overwrite silently
    resumed = run_crawl(out, domains, hosts, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert _outcome(out, report) == _outcome(full_out, full_report)
    second = web.log[n_first:]
    refetched = {f"http://{h.host}{h.path}" for h in second} & stored_first
    assert not refetched
    assert report["runs"] == 2 and report["docs"] == len(EXPECTED_DOCS)
    # what both runs refetch (robots.txt, sitemaps: a sitemap of a refused host) is counted once
    _assert_counts_as_one_crawl(report, full_report)


def test_a_retry_waiting_at_a_clean_stop_is_fetched_once_on_resume(tmp_path: Path) -> None:
    """A crawl stopped cleanly (here CLOSESPIDER_PAGECOUNT; Ctrl-C and SIGTERM close the same way) while a
    page's retry waits in Scrapy's queue: the resumed crawl asks for that page once, and does not report it a
    duplicate of itself (Scrapy's saved queue gave the retry back beside the frontier's re-issued page)."""
    web = FixtureWeb()
    slow = [f"/s{i}" for i in range(6)]
    web.site("www.retry.org", {
        "/": page("retry home", ["/flaky", *slow]),
        "/flaky": lambda n: Resp(503, b"busy") if n == 1 else page("flaky page"),
        **{p: Resp(body=article(f"Slow {p}", paras(f"slow page {p}")), delay=0.5) for p in slow},
    })  # fmt: skip
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.retry.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        out, args = tmp_path / "out", (tmp_path / "domains.txt", tmp_path / "hosts.txt")
        # One request at a time: the 503's retry (0.2 s backoff, a lower priority than the pages) waits in the
        # queue behind the slow pages; the crawl stops after five responses, the retry still waiting.
        first = run_crawl(out, *args, settings={"CONCURRENT_REQUESTS": 1, "CLOSESPIDER_PAGECOUNT": 5})
        assert first.returncode == 3, first.stderr[-2000:]
        assert [h.path for h in web.log].count("/flaky") == 1 and "/s5" not in [h.path for h in web.log]
        n_first = len(web.log)
        resumed = run_crawl(out, *args, "--resume", settings={"CONCURRENT_REQUESTS": 1})
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert [h.path for h in web.log[n_first:]].count("/flaky") == 1
        report = json.loads((out / "report.json").read_text())
        assert report["skips"]["duplicate"] == 0
        assert sorted(d["url"] for d in read_docs(out)) == sorted(f"http://www.retry.org{p}" for p in ["/", "/flaky", *slow])
    finally:
        web.stop()


@pytest.mark.parametrize("size,margin", [("1m", 900 << 10), ("96k", 0)])  # stopped with room to spare; at a failed write
def test_a_crawl_whose_disk_fills_stops_with_one_line_and_resumes_once_there_is_room(tmp_path: Path, small_disk,
                                                                                    size: str, margin: int) -> None:  # fmt: skip
    """A crawl whose disk is (nearly) full stops at once with a one-line error and exit 2; it went on fetching
    every page for nothing, logging a traceback each. What was written is kept, and --resume with room
    again stores every page once."""
    web, rnd = FixtureWeb(), random.Random(7)
    pages = [f"/p{i}" for i in range(150)]
    words = {p: " ".join(f"{rnd.getrandbits(32):08x}" for _ in range(300)) for p in pages}  # ~1.5 KB gzipped each
    web.site("www.full.org", {"/": page("full home", pages), **{p: Resp(body=article(p, [words[p]])) for p in pages}})
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.full.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        disk, args = small_disk(size), (tmp_path / "domains.txt", tmp_path / "hosts.txt")
        slower = {"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 0.01, "DRSEARCH_MIN_FREE_BYTES": margin}
        first = run_crawl(disk / "out", *args, "--flush-docs", "1", settings=slower)
        assert first.returncode == 2
        assert first.stderr.strip().splitlines()[-1].startswith("error: ") and "the crawl stopped, its disk full" in first.stderr
        assert "--resume" in first.stderr and "Traceback" not in first.stderr
        assert sum(1 for h in web.log if h.path.startswith("/p")) < len(pages)  # it stopped
        subprocess.run(["mount", "-o", "remount,size=300m", str(disk)], check=True)  # room again
        resumed = run_crawl(disk / "out", *args, "--resume")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert sorted(d["url"] for d in read_docs(disk / "out")) == sorted(f"http://www.full.org{p}" for p in ["/", *pages])
    finally:
        web.stop()


def _frontier(out: Path) -> list[dict]:
    """The frontier log's records (a kill may leave its last line torn: skipped, as a resume skips it)."""
    records = []
    for line in (out / "job" / "frontier.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return records


def test_killed_crawl_leaves_readable_shards_and_resumes(tmp_path: Path, web: FixtureWeb, full_crawl) -> None:
    """A crawl killed (SIGKILL) mid-way and resumed stores what an uninterrupted crawl stores, and its report
    counts what that crawl counts: the pages settled before the kill (their skips, duplicate groups, links
    skipped on them) are counted once, neither lost with the killed run nor counted again by the resume."""
    _, full_out, full_report, _ = full_crawl
    domains, hosts = write_inputs(tmp_path, web)
    out = tmp_path / "out"
    cmd_settings = {"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 0.3}
    import os

    cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--domains", str(domains), "--host-map",
           str(hosts), "--max-depth", "3", "--flush-docs", "1", "--quiet", "--allow-private"]
    for k, v in {**TEST_SETTINGS, **cmd_settings}.items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tmps = list((out / "docs").glob("*.tmp")) if (out / "docs").is_dir() else []
            if tmps and tmps[0].stat().st_size > 600:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert not (out / "report.json").exists()
    n_first = len(web.log)
    assert (out / "job" / "RUNNING").exists()
    flushed_members = complete_members(next((out / "docs").glob("*.tmp")).read_bytes())[0].decode()
    flushed = {json.loads(line)["url"] for line in flushed_members.splitlines()}
    assert flushed
    settled = {r["done"] for r in _frontier(out) if "done" in r} - flushed
    assert settled  # the killed run settled pages it did not store: its skips must not be lost
    resumed = run_crawl(out, domains, hosts, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert _outcome(out, report) == _outcome(full_out, full_report)
    assert not list((out / "docs").glob("*.tmp"))
    # pages whose documents were flushed before the kill were not fetched again (those fetched but not
    # yet stored were)
    second_pages = {f"http://{h.host}{h.path}" for h in web.log[n_first:]}
    assert not flushed & second_pages
    _assert_counts_as_one_crawl(report, full_report)
    assert report["runs"] == 2  # the killed run is one


def _assert_counts_as_one_crawl(report: dict, full_report: dict) -> None:
    """The outcome counters of a crawl run in several goes are those of the uninterrupted crawl (network
    counters may differ: pages in flight at a stop are fetched again), up to which page of a group of
    equivalent pages is kept (`_outcome`): the others are dropped as `duplicate` or `near_duplicate`
    depending on which, so those two reasons are compared together."""

    def outcomes(r: dict) -> tuple[dict[str, int], dict[str, object]]:
        skips, examples = {k: r["skips"][k] for k in SKIP_REASONS}, dict(r["skipped_examples"])
        skips["duplicate"] += skips.pop("near_duplicate")
        dropped = examples.pop("duplicate", []) + examples.pop("near_duplicate", [])
        groups = [frozenset([g["kept"], *g["duplicates"]]) for g in r["near_duplicate_groups"]]
        # a dropped page stands for its group: which member was kept is left to chance on a resume
        by_group = Counter(next((g for g in groups if url in g), frozenset([url])) for url in dropped)
        return skips, {**{k: sorted(urls) for k, urls in examples.items()}, "duplicate": by_group}

    assert outcomes(report) == outcomes(full_report)
    assert (report["docs"], report["docs_per_domain"]) == (full_report["docs"], full_report["docs_per_domain"])


def _pages_per_domain(hits) -> dict[str, set[str]]:
    """Page URLs requested, by registrable domain (host included: www.x.org/ and data.x.org/ are two pages)."""
    pages: dict[str, set[str]] = {}
    for h in hits:
        if h.path not in NOT_PAGES:
            pages.setdefault(registrable_domain(h.host), set()).add(f"http://{h.host}{h.path}")
    return pages


def test_page_limit_per_domain_also_across_resume(tmp_path: Path, web: FixtureWeb) -> None:
    domains, hosts = write_inputs(tmp_path, web)
    limit = ("--max-pages-per-domain", "3")
    whole = run_crawl(tmp_path / "whole", domains, hosts, *limit)
    assert whole.returncode == 0, whole.stderr[-3000:]
    fetched = _pages_per_domain(web.log)
    assert {d: len(p) for d, p in fetched.items()} == {d: 3 for d in ("statgov.org", "centralbank.int", "health.gov", "uni.ac.uk")}
    assert json.loads((tmp_path / "whole" / "report.json").read_text())["skips"]["page_limit"] > 0

    # Interrupted + resumed: pages done for other reasons (robots, refused, over the limit) use no allowance,
    # so each domain again gets exactly its 3 pages, and none is fetched twice.
    n0 = len(web.log)
    out = tmp_path / "resumed"
    first = run_crawl(out, domains, hosts, *limit, settings={"CLOSESPIDER_PAGECOUNT": 10})
    assert first.returncode == 3, first.stderr[-2000:]
    stored_first = {d["url"] for d in read_docs(out)}
    n1 = len(web.log)
    resumed = run_crawl(out, domains, hosts, *limit, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    both = _pages_per_domain(web.log[n0:])
    assert {d: len(p) for d, p in both.items()} == {d: len(p) for d, p in fetched.items()}
    assert not stored_first & {f"http://{h.host}{h.path}" for h in web.log[n1:]}


def test_loopback_refused_without_allow_private(tmp_path: Path, web: FixtureWeb) -> None:
    domains, hosts = write_inputs(tmp_path, web)
    domains.write_text("http://www.uni.ac.uk/\n")
    proc = run_crawl(tmp_path / "out", domains, hosts, allow_private=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert web.log == []  # mapped to 127.0.0.1: refused before any request, robots.txt included
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["docs"] == 0 and "http://www.uni.ac.uk/" in report["skipped_examples"]["private_address"]


def test_resuming_a_finished_crawl_fetches_no_page(tmp_path: Path, full_crawl) -> None:
    """Every page of the finished crawl has a recorded outcome (also the gzip bomb, the redirect cap and
    loop): a resume asks only for robots.txt and sitemaps again."""
    import shutil

    web, full_out, _, _ = full_crawl
    out = tmp_path / "out"
    shutil.copytree(full_out, out)
    domains, hosts = write_inputs(tmp_path, web)
    n0 = len(web.log)
    resumed = run_crawl(out, domains, hosts, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {(h.host, h.path) for h in web.log[n0:] if h.path not in NOT_PAGES} == set()
    assert _doc_keys(out) == _doc_keys(full_out)


@pytest.mark.parametrize("stop_after", [None, 5], ids=["one-run", "stopped-and-resumed"])
def test_a_page_naming_a_duplicate_page_rel_canonical_is_a_duplicate_too(tmp_path: Path, stop_after) -> None:
    """/report's text was already stored as /copy, so /report is dropped as a duplicate; its print version,
    naming /report rel=canonical, is then a duplicate of /copy too. It was stored under /report with its own
    text (title "Report (print)"): two documents for one page, as a resumed crawl of the fixture web did
    when the identical /reports/inflation-copy finished extraction before /reports/inflation."""
    web, out = FixtureWeb(), tmp_path / "out"
    report = article("Report", paras("inflation"), links=["/report-print"])
    copy_done = '"done": "http://www.dup.org/copy"'

    def report_once_copy_is_stored(_: int) -> Resp:  # the order a race gave: /copy kept, /report its duplicate
        deadline = time.monotonic() + HELD_S
        while time.monotonic() < deadline and copy_done not in (out / "job" / "frontier.jsonl").read_text():
            time.sleep(0.02)
        return Resp(body=report)

    print_head = '<link rel="canonical" href="http://www.dup.org/report">'
    web.site("www.dup.org", {
        "/": page("dup home", ["/copy"]),
        "/copy": Resp(body=article("Report", paras("inflation"), links=["/report"])),
        "/report": report_once_copy_is_stored,
        "/report-print": Resp(body=article("Report (print)", paras("inflation"), extra_head=print_head)),
    })  # fmt: skip
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.dup.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        args = (tmp_path / "domains.txt", tmp_path / "hosts.txt", "--flush-docs", "1")
        # /report is held until /copy is stored (seconds under load): past a 2 s timeout it was fetched again
        one_at_a_time = {"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_TIMEOUT": HELD_S + 10}
        if stop_after:  # stopped at /report's response (after robots.txt, sitemap.xml, / and /copy): its print
            # version is fetched by the resumed run, which knows /report as a duplicate only from the job log
            first = run_crawl(out, *args, settings={**one_at_a_time, "CLOSESPIDER_PAGECOUNT": stop_after})
            assert first.returncode == 3, first.stderr[-2000:]
            assert web.count("www.dup.org", "/report") == 1 and not web.count("www.dup.org", "/report-print")
        proc = run_crawl(out, *args, *(["--resume"] if stop_after else []), settings=one_at_a_time)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert web.count("www.dup.org", "/report-print") == 1
        assert {d["url"]: d["title"] for d in read_docs(out)} == {
            "http://www.dup.org/": "Dup Home", "http://www.dup.org/copy": "Report"}  # fmt: skip
        (group,) = json.loads((out / "report.json").read_text())["near_duplicate_groups"]
        assert group["kept"] == "http://www.dup.org/copy"
        assert group["duplicates"] == ["http://www.dup.org/report", "http://www.dup.org/report-print"]
    finally:
        web.stop()


def test_a_page_redirected_to_a_url_naming_it_rel_canonical_is_done_when_dropped(tmp_path: Path) -> None:
    """/a redirects to /a-session, whose rel=canonical names /a again, and is dropped (noindex). /a is the URL
    the fetch asked for, so it is done: a resume asked for it again and counted it a second time (as a
    duplicate of the done /a-session), once more for every resume."""
    web, out = FixtureWeb(), tmp_path / "out"
    head = '<link rel="canonical" href="http://www.dup.org/a"><meta name="robots" content="noindex">'
    web.site("www.dup.org", {
        "/": page("dup home", ["/a"]),
        "/a": redirect("/a-session"),
        "/a-session": Resp(body=article("A", paras("inflation"), extra_head=head)),
    })  # fmt: skip
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.dup.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        args = (tmp_path / "domains.txt", tmp_path / "hosts.txt")
        for extra in ((), ("--resume",)):
            proc = run_crawl(out, *args, *extra)
            assert proc.returncode == 0, proc.stderr[-3000:]
        assert web.count("www.dup.org", "/a") == 1
        skips = json.loads((out / "report.json").read_text())["skips"]
        assert (skips["noindex"], skips["duplicate"]) == (1, 0)
    finally:
        web.stop()


def test_a_page_redirected_to_a_duplicate_naming_it_rel_canonical_leaves_no_print_version_stored(
        tmp_path: Path) -> None:  # fmt: skip
    """/a redirects to /a-session, which names /a rel=canonical: /a-session is /a's own page. Its text was
    already stored as /copy, so /a is a duplicate, and so is /a's print version: it was stored under /a with
    its own text (two documents for one page), as if /a's own page had not been seen."""
    web, out = FixtureWeb(), tmp_path / "out"
    copy_done = '"done": "http://www.dup.org/copy"'
    canonical = '<link rel="canonical" href="http://www.dup.org/a">'
    session = article("Report", paras("inflation"), extra_head=canonical, links=["/a-print"])

    def session_once_copy_is_stored(_: int) -> Resp:
        deadline = time.monotonic() + HELD_S
        while time.monotonic() < deadline and copy_done not in (out / "job" / "frontier.jsonl").read_text():
            time.sleep(0.02)
        return Resp(body=session)

    web.site("www.dup.org", {
        "/": page("dup home", ["/copy"]),
        "/copy": Resp(body=article("Report", paras("inflation"), links=["/a"])),
        "/a": redirect("/a-session"),
        "/a-session": session_once_copy_is_stored,
        "/a-print": Resp(body=article("Report (print)", paras("inflation"), extra_head=canonical)),
    })  # fmt: skip
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.dup.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        proc = run_crawl(out, tmp_path / "domains.txt", tmp_path / "hosts.txt", "--flush-docs", "1",
                         settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_TIMEOUT": HELD_S + 10})  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert web.count("www.dup.org", "/a-print") == 1
        assert sorted(d["url"] for d in read_docs(out)) == ["http://www.dup.org/", "http://www.dup.org/copy"]
    finally:
        web.stop()


def test_a_crawl_stopped_for_low_disk_space_logs_what_it_settled_and_resumes_without_refetching(
        tmp_path: Path) -> None:  # fmt: skip
    """Under DRSEARCH_MIN_FREE_BYTES the crawl stops cleanly, its room kept for its last shard, log and report;
    but from the check on nothing more went to the frontier log, so /start, redirected to the /home stored
    then, was never done: --resume fetched it again and counted it a duplicate of /home."""
    web, out = FixtureWeb(), tmp_path / "out"
    web.site("www.low.org", {"/": redirect("/start"), "/start": redirect("/home"), "/home": page("home")})
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.low.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        args = (tmp_path / "domains.txt", tmp_path / "hosts.txt")
        first = run_crawl(out, *args, settings={"DRSEARCH_MIN_FREE_BYTES": 2**62})  # "full" at the first page
        assert first.returncode == 2 and "--resume" in first.stderr, first.stderr[-2000:]
        assert [d["url"] for d in read_docs(out)] == ["http://www.low.org/home"]
        resumed = run_crawl(out, *args, "--resume")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert (web.count("www.low.org", "/"), web.count("www.low.org", "/start")) == (1, 1)
        assert json.loads((out / "report.json").read_text())["skips"]["duplicate"] == 0
    finally:
        web.stop()
