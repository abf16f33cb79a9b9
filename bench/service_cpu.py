"""Where a server's CPU goes under concurrent single queries, and A/B runs of servers side by side.

Each SIDE is a server: `on` or `off` (micro-batching), optionally `@CHECKOUT` (the code that serves,
e.g. a `git worktree` of an older commit) and `,field=value` ServiceSettings changes:

    python bench/service_cpu.py IDX on off                                  # batching on vs off
    python bench/service_cpu.py IDX on@/tmp/old on                          # an older checkout vs this one
    python bench/service_cpu.py IDX on on,batch_max_inflight=3              # a setting vs the default

All servers run from the start and are warmed alike (--warmup queries in 32-query calls, then one
pass as timed); then --rounds passes of (c) (service_throughput.py: --clients connections, each
sending the next single query when its answer is in), the servers taking turns. Per pass: queries
per second, the server process's CPU time per query (from /proc, threads that ended included) and
its event loop thread's share (the HTTP stack, FastAPI, the middleware, the batcher).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from common import DATA, REPO
from service_throughput import Server, bench_http_concurrent, load_queries, warm_server

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of process `pid` (all its threads, ended ones included) or of its thread `tid`."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def parse_side(spec: str) -> tuple[bool, Path, dict[str, str]]:
    head, *changes = spec.split(",")
    mode, _, repo = head.partition("@")
    if mode not in ("on", "off"):
        raise SystemExit(f"side {spec!r}: starts with 'on' or 'off' (micro-batching)")
    fields = dict(change.split("=", 1) for change in changes)
    return mode == "on", Path(repo) if repo else REPO, fields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path, help="index ROOT (e.g. built from SciFact)")
    ap.add_argument("sides", nargs="+", help="on|off[@CHECKOUT][,field=value...]")
    ap.add_argument("--queries", type=Path, default=DATA / "scifact" / "queries.jsonl")
    ap.add_argument("--n", type=int, default=1000, help="queries per pass")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=6000, help="queries each server ranks before anything is timed")
    args = ap.parse_args()

    queries = load_queries(args.queries, args.n)
    servers = []
    try:
        for spec in args.sides:
            batching, repo, fields = parse_side(spec)
            servers.append((spec, Server(args.index, batching=batching, threads=4, window_ms=3.0, torch_threads=1,
                                         repo=repo, **fields)))  # fmt: skip
        for _, server in servers:
            warm_server(server.url, queries, args.warmup, 32, args.clients, 10, "hybrid")
        qps: dict[str, list[float]] = {spec: [] for spec, _ in servers}
        for round_ in range(args.rounds):
            for spec, server in servers:
                pid = server.proc.pid
                process, loop, t0 = cpu_seconds(pid), cpu_seconds(pid, pid), time.perf_counter()
                row = bench_http_concurrent(server.url, queries, args.clients, 10, "hybrid", spec)
                process, loop = cpu_seconds(pid) - process, cpu_seconds(pid, pid) - loop
                qps[spec].append(row["qps"])
                served = args.n + args.clients  # bench_http_concurrent's untimed warm-up query per client included
                print(f"round {round_}  {spec:40s} {row['qps']:6.1f} q/s  server CPU {process / served * 1000:5.2f} ms/query"
                      f" (event loop {loop / served * 1000:4.2f})  p50 {row['p50_ms']:.0f} ms  wall {time.perf_counter() - t0:.1f} s",
                      flush=True)  # fmt: skip
    finally:
        for _, server in servers:
            server.stop()
    for spec, values in qps.items():
        print(f"{spec:40s} best {max(values):6.1f}  median {statistics.median(values):6.1f} q/s")


if __name__ == "__main__":
    main()
