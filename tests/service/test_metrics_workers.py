"""`/metrics` of `serve --workers N`: whichever worker answers a scrape, counters cover every worker and
never go back, also when a worker is killed and replaced. A real `drsearch serve` on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import remove_orphaned_shared_dirs
from tests.conftest import REPO, finished_pid
from tests.service.test_serve_recovery import free_port, healthy, stop, wait_until, workers_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def scrape(base: str) -> dict[str, list]:
    """One scrape on a new connection (the kernel hands each to whichever worker accepts first)."""
    with httpx.Client(base_url=base, timeout=10) as c:
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    return {family.name: family.samples for family in text_string_to_metric_families(r.text)}


def metrics_requests(families: dict[str, list]) -> float:
    return sum(s.value for s in families["drsearch_http_requests"]
               if s.name.endswith("_total") and s.labels == {"endpoint": "/metrics", "method": "GET", "status": "200"})  # fmt: skip


def worker_pids(families: dict[str, list]) -> set[int]:
    return {int(s.labels["pid"]) for s in families["process_resident_memory_bytes"]}


def test_counters_cover_every_worker_and_survive_a_worker_restart(tiny_bm25_root):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DRSEARCH_SERVE_WARMUP": "false", "HF_HUB_OFFLINE": "1"}
    master = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--index", str(tiny_bm25_root), "--port", str(port),
         "--workers", "2", "--threads", "1"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: healthy(base) and len(workers_of(master.pid)) == 2, 120, "server did not start")
        counts = [metrics_requests(scrape(base)) for _ in range(20)]
        assert counts == sorted(counts), counts  # a counter never goes back, whichever worker answered
        assert counts[-1] >= counts[0] + 19, counts  # and counts the scrapes both workers answered
        wait_until(lambda: len(worker_pids(scrape(base))) == 2, 60, "both workers' process metrics not shown")

        victim = min(workers_of(master.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(workers_of(master.pid)) == 2 and victim not in workers_of(master.pid), 60,
                   "killed worker not replaced")  # fmt: skip
        wait_until(lambda: healthy(base), 60, "server not answering after the worker restart")
        after = scrape(base)
        assert victim not in worker_pids(after)  # a dead worker's process metrics are gone
        assert metrics_requests(after) >= counts[-1]  # its requests still counted
    finally:
        stop(master)


def test_only_the_directories_of_masters_no_longer_running_are_removed(tmp_path):
    dead_pid = finished_pid()
    dead = tmp_path / f"drsearch-metrics-{dead_pid}-abc"
    live = tmp_path / f"drsearch-metrics-{os.getpid()}-def"
    unnamed = tmp_path / "drsearch-metrics-x1y2z3"  # no master pid in its name: not known to be orphaned
    for folder in (dead, live, unnamed):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"\0")
    (tmp_path / f"drsearch-metrics-{dead_pid}-file").write_text("not a directory")
    assert remove_orphaned_shared_dirs(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and unnamed.exists()
    assert (tmp_path / f"drsearch-metrics-{dead_pid}-file").exists()
