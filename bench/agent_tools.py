"""Agent tool loop latency, side by side, on one served index (a `drsearch serve`-equivalent subprocess, cache off).

  (a) `POST /v1/fetch` of 16 indexed documents, each with its own `query`, in one call, against the
      reference of one `POST /v1/search` call for the same 16 queries (k=1: the ids fetched).
  (b) an agent-style session end to end through MCP (streamable HTTP at /mcp, the SDK's own client):
      search 4 queries -> fetch the top 3 documents with their query (max_chars 2000) -> search 4 more,
      against the same session over the plain HTTP endpoints. Sessions alternate between the two.

Prints a markdown table of p50 / p90 per call or session and the ratios.

    python bench/agent_tools.py indexes/demo                    # SciFact queries, 20 rounds / sessions
    python bench/agent_tools.py indexes/demo --rounds 5 --sessions 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from common import load_queries  # noqa: E402
from service_throughput import Server, pct  # noqa: E402


def fetch16(url: str, queries: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Per round: (search of 16 queries, fetch of their 16 top documents with the queries) latencies in s."""
    search_s, fetch_s = [], []
    with httpx.Client(base_url=url, timeout=300) as c:
        for r in range(rounds):
            qs = queries[16 * r : 16 * r + 16]
            t = time.perf_counter()
            found = c.post("/v1/search", json={"queries": qs, "k": 1}).raise_for_status().json()
            search_s.append(time.perf_counter() - t)
            items = [{"doc_id": res["hits"][0]["doc_id"], "query": q} for q, res in zip(qs, found["results"]) if res["hits"]]
            t = time.perf_counter()
            got = c.post("/v1/fetch", json={"items": items}).raise_for_status().json()
            fetch_s.append(time.perf_counter() - t)
            assert all(x["ok"] for x in got["results"]) and len(got["results"]) == 16
    return search_s, fetch_s


def _session_args(queries: list[str], s: int) -> tuple[list[str], list[str]]:
    return queries[8 * s : 8 * s + 4], queries[8 * s + 4 : 8 * s + 8]


async def mcp_session(client, first: list[str], second: list[str]) -> None:
    found = await client.call_tool("search", {"queries": first, "k": 5})
    assert not found.is_error, found.content
    results = found.structured_content["results"]
    items = [{"doc_id": r["hits"][0]["doc_id"], "query": r["query"], "max_chars": 2000} for r in results[:3] if r["hits"]]
    opened = await client.call_tool("fetch", {"items": items})
    assert not opened.is_error, opened.content
    again = await client.call_tool("search", {"queries": second, "k": 5})
    assert not again.is_error, again.content


def http_session(c: httpx.Client, first: list[str], second: list[str]) -> None:
    results = c.post("/v1/search", json={"queries": first, "k": 5}).raise_for_status().json()["results"]
    items = [{"doc_id": r["hits"][0]["doc_id"], "query": r["query"], "max_chars": 2000} for r in results[:3] if r["hits"]]
    c.post("/v1/fetch", json={"items": items}).raise_for_status()
    c.post("/v1/search", json={"queries": second, "k": 5}).raise_for_status()


async def sessions(url: str, queries: list[str], n: int) -> tuple[list[float], list[float]]:
    from mcp import Client

    mcp_s, http_s = [], []
    async with Client(f"{url}/mcp") as client:
        with httpx.Client(base_url=url, timeout=300) as c:
            for s in range(n):
                first, second = _session_args(queries, s)
                t = time.perf_counter()
                await mcp_session(client, first, second)
                mcp_s.append(time.perf_counter() - t)
                first, second = _session_args(queries, s + n)  # different queries: nothing served twice
                t = time.perf_counter()
                http_session(c, first, second)
                http_s.append(time.perf_counter() - t)
    return mcp_s, http_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("--collection", default="scifact", help="queries.jsonl under the data folder")
    ap.add_argument("--rounds", type=int, default=20, help="fetch-16 calls")
    ap.add_argument("--sessions", type=int, default=20, help="agent sessions per transport")
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    queries = load_queries(args.collection)
    need = max(16 * args.rounds, 16 * args.sessions)
    if len(queries) < need:
        raise SystemExit(f"{len(queries)} queries, need {need}")
    server = Server(args.index, batching=True, threads=args.threads, window_ms=3.0, torch_threads=1)
    try:
        httpx.post(server.url + "/v1/search", json={"queries": queries[-4:], "k": 5}, timeout=300)  # warm-up
        search_s, fetch_s = fetch16(server.url, queries, args.rounds)
        mcp_s, http_s = asyncio.run(sessions(server.url, queries[16 * args.rounds :] + queries, args.sessions))
    finally:
        server.stop()
    ms = lambda xs, p: pct(xs, p) * 1000  # noqa: E731
    print(f"index {args.index}, {os.cpu_count()} CPUs, {args.rounds} rounds, {args.sessions} sessions per transport, cache off\n")
    print("| call | p50 ms | p90 ms | p50 ratio |")
    print("|---|---:|---:|---:|")
    print(f"| search, 16 queries, k=1 (reference) | {ms(search_s, 50):.1f} | {ms(search_s, 90):.1f} | 1.00 |")
    print(f"| fetch, 16 indexed docs with query | {ms(fetch_s, 50):.1f} | {ms(fetch_s, 90):.1f} | "
          f"{pct(fetch_s, 50) / pct(search_s, 50):.2f} |")  # fmt: skip
    print(f"| session over HTTP: search 4 -> fetch 3 -> search 4 (reference) | {ms(http_s, 50):.1f} | {ms(http_s, 90):.1f} | 1.00 |")
    print(f"| same session over MCP (streamable HTTP) | {ms(mcp_s, 50):.1f} | {ms(mcp_s, 90):.1f} | "
          f"{pct(mcp_s, 50) / pct(http_s, 50):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
