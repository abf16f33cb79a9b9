"""One --out holds one running crawl: a second one, --resume or not, is refused before it touches anything."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from crawler.config import CrawlConfig
from tests.conftest import drsearch
from tests.crawler.conftest import REPO, TEST_SETTINGS, page, paras
from tests.crawler.fixture_web import FixtureWeb, Resp, article
from tests.service.test_cli import assert_one_line_error


def test_a_second_crawl_on_a_running_out_is_refused(tmp_path: Path) -> None:
    web = FixtureWeb()
    links = [f"/p{i}" for i in range(10)]
    pages = {p: Resp(body=article(f"Busy {p}", paras(f"busy page {p}"))) for p in links}
    released = threading.Event()

    def held(_: int) -> Resp:  # the crawl runs until the test has tried its second crawls
        released.wait(60)
        return pages["/p0"]

    web.site("www.busy.org", {"/": page("busy home", links), **pages, "/p0": held})
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.busy.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        out, job = tmp_path / "out", tmp_path / "out" / "job"
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--domains", str(tmp_path / "domains.txt"),
               "--host-map", str(tmp_path / "hosts.txt"), "--allow-private", "--quiet"]  # fmt: skip
        for k, v in {**TEST_SETTINGS, "CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_TIMEOUT": 60}.items():
            cmd += ["--set", f"{k}={json.dumps(v)}"]
        first = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not web.count("www.busy.org", "/p0") and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.05)
            for args in (["--resume"], []):
                second = drsearch("crawl", "--out", out, "--domains", tmp_path / "domains.txt", "--host-map",
                                  tmp_path / "hosts.txt", "--allow-private", "--quiet", *args, timeout=60)  # fmt: skip
                assert_one_line_error(second, f"--out {out} is in use by a running crawl (pid {first.pid})")
            assert first.poll() is None  # still running, its queue and marker untouched
            assert (job / "requests.queue").is_dir() and (job / "RUNNING").read_text() == str(first.pid)
            released.set()
            _, err = first.communicate(timeout=60)
            assert first.returncode == 0, err[-3000:]
        finally:
            released.set()
            if first.poll() is None:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
        assert sorted(h.path for h in web.log if h.path.startswith("/p")) == sorted(links)  # once each
        assert json.loads((out / "report.json").read_text())["docs"] == 1 + len(links)
    finally:
        web.stop()


def test_a_crawl_that_stores_nothing_says_why(tmp_path: Path) -> None:
    """Its folder holds nothing `index build` reads: the crawl said only 'finished: 0 documents'."""
    web = FixtureWeb()
    web.site("www.quiet.org", {"/": page("quiet home", [])})
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.quiet.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        settings = [arg for k, v in TEST_SETTINGS.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
        proc = drsearch("crawl", "--out", tmp_path / "out", "--domains", tmp_path / "domains.txt", "--host-map",
                        tmp_path / "hosts.txt", "--quiet", *settings, timeout=120)  # no --allow-private: 127.0.0.1 refused
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stderr.strip().splitlines() == [
            "drsearch: warning: the crawl stored no document (pages skipped: private_address 2); loopback and private "
            f"addresses need --allow-private; see {tmp_path / 'out' / 'report.json'}"]  # fmt: skip
        assert web.log == []
    finally:
        web.stop()


@contextlib.contextmanager
def _crawled_beside(tmp_path: Path, *, resume: bool) -> Iterator[tuple[CrawlConfig, FixtureWeb]]:
    """A crawl's config made (its checks passed, as while it waits for the lock), then another crawl of
    the same one-page site run to its end into the same new --out; yields (that config, the site)."""
    from crawler.run import make_config

    web = FixtureWeb()
    web.site("www.lone.org", {"/": Resp(body=article("Lone page", paras("lone page")))})
    web.start()
    try:
        (tmp_path / "domains.txt").write_text("http://www.lone.org/\n")
        (tmp_path / "hosts.txt").write_text(web.host_map_text())
        out = tmp_path / "out"
        settings = [f"{k}={json.dumps(v)}" for k, v in TEST_SETTINGS.items()]
        waiting = make_config(out, domains_file=tmp_path / "domains.txt", host_map_file=tmp_path / "hosts.txt",
                              allow_private=True, quiet=True, settings=settings, resume=resume)  # fmt: skip
        assert not waiting.resume  # nothing to resume yet
        first = drsearch("crawl", "--out", out, "--domains", tmp_path / "domains.txt", "--host-map", tmp_path / "hosts.txt",
                         "--allow-private", "--quiet", *(a for s in settings for a in ("--set", s)), timeout=120)  # fmt: skip
        assert first.returncode == 0, first.stderr[-3000:]
        yield waiting, web
    finally:
        web.stop()


def test_a_crawl_that_ran_while_this_one_waited_for_the_lock_is_not_crawled_over(tmp_path: Path) -> None:
    """Two crawls started together into a new --out both passed the checks made before the lock; the one
    that waited took the lock once the other finished, and crawled afresh over its output: a duplicate
    document, two runs numbered 1, and an `index build` that refused the folder."""
    import pytest

    from crawler.run import run_crawl
    from indexer.errors import ConfigError

    with _crawled_beside(tmp_path, resume=False) as (waiting, web):
        shards, requests = sorted((waiting.out_dir / "docs").glob("part-*")), len(web.log)
        assert len(shards) == 1
        with pytest.raises(ConfigError, match="already holds a crawl: pass --resume"):
            run_crawl(waiting)
        assert sorted((waiting.out_dir / "docs").glob("part-*")) == shards and len(web.log) == requests


def test_a_resume_asked_for_while_another_crawl_filled_the_folder_resumes_it(tmp_path: Path) -> None:
    """`--resume` on a new --out is a fresh crawl; if a crawl started beside it filled the folder while
    it waited for the lock, it was told to pass the --resume it had been given."""
    from crawler.run import run_crawl

    with _crawled_beside(tmp_path, resume=True) as (waiting, _web):
        report = run_crawl(waiting)
        assert report["runs"] == 2 and report["docs"] == 1 and len(list((waiting.out_dir / "docs").glob("part-*"))) == 1
