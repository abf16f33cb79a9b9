"""Reliability under hostile and heavy load (issue 16), loopback only, bounded in time.

Two runs against a fresh `uvicorn service.app:app_from_env` process on 127.0.0.1 (one worker, cache
off so every query is computed), each --seconds long:

  baseline   --clients ordinary clients (1 SciFact query, k=10, default mode) in a loop
  hostile    the same, plus --heavy clients sending the 64-query, k=100 request whose source filter
             matches nothing (`include_domains: ["nih.gov"]`) in a loop, and a hot reload (a new
             build version made `current`, then POST /v1/admin/reload) half-way through

Reports, per run: ordinary requests (count, success rate, status codes, p50/p99 of the successful
ones), heavy requests (status codes, time to answer p50/max), the worst answer time relative to the
server's deadline, and the server's RSS at start, peak and end (sampled from /proc every 0.2 s).

    python bench/reliability.py indexes/scifact                  # 60 s per run
    python bench/reliability.py indexes/scifact --seconds 10     # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import DATA, table  # noqa: E402

ADMIN = "bench-admin-key"
NOWHERE = ["nih.gov"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def rss_mb(pid: int) -> float:
    return memory_mb(pid)["VmRSS"]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and its parts: RssAnon (heaps: Python, JVM, torch, malloc arenas) and RssFile (pages of
    memory-mapped files: Lucene, FAISS, columns, model weights)."""
    out = dict.fromkeys(("VmRSS", "RssAnon", "RssFile"), float("nan"))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in out:
            out[key] = int(value.split()[0]) / 1024
    return out


class Server:
    def __init__(self, root: Path, deadline_ms: float, extra_env: dict[str, str]):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DRSEARCH_SERVE_INDEX": str(root), "DRSEARCH_ADMIN_KEY": ADMIN, "DRSEARCH_SERVE_CACHE_SIZE": "0",
               "DRSEARCH_SERVE_DEADLINE_MS": str(deadline_ms), "PYTHONPATH": str(REPO), **extra_env}  # fmt: skip
        env.pop("DRSEARCH_API_KEY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.samples.append(memory_mb(self.proc.pid))
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def client(base: str, body_of, until: float, log: list, kind: str, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=120.0) as c:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                r = await c.post("/v1/search", json=body_of(rng))
                status = r.status_code
                if status == 429:  # back off as told
                    await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 1.0) * rng.uniform(0.5, 1.0))
            except httpx.HTTPError:
                status = -1
            log.append((kind, status, time.monotonic() - started, started))


def new_version(root: Path) -> None:
    from tests.service.conftest import new_version as make

    make(root)


async def run(root: Path, args, heavy: bool) -> dict:
    server = Server(root, args.deadline_ms, {"DRSEARCH_SERVE_JVM_HEAP": args.jvm_heap} if args.jvm_heap else {})
    queries = [json.loads(x)["text"] for x in (DATA / "scifact" / "queries.jsonl").read_text().splitlines() if x.strip()]
    start = memory_mb(server.proc.pid)
    start_rss = start["VmRSS"]
    log: list = []
    reload_status = None
    try:
        until = time.monotonic() + args.seconds
        tasks = [asyncio.create_task(client(server.base, lambda rng: {"query": rng.choice(queries), "k": 10},
                                            until, log, "ordinary", i)) for i in range(args.clients)]  # fmt: skip
        if heavy:
            tasks += [asyncio.create_task(client(server.base, lambda rng: {"queries": rng.sample(queries, 64), "k": 100,
                                                 "include_domains": NOWHERE}, until, log, "heavy", 1000 + i))
                      for i in range(args.heavy)]  # fmt: skip
            await asyncio.sleep(args.seconds / 2)
            await asyncio.to_thread(new_version, root)
            async with httpx.AsyncClient(base_url=server.base, timeout=300) as c:
                reload_status = (await c.post("/v1/admin/reload", headers={"X-API-Key": ADMIN})).status_code
        await asyncio.gather(*tasks)
        end_rss = rss_mb(server.proc.pid)
    finally:
        server.stop()
    ordinary = [e for e in log if e[0] == "ordinary"]
    heavy_log = [e for e in log if e[0] == "heavy"]
    ok = [e[2] for e in ordinary if e[1] == 200]
    failed = [e for e in ordinary if e[1] not in (200, 429)]
    return {
        "run": "hostile" if heavy else "baseline", "ordinary": len(ordinary),
        "ordinary_ok": len(ok), "ordinary_failed": len(failed),
        "ordinary_status": dict(Counter(e[1] for e in ordinary)),
        "success_rate": len(ok) / len(ordinary) if ordinary else float("nan"),
        "p50_ms": pct(ok, 50) * 1000, "p99_ms": pct(ok, 99) * 1000,
        "heavy_status": dict(Counter(e[1] for e in heavy_log)),
        "heavy_p50_ms": pct([e[2] for e in heavy_log], 50) * 1000,
        "heavy_max_ms": max((e[2] for e in heavy_log), default=float("nan")) * 1000,
        "worst_vs_deadline": max((e[2] for e in log), default=0.0) / (args.deadline_ms / 1000),
        "rss_start_mb": start_rss, "rss_peak_mb": max([m["VmRSS"] for m in server.samples] or [start_rss]),
        "rss_end_mb": end_rss, "anon_start_mb": start["RssAnon"], "file_start_mb": start["RssFile"],
        "anon_peak_mb": max([m["RssAnon"] for m in server.samples] or [start["RssAnon"]]),
        "file_peak_mb": max([m["RssFile"] for m in server.samples] or [start["RssFile"]]),
        "reload_status": reload_status,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path, help="index ROOT (a private copy is used: the reload adds a build)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--heavy", type=int, default=4)
    ap.add_argument("--deadline-ms", type=float, default=10_000.0)
    ap.add_argument("--jvm-heap", default=None, help="DRSEARCH_SERVE_JVM_HEAP of the server (default: the setting's, 2g)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="drsearch-reliability-") as tmp:
        root = Path(tmp) / "index"
        shutil.copytree(args.index, root, symlinks=True)
        results = [asyncio.run(run(root, args, heavy=False)), asyncio.run(run(root, args, heavy=True))]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    base, hostile = results
    print(table(
        ["run", "ordinary", "success", "failed (not 429)", "p50 ms", "p99 ms", "heavy statuses", "heavy p50/max ms",
         "worst / deadline", "RSS start/peak/end MB", "anon start/peak MB", "file-backed start/peak MB"],
        [[r["run"], r["ordinary"], f"{r['success_rate']:.3f}", r["ordinary_failed"], f"{r['p50_ms']:.0f}",
          f"{r['p99_ms']:.0f}", r["heavy_status"] or "-", f"{r['heavy_p50_ms']:.0f} / {r['heavy_max_ms']:.0f}",
          f"{r['worst_vs_deadline']:.2f}", f"{r['rss_start_mb']:.0f} / {r['rss_peak_mb']:.0f} / {r['rss_end_mb']:.0f}",
          f"{r['anon_start_mb']:.0f} / {r['anon_peak_mb']:.0f}", f"{r['file_start_mb']:.0f} / {r['file_peak_mb']:.0f}"]
         for r in results],
    ))  # fmt: skip
    print(f"\nordinary p99 hostile/baseline: {hostile['p99_ms'] / base['p99_ms']:.2f}x; RSS peak/start: "
          f"{hostile['rss_peak_mb'] / hostile['rss_start_mb']:.2f}x; reload: HTTP {hostile['reload_status']}; "
          f"ordinary statuses (hostile): {hostile['ordinary_status']}")  # fmt: skip


if __name__ == "__main__":
    main()
