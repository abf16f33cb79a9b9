"""Search speed per retrieval mode through SearchPipeline, side by side in one run.

    python bench/modes_latency.py --index IDX [--queries 1000]

Single-query latency (p50/p95 over 300 queries) and the throughput of one batch of
1,000 queries at k=10, for bm25, dense and hybrid on the same index.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import latencies_ms, load_queries, qps, table

from ranker.pipeline import SearchOptions, SearchPipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args()
    pipeline = SearchPipeline.open(args.index)
    queries = (load_queries() * 2)[: args.queries]
    pipeline.rank(queries[:64], SearchOptions(k=10))  # warm-up: model, JIT, filter table
    rows = []
    for mode in ("bm25", "dense", "hybrid"):
        options = SearchOptions(k=10, mode=mode)
        p50, p95 = latencies_ms(lambda q: pipeline.rank([q], options), queries[:300])
        batch = qps(lambda qs: pipeline.rank(qs, options), queries, repeats=2)
        rows.append([mode, f"{p50:.1f}", f"{p95:.1f}", f"{batch:,.0f}"])
    print(f"index {pipeline.version} ({pipeline.manifest.counts['passages']:,} passages), k=10, serving defaults\n")
    print(table(["mode", "single p50 ms", "single p95 ms", f"batch of {len(queries)} QPS"], rows))
    pipeline.close()


if __name__ == "__main__":
    main()
