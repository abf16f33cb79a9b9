"""CPU time per query of the query encoder and of hybrid `batch_search`, in process, by batch size:
what batching can save at most, before any server adds its own cost per request.

    python bench/batch_cpu.py IDX                    # 1,000 SciFact queries; batches of 1, 8, 16, 32; 2 rounds

Process CPU (all threads, getrusage) and wall time per query; the thread budget is the machine's cores.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from common import DATA
from service_throughput import load_queries


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path, help="index ROOT (e.g. built from SciFact)")
    ap.add_argument("--queries", type=Path, default=DATA / "scifact" / "queries.jsonl")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--sizes", default="1,8,16,32", help="batch sizes, comma-separated")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from backends.threads import cores, set_budget

    set_budget(cores())
    from ranker.pipeline import SearchOptions, SearchPipeline

    queries = load_queries(args.queries, args.n)
    pipeline = SearchPipeline.open(args.index)
    options = SearchOptions(k=10, mode="hybrid")
    for _ in range(3):  # warm-up: model, JIT, page cache
        pipeline.batch_search(queries, options)
    work = {"encode": lambda batch: pipeline.encode(batch), "search": lambda batch: pipeline.batch_search(batch, options)}
    print("| round | batch | stage | wall ms/query | CPU ms/query |\n|---:|---:|---|---:|---:|")
    for round_ in range(args.rounds):
        for size in (int(s) for s in args.sizes.split(",")):
            for stage, run in work.items():
                cpu, t0 = cpu_seconds(), time.perf_counter()
                for start in range(0, len(queries), size):
                    run(queries[start : start + size])
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu
                print(f"| {round_} | {size} | {stage} | {wall / len(queries) * 1000:.2f} | {cpu / len(queries) * 1000:.2f} |", flush=True)
    pipeline.close()


if __name__ == "__main__":
    main()
