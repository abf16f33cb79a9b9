"""What hybrid search costs beyond encoding the queries, side by side in one run.

    python bench/hybrid_overhead.py --index IDX [--queries 1000] [--rounds 3] [--warmup 20000]

(a) the index's query encoder alone (`dense.encode`, the batch-invariant path) and (b)
`SearchPipeline.rank` hybrid end to end at serving defaults (k=10, k0=100, convex fusion,
authority prior, per-document collapse), same queries: batch throughput (interleaved rounds, best
round) and single-query p50. Target: (b)/(a) >= 0.75 in throughput, p50(b) <= 1.3 x p50(a).

Both are measured warm, as a serving process runs: first `--warmup` queries are ranked, since the
JVM compiles Lucene's search code only after ~10-20k queries (the BM25 leg runs ~2x slower before).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import load_queries, qps, table

from backends.threads import cores, set_budget
from ranker.pipeline import SearchOptions, SearchPipeline


def p50_ms(fn, queries: list[str]) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=20000, help="queries ranked before measuring (JIT warm-up)")
    args = ap.parse_args()
    set_budget(cores())
    pipeline = SearchPipeline.open(args.index)
    queries = (load_queries() * 2)[: args.queries]
    options = SearchOptions(k=10, mode="hybrid")
    warm = (queries * (1 + args.warmup // max(1, len(queries))))[: max(64, args.warmup)]
    for start in range(0, len(warm), 1000):  # warm-up: model, the JVM's JIT, filter table
        pipeline.rank(warm[start : start + 1000], options)
    engines = {
        "(a) query encoder alone": lambda qs: pipeline.dense.encode(qs),
        "(b) SearchPipeline.rank hybrid, end to end": lambda qs: pipeline.rank(qs, options),
    }
    best = dict.fromkeys(engines, 0.0)
    single = dict.fromkeys(engines, float("inf"))
    for _ in range(args.rounds):
        for name, fn in engines.items():
            best[name] = max(best[name], qps(fn, queries, repeats=1))
            single[name] = min(single[name], p50_ms(lambda q: fn([q]), queries[: args.singles]))
    a, b = engines
    encoder = getattr(pipeline.manifest.dense, "encoder", "-")
    pipeline.close()
    print(f"index {args.index} (encoder {encoder}), {len(queries)} queries, {cores()} threads, "
          f"best of {args.rounds} interleaved rounds\n")
    print(table(["engine", "queries/s", "single p50 ms"],
                [[n, f"{best[n]:,.1f}", f"{single[n]:.1f}"] for n in engines]))  # fmt: skip
    print(f"\nthroughput (b)/(a) = {best[b] / best[a]:.2f} (target >= 0.75); "
          f"p50 (b)/(a) = {single[b] / single[a]:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
