"""Search API throughput, side by side, on one index (hybrid, k=10).

  (a) in-process `pipeline.batch_search` of all queries in one call (and, for reference, in --batch batches)
  (b) the same batches through `POST /v1/search`
  (c) --clients concurrent clients sending single queries, micro-batching on and off

The client runs on the same machine as the servers, so (b) and (c) send their requests as plain
HTTP/1.1 on asyncio streams (--client raw): httpx's client spends ~2-3 ms of CPU a request, taken
from the cores the server needs, which both slows the server and starves its micro-batches of
company; (b)'s one client waits for each answer, so its own CPU adds to every call.

Servers run as separate uvicorn processes (cache off, so every query is computed). Before anything
is timed, each JVM that takes part (this process's, each server's) ranks --warmup queries, since the
JVM compiles Lucene's search code (and the server's snippet code) only after ~10-20k queries: timed
sooner, a side with fewer queries behind it pays more of that compiling. Each side warms in the
shapes it is timed in (this process: batches of 1,000 and of --batch), and this process ranks under
a server worker's thread policy (`backends.threads.set_budget`). Both servers (micro-batching
on and off) run from the start; each scenario is then timed over --rounds passes, taken in turn, and
the best pass of each is reported: turns keep a drift in the machine's speed from favouring any.
Prints a markdown table of QPS and p50/p99 latency per call.

    python bench/service_throughput.py indexes/demo                 # 1,000 SciFact queries
    python bench/service_throughput.py indexes/demo --n 64 --clients 8 --warmup 200 --rounds 1   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import DATA, REPO

sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_queries(path: Path, n: int) -> list[str]:
    out = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    while len(out) < n:  # repeat if the file is short (the cache is off, so repeats are recomputed)
        out += out
    return out[:n]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def row(name: str, n_queries: int, seconds: float, latencies_s: list[float]) -> dict:
    return {
        "scenario": name, "queries": n_queries, "calls": len(latencies_s), "seconds": seconds,
        "qps": n_queries / seconds if seconds else float("nan"),
        "p50_ms": pct(latencies_s, 50) * 1000, "p99_ms": pct(latencies_s, 99) * 1000,
    }  # fmt: skip


def bench_in_process(index: Path, queries: list[str], batch: int, k: int, mode: str) -> dict:
    from ranker.pipeline import SearchOptions, SearchPipeline
    from ranker.settings import SearchSettings

    pipeline = SearchPipeline.open(index, SearchSettings())
    options = SearchOptions(k=k, mode=mode)
    pipeline.batch_search(queries[:batch], options)  # warm-up: model, filter table, JIT
    lat = []
    t0 = time.perf_counter()
    for i in range(0, len(queries), batch):
        s = time.perf_counter()
        pipeline.batch_search(queries[i : i + batch], options)
        lat.append(time.perf_counter() - s)
    seconds = time.perf_counter() - t0
    pipeline.close()
    return row(f"(a) in-process batch_search, batches of {batch}", len(queries), seconds, lat)


class Server:
    """`uvicorn service.app:app_from_env --factory` in a subprocess on a free port."""

    def __init__(self, index: Path, *, batching: bool, threads: int, window_ms: float, torch_threads: int,
                 repo: Path = REPO, **settings_changes: object):  # fmt: skip
        """`repo`: the checkout whose code serves (A/B runs); `settings_changes`: other ServiceSettings fields."""
        from service.settings import ServiceSettings

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        fields = dict(index=index.resolve(), port=self.port, batching=batching, threads=threads,
                      batch_window_ms=window_ms, cache_size=0, torch_threads=torch_threads)  # fmt: skip
        settings = ServiceSettings(**{**fields, **settings_changes})
        env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(repo)}
        cmd = [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode} during startup")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("server did not become ready in 300 s")
            time.sleep(0.25)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def warm_in_process(index: Path, queries: list[str], n: int, batch: int, k: int, mode: str) -> None:
    """Rank `n` queries in this process (the JVM's JIT, model and page cache): half in batches of
    1,000, half in batches of `batch`, the two sizes timed here. Batches of 32 run code that batches
    of 1,000 leave cold: after 6,000 queries in batches of 1,000, the JVM's compiler still spent
    0.65 s on the first 1,000 queries in batches of 32, and 0.1 s on the next (per-thread CPU)."""
    from ranker.pipeline import SearchOptions, SearchPipeline
    from ranker.settings import SearchSettings

    pipeline = SearchPipeline.open(index, SearchSettings())
    options = SearchOptions(k=k, mode=mode)
    for size, share in ((1000, n // 2), (batch, n - n // 2)):
        for start in range(0, share, size):
            pipeline.batch_search(cycled(queries, start, min(size, share - start)), options)
    pipeline.close()


def warm_server(url: str, queries: list[str], n: int, batch: int, clients: int, k: int, mode: str,
                client: str = "raw") -> None:  # fmt: skip
    """POST `n` queries to the server in calls of `batch`, as (b) sends them, then `queries` once as
    single queries from `clients` connections, as (c) sends them."""
    with httpx.Client(base_url=url, timeout=300) as c:
        for start in range(0, n, batch):
            body = {"queries": cycled(queries, start, min(batch, n - start)), "k": k, "mode": mode}
            c.post("/v1/search", json=body).raise_for_status()
    bench_http_concurrent(url, queries, clients, k, mode, "warm-up", client)


def cycled(queries: list[str], start: int, count: int) -> list[str]:
    """`count` queries from position `start` of `queries` repeated end to end."""
    return [queries[(start + i) % len(queries)] for i in range(count)]


def bench_http_batches(url: str, queries: list[str], batch: int, k: int, mode: str, client: str = "raw") -> dict:
    """One client sending the queries in calls of `batch`, each as soon as the previous answer is in
    (`client` as for (c): with one client in turn with the server, its own CPU adds to every call)."""
    send = _SENDERS[client]

    async def run() -> tuple[float, list[float]]:
        async with send(url, 1) as post:
            calls = [{"queries": queries[i : i + batch], "k": k, "mode": mode} for i in range(0, len(queries), batch)]

            async def call(body: dict) -> None:  # a failed call (e.g. a misconfigured server) stops the bench
                if await post(body) != 200:
                    raise SystemExit(f"POST /v1/search to {url} failed")

            await call(calls[0])  # warm-up
            lat: list[float] = []
            t0 = time.perf_counter()
            for body in calls:
                s = time.perf_counter()
                await call(body)
                lat.append(time.perf_counter() - s)
            return time.perf_counter() - t0, lat

    seconds, lat = asyncio.run(run())
    return row(f"(b) POST /v1/search, batches of {batch}", len(queries), seconds, lat)


def bench_http_concurrent(url: str, queries: list[str], clients: int, k: int, mode: str, label: str,
                          client: str = "raw") -> dict:  # fmt: skip
    """`clients` connections, each sending the next single query as soon as its answer is in.
    `client` "raw": plain HTTP/1.1 on asyncio streams (~0.2 ms of CPU a request); "httpx": httpx's
    AsyncClient (~2-3 ms a request, taken from the two cores the server runs on)."""
    send = _SENDERS[client]

    async def run() -> tuple[float, list[float], int]:
        todo = list(reversed(queries))
        lat: list[float] = []
        errors = 0
        async with send(url, clients) as post:
            await asyncio.gather(*(post({"query": q, "k": k, "mode": mode}) for q in queries[:clients]))  # warm-up

            async def worker() -> None:
                nonlocal errors
                while todo:
                    q = todo.pop()
                    s = time.perf_counter()
                    status = await post({"query": q, "k": k, "mode": mode})
                    lat.append(time.perf_counter() - s)
                    errors += status != 200

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return time.perf_counter() - t0, lat, errors

    seconds, lat, errors = asyncio.run(run())
    if errors:
        print(f"warning: {errors} failed requests in {label}", file=sys.stderr)
    return row(f"(c) {clients} concurrent clients, single queries, micro-batching {label}", len(queries), seconds, lat)


@contextlib.asynccontextmanager
async def _httpx_sender(url: str, connections: int):
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:

        async def post(body: dict) -> int:
            return (await c.post("/v1/search", json=body)).status_code

        yield post


@contextlib.asynccontextmanager
async def _raw_sender(url: str, connections: int):
    """POST /v1/search over a pool of kept-alive HTTP/1.1 connections, each used by one request at a time."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    idle: asyncio.Queue = asyncio.Queue()
    streams = [await asyncio.open_connection(host, int(port)) for _ in range(connections)]
    for stream in streams:
        idle.put_nowait(stream)

    async def post(body: dict) -> int:
        reader, writer = await idle.get()
        try:
            data = json.dumps(body).encode()
            writer.write(b"POST /v1/search HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(data), data))  # fmt: skip
            head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            length = next(int(h.split(b":", 1)[1]) for h in head if h.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            return int(head[0].split(b" ", 2)[1])
        finally:
            idle.put_nowait((reader, writer))

    try:
        yield post
    finally:
        for _, writer in streams:
            writer.close()


_SENDERS = {"raw": _raw_sender, "httpx": _httpx_sender}  # --client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path, help="index ROOT (e.g. built from SciFact)")
    ap.add_argument("--queries", type=Path, default=DATA / "scifact" / "queries.jsonl")
    ap.add_argument("--n", type=int, default=1000, help="queries per scenario")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("--threads", type=int, default=4, help="server threads for pipeline work")
    ap.add_argument("--window-ms", type=float, default=3.0, help="micro-batching window")
    ap.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads, in-process and servers")
    ap.add_argument("--rounds", type=int, default=3, help="passes of each scenario, taking turns; the best of each is reported")
    ap.add_argument("--warmup", type=int, default=10000,
                    help="queries each JVM (this process's, each server's) ranks before anything is timed")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="(b) and (c)'s client: plain HTTP/1.1 on asyncio streams, or httpx (which spends ~10x the CPU a request)")
    ap.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = ap.parse_args()

    queries = load_queries(args.queries, args.n)
    from backends.threads import set_budget, worker_budget

    # The in-process side runs under a server worker's thread policy (before torch or FAISS load):
    # with OpenMP's default, FAISS's threads spin after each search, and batches of 32 ranked with
    # their vectors given took 0.43-0.45 s per 1,000 queries against 0.39-0.40 s under the policy.
    set_budget(worker_budget(1), torch_threads=args.torch_threads)
    # (a) as the acceptance figure defines it: one in-process batch of all queries; the
    # in-process run in --batch-sized batches is shown beside it for reference. Both servers run
    # from the start and are warmed alike; each round takes a pass of every scenario in turn, so a
    # machine whose speed drifts (other tenants of its caches) weighs on all of them alike; the
    # best pass of each is reported.
    servers = {on: Server(args.index, batching=on, threads=args.threads, window_ms=args.window_ms,
                          torch_threads=args.torch_threads) for on in (True, False)}  # fmt: skip
    try:
        warm_in_process(args.index, queries, args.warmup, args.batch, args.k, args.mode)
        for server in servers.values():
            warm_server(server.url, queries, args.warmup, args.batch, args.clients, args.k, args.mode, args.client)
        scenarios = [
            lambda: bench_in_process(args.index, queries, len(queries), args.k, args.mode),
            lambda: bench_http_batches(servers[True].url, queries, args.batch, args.k, args.mode, args.client),
            lambda: bench_http_concurrent(servers[True].url, queries, args.clients, args.k, args.mode, "on", args.client),
            lambda: bench_http_concurrent(servers[False].url, queries, args.clients, args.k, args.mode, "off", args.client),
            lambda: bench_in_process(args.index, queries, args.batch, args.k, args.mode),
        ]
        passes: list[list[dict]] = [[] for _ in scenarios]
        for _ in range(args.rounds):
            for scenario, done in zip(scenarios, passes):
                done.append(scenario())
        *rows, reference = [max(p, key=lambda r: r["qps"]) for p in passes]
    finally:
        for server in servers.values():
            server.stop()

    print(f"\nindex {args.index}, mode {args.mode}, k={args.k}, {len(queries)} queries per scenario, "
          f"{os.cpu_count()} CPUs, server threads {args.threads}, torch threads {args.torch_threads}, window {args.window_ms} ms, "
          f"{args.warmup} warm-up queries per JVM, each scenario best of {args.rounds} passes taken in turn, (b) and (c) client {args.client}\n")  # fmt: skip
    print("| scenario | queries | calls | QPS | p50 ms/call | p99 ms/call |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows + [reference]:
        print(f"| {r['scenario']} | {r['queries']} | {r['calls']} | {r['qps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    a, b, c_on, c_off = (r["qps"] for r in rows)
    print(f"\n(b)/(a) = {b / a:.2f} (target >= 0.8)   (c on)/(c off) = {c_on / c_off:.2f} (target >= 1.5)")
    # A round's passes run within a minute or two of each other: their ratios show how far the host's
    # drift moves the best-of figures above, and where (b) loses (the batch size in process, or the server).
    for name, top, bottom in (("(b)/(a)", 1, 0), ("(c on)/(c off)", 2, 3), (f"in process {args.batch} / {args.n:,}", 4, 0),
                              (f"(b) / in process {args.batch}", 1, 4)):  # fmt: skip
        print(f"each round's {name}: " + ", ".join(f"{t['qps'] / u['qps']:.2f}" for t, u in zip(passes[top], passes[bottom])))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
