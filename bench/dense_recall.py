"""Recall@10 and latency of the FAISS index types on real passage vectors, with an IVF-PQ sweep.

    python bench/dense_recall.py --vectors ROOT/embeddings/<model_key> --encoder onnx-int8 \
        [--queries 500] [--nprobe 32 64 128] [--refine 4 10 25 50] [--types exact hnsw hnsw-sq8 ivf-pq]

`--vectors` is an embedding cache folder (`drsearch index encode` writes one); its vectors are real
encodes of whatever corpus was encoded (the synthetic scale corpus's text is FOR COST MEASUREMENTS
ONLY: its recall figures describe the index types, not retrieval quality). Queries are SciFact's,
encoded by the same encoder; recall@10 is against exact inner-product search over the same vectors.
Each index is built once with the build's own code (`build_faiss`) and opened memory-mapped as the
searcher opens it; the IVF-PQ index is then searched at every (nprobe, refine) pair and depth, refine
being the retriever's exact re-score of depth x refine candidates: at depth 10 the leg is asked for 10
hits, at depth 100 (the serving k0) for 100 of which the first 10 are scored. Queries run one at a
time on one thread, as in a serving worker.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_queries, table  # noqa: E402
from bench.scale import build_and_open, load_vectors, timed_searches  # noqa: E402


def ivf_searches(index, x, queries, depth: int, refine: int):
    """The retriever's IVF-PQ path (`FaissSearcher._knn`): depth x refine PQ candidates re-scored
    exactly; each query's first 10 and its latency in ms."""
    import time

    import numpy as np

    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, cand = index.search(q[None, :], depth * refine)
        ids = np.sort(cand[0][cand[0] >= 0])
        top = ids[np.argsort(-(x[ids] @ q), kind="stable")[:depth]]
        times.append((time.perf_counter() - t) * 1000)
        found.append(top[:10])
    return times, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=Path, required=True, help="embedding cache folder (ROOT/embeddings/<key>)")
    ap.add_argument("--encoder", default="onnx", help="the encoder that wrote the vectors: st | onnx (a build's default on a CPU) | onnx-int8")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--types", nargs="+", default=["exact", "hnsw", "hnsw-sq8", "ivf-pq"])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--refine", type=int, nargs="+", default=[4, 10, 25, 50])
    ap.add_argument("--depths", type=int, nargs="+", default=[10, 100], help="hits asked of the leg (100 = serving k0)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/drsearch-dense-recall"))
    ap.add_argument("--json", type=Path, help="append each row to this file as a JSON line")
    args = ap.parse_args()

    from backends.threads import set_budget

    set_budget(1)  # one query per thread, as a serving worker runs it (index builds use it too)
    import faiss
    import numpy as np

    from backends.faiss.encoder import encode_queries, load_encoder
    from indexer.settings import DenseSettings

    x = load_vectors(args.vectors)
    settings = DenseSettings(encoder=args.encoder)
    queries = encode_queries(load_encoder(settings), load_queries("scifact", args.queries), settings)
    truth = faiss.IndexFlatIP(x.shape[1])
    truth.add(x)
    _, exact_ids = truth.search(queries, 10)
    del truth
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{len(x):,} vectors from {args.vectors}, {len(queries)} SciFact queries ({args.encoder})", flush=True)

    rows = []

    def record(ann: str, params: str, build_s: float, size_mb: float, anon: int, times, found) -> None:
        recall = float(np.mean([len(set(f.tolist()) & set(e.tolist())) / 10 for f, e in zip(found, exact_ids)]))
        row = {"vectors": len(x), "index": ann, "params": params, "build_s": round(build_s, 1), "file_mb": round(size_mb, 1),
               "anon_mb_after_open": anon, "p50_ms": round(statistics.median(times), 3), "recall_at_10": round(recall, 3)}  # fmt: skip
        print(json.dumps(row), flush=True)
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        rows.append(list(row.values()))

    for ann in args.types:
        base = DenseSettings(ann=ann, encoder=args.encoder)
        path = args.work / f"{ann}.faiss"
        opened, build_s, anon, _ = build_and_open(x, ann, base, path)
        size_mb = path.stat().st_size / 2**20
        if ann != "ivf-pq":
            params = f"M {base.hnsw_m}, efC {base.hnsw_ef_construction}, efSearch {base.hnsw_ef_search}" if "hnsw" in ann else ""
            record(ann, params, build_s, size_mb, anon, *timed_searches(opened, ann, base, x, queries))
        else:
            ivf = faiss.extract_index_ivf(opened)
            for nprobe in args.nprobe:
                ivf.nprobe = nprobe
                for refine in args.refine:
                    for depth in args.depths:
                        params = f"nlist {ivf.nlist}, PQ{base.pq_m}, nprobe {nprobe}, refine {refine}, depth {depth}"
                        record(ann, params, build_s, size_mb, anon, *ivf_searches(opened, x, queries, depth, refine))
        del opened
        path.unlink()
    print()
    print(table(["vectors", "index", "parameters", "build s", "file MB", "anon MB after open", "p50 ms", "recall@10"], rows))


if __name__ == "__main__":
    main()
