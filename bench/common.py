"""Helpers shared by the benchmark scripts (timing, percentiles, data paths, tables)."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRSEARCH_DATA", REPO.parent / "shared" / "data"))


def load_queries(collection: str = "scifact", limit: int | None = None) -> list[str]:
    with open(DATA / collection / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh if line.strip()]
    return queries[:limit] if limit else queries


def latencies_ms(fn: Callable[[str], object], queries: list[str]) -> tuple[float, float]:
    """p50 and p95 of single-query latency in milliseconds."""
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def qps(fn: Callable[[list[str]], object], queries: list[str], repeats: int = 3) -> float:
    """Best-of-`repeats` throughput of one batch call over all `queries`."""
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        fn(queries)
        best = max(best, len(queries) / (time.perf_counter() - t))
    return best


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(args, row: dict) -> None:
    """Print a result row as a JSON line, and append it to `args.json` when that names a file."""
    print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
