"""What hybrid search costs beyond encoding the queries, side by side in one run.

    python bench/hybrid_overhead.py --index IDX [--queries 1000] [--rounds 3] [--warmup 20000]

(a) the index's query encoder alone (`dense.encode`, the batch-invariant path) and (b)
`SearchPipeline.rank` hybrid end to end at serving defaults (k=10, k0=100, convex fusion,
authority prior, per-document collapse), same queries: batch throughput (interleaved rounds, best
round) and single-query p50 (each query timed on (a) and (b) in turn; best round of each, and each
round's ratio). Target: (b)/(a) >= 0.75 in throughput, p50(b) <= 1.3 x p50(a).

The queries repeat (SciFact's 1,109, after the warm-up), and the pipeline remembers each query's
languages (`indexer.language.query_languages`, which decides whether hybrid falls back to BM25):
(b') is (b) with that memory cleared before every call, so each query is new to it, as most of an
agent's queries are; the encoder keeps nothing between calls.

Both are measured warm, as a serving process runs: first `--warmup` queries are ranked, since the
JVM compiles Lucene's search code only after ~10-20k queries (the BM25 leg runs ~2x slower before).
A single search's fusion and authority order run compiled, and its dense leg scans the int8 copy of
a small exact index first, as in a serving process (`ranker.kernels`, `FaissSearcher.enable_prescan`,
which `serve` turns on); `--numpy-fusion` and `--full-scan` measure the paths without them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import load_queries, qps, table

from backends.threads import cores, set_budget
from indexer.language import query_languages
from ranker import kernels
from ranker.pipeline import SearchOptions, SearchPipeline


def p50s_side_by_side(engines: list, queries: list[str]) -> list[float]:
    """Single-query p50 (ms) of each engine, every query timed on each engine in turn (who goes
    first alternating), so that a change in the machine's speed weighs on every engine alike."""
    times: list[list[float]] = [[] for _ in engines]
    for i, q in enumerate(queries):
        turn = list(enumerate(engines))
        for e, fn in turn[::-1] if i % 2 else turn:
            t = time.perf_counter()
            fn([q])
            times[e].append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=20000, help="queries ranked before measuring (JIT warm-up)")
    ap.add_argument("--numpy-fusion", action="store_true", help="keep a single search's fusion in numpy (no ranker.kernels)")
    ap.add_argument("--full-scan", action="store_true", help="no int8 prescan: FAISS scans every vector for a single query")
    args = ap.parse_args()
    set_budget(cores())
    pipeline = SearchPipeline.open(args.index)
    if not args.numpy_fusion:
        kernels.enable()  # as a serving process does (service.validate)
    prescan = not args.full_scan and getattr(pipeline.dense, "enable_prescan", lambda: False)()
    queries = (load_queries() * 2)[: args.queries]
    options = SearchOptions(k=10, mode="hybrid")
    warm = (queries * (1 + args.warmup // max(1, len(queries))))[: max(64, args.warmup)]
    for start in range(0, len(warm), 1000):  # warm-up: model, the JVM's JIT, filter table
        pipeline.rank(warm[start : start + 1000], options)

    def new_queries(qs: list[str]):
        query_languages.cache_clear()
        return pipeline.rank(qs, options)

    engines = {
        "(a) query encoder alone": lambda qs: pipeline.dense.encode(qs),
        "(b) SearchPipeline.rank hybrid, end to end": lambda qs: pipeline.rank(qs, options),
        "(b') the same, each query new to the pipeline": new_queries,
    }
    best = dict.fromkeys(engines, 0.0)
    single = dict.fromkeys(engines, float("inf"))
    ratios = []
    a, b, new = engines
    encoder_beside = {b: float("inf"), new: float("inf")}  # (a)'s p50 in the passes beside (b) and (b')
    for _ in range(args.rounds):
        for name, fn in engines.items():
            best[name] = max(best[name], qps(fn, queries, repeats=1))
        # (b) and (b') each beside (a) on their own, so that neither runs in the other's wake.
        (a_ms, b_ms), (a2_ms, new_ms) = (p50s_side_by_side([engines[a], engines[name]], queries[: args.singles])
                                         for name in (b, new))  # fmt: skip
        ratios.append((b_ms / a_ms, new_ms / a2_ms))
        for name, ms, encoder_ms in ((b, b_ms, a_ms), (new, new_ms, a2_ms)):
            single[name] = min(single[name], ms)
            encoder_beside[name] = min(encoder_beside[name], encoder_ms)
    single[a] = min(encoder_beside.values())
    encoder = getattr(pipeline.manifest.dense, "encoder", "-")
    pipeline.close()
    fusion = "compiled (ranker.kernels)" if kernels.active() else "numpy"
    print(f"index {args.index} (encoder {encoder}), {len(queries)} queries, {cores()} threads, "
          f"single-search fusion {fusion}, dense scan {'int8 prescan' if prescan else 'full'}, "
          f"best of {args.rounds} interleaved rounds\n")
    print(table(["engine", "queries/s", "single p50 ms"],
                [[n, f"{best[n]:,.1f}", f"{single[n]:.2f}"] for n in engines]))  # fmt: skip
    for name, mark, which in ((b, "b", 0), (new, "b'", 1)):
        print(f"\nthroughput ({mark})/(a) = {best[name] / best[a]:.2f} (target >= 0.75); "
              f"p50 ({mark})/(a) = {single[name] / encoder_beside[name]:.2f} (target <= 1.3; each round's: "
              f"{', '.join(f'{r[which]:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
