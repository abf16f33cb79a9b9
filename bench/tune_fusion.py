"""Choose hybrid fusion defaults on SciFact's TRAIN split (never test), then report both splits.

    python bench/tune_fusion.py --index IDX [--depth 1000]

Each leg is retrieved once per query at `depth`; the variants are fused from those runs
the same way SearchPipeline does (ranker.fusion), and evaluated at document level (MaxP).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import DATA, table

from ranker import fusion
from ranker.eval import evaluate_run, load_qrels, load_queries, max_passage
from ranker.pipeline import SearchPipeline


def legs(pipeline: SearchPipeline, texts: list[str], depth: int):
    bm25, dense = [], []
    for i in range(0, len(texts), 200):
        bm25 += pipeline.lexical.search(texts[i : i + 200], depth)
        dense += pipeline.dense.search_vectors(pipeline.encode(texts[i : i + 200]), depth)
    return bm25, dense


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--depth", type=int, default=1000)
    args = ap.parse_args()
    pipeline = SearchPipeline.open(args.index)
    queries = load_queries(DATA / "scifact")
    variants = {"rrf k=60": lambda b, d: fusion.rrf([b, d], k=60)}
    for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        variants[f"convex dense={w}"] = lambda b, d, w=w: fusion.convex([b, d], weights=[1 - w, w])
    results: dict[str, dict[str, dict]] = {}
    for split in ("train", "test"):
        qrels = load_qrels(DATA / "scifact", split)
        qids = [q for q in qrels if q in queries]
        bm25, dense = legs(pipeline, [queries[q] for q in qids], args.depth)
        results[split] = {
            "bm25": evaluate_run({q: max_passage(r) for q, r in zip(qids, bm25)}, qrels),
            "dense": evaluate_run({q: max_passage(r) for q, r in zip(qids, dense)}, qrels),
        }
        for name, fuse in variants.items():
            runs = {q: max_passage(fuse(b, d)) for q, b, d in zip(qids, bm25, dense)}
            results[split][name] = evaluate_run(runs, qrels)
    best = max(variants, key=lambda n: results["train"][n]["ndcg@10"])
    rows = [[n, results["train"][n]["ndcg@10"], results["test"][n]["ndcg@10"], results["test"][n]["recall@100"],
             "**chosen (best on train)**" if n == best else ""] for n in results["train"]]  # fmt: skip
    print(f"SciFact, index {pipeline.version} ({pipeline.manifest.chunking}), depth {args.depth} per leg\n")
    print(table(["run", "train nDCG@10 (809 q)", "test nDCG@10 (300 q)", "test R@100", ""], rows))
    pipeline.close()


if __name__ == "__main__":
    main()
