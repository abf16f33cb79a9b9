"""The dense leg on a GPU (faiss-gpu) against the same searches on the CPU, side by side in one run.

    python bench/faiss_gpu.py query-vectors --build BUILD_DIR --out q.npy     # here: SciFact's queries, encoded
    python bench/faiss_gpu.py search --build BUILD_DIR --queries q.npy [--stand-ins 1000000] [--ivf-pq]

`search` runs on a machine with a GPU and faiss-gpu, through the project's own code: the build's
`FaissSearcher` opened twice, with `DRSEARCH_FAISS_DEVICE=cpu` and `=cuda` (`backends.faiss.gpu`),
and, for a larger library, `to_gpu` on an exact index over `--stand-ins` random unit vectors (a cost
measurement only: the vectors mean nothing) and, with `--ivf-pq`, on an IVF-PQ index built over
them with the build's own parameters (`build_faiss`), searched as the retriever searches them
(`batch_invariant_search` on the CPU, `batch_invariant_gpu_search` on the GPU; no re-scoring). For each: top-100 of all queries in one call
(queries/s, best of --rounds), single-query p50 (each query on the CPU and on the GPU in turn), and
how far the GPU's results agree with the CPU's (identical top-100 and top-10 lists, largest score
difference), and whether a query searched alone gets the scores it gets in the batch. CPU searches use every core of the machine (`faiss.omp_set_num_threads`). Results are
printed as JSON lines and appended to --json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_queries, report  # noqa: E402

K = 100


def query_vectors(args) -> None:
    """Here: SciFact's queries encoded by the build's own query encoder."""
    import numpy as np

    from backends.faiss.searcher import FaissSearcher
    from backends.manifest import Manifest

    build = Path(args.build)
    searcher = FaissSearcher(build, Manifest.read(build).section("dense"))
    vectors = searcher.encode(load_queries())
    np.save(args.out, vectors.astype(np.float32))
    print(f"{len(vectors)} query vectors -> {args.out}")


def side_by_side(args, label: str, cpu_search, gpu_search, queries, n_singles: int) -> None:
    """Batch throughput, single-query p50 and agreement of two search functions (queries -> scores, ids)."""
    import numpy as np

    best = {"cpu": 0.0, "gpu": 0.0}
    out = {}
    for _ in range(args.rounds):
        for side, search in (("cpu", cpu_search), ("gpu", gpu_search)):
            t = time.perf_counter()
            out[side] = search(queries)
            best[side] = max(best[side], len(queries) / (time.perf_counter() - t))
    singles: dict[str, list[float]] = {"cpu": [], "gpu": []}
    alone_as_in_batch = {"cpu": 0, "gpu": 0}  # a query searched alone: the same scores as in the batch?
    for i, q in enumerate(queries[:n_singles]):
        turn = [("cpu", cpu_search), ("gpu", gpu_search)]
        for side, search in turn[::-1] if i % 2 else turn:
            t = time.perf_counter()
            scores, ids = search(q[None, :])
            singles[side].append((time.perf_counter() - t) * 1000)
            alone_as_in_batch[side] += np.array_equal(scores[0], out[side][0][i]) and np.array_equal(ids[0], out[side][1][i])
    (cpu_scores, cpu_ids), (gpu_scores, gpu_ids) = out["cpu"], out["gpu"]
    same100 = float(np.mean([np.array_equal(a, b) for a, b in zip(cpu_ids, gpu_ids)]))
    same10 = float(np.mean([np.array_equal(a[:10], b[:10]) for a, b in zip(cpu_ids, gpu_ids)]))
    overlap = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / max(1, len(a)) for a, b in zip(cpu_ids, gpu_ids)]))
    report(args, {
        "index": label, "queries": len(queries), "k": K,
        "cpu_qps": round(best["cpu"], 1), "gpu_qps": round(best["gpu"], 1), "gpu_over_cpu": round(best["gpu"] / best["cpu"], 2),
        "cpu_single_p50_ms": round(statistics.median(singles["cpu"]), 3),
        "gpu_single_p50_ms": round(statistics.median(singles["gpu"]), 3),
        "alone_as_in_batch": {side: f"{n}/{min(n_singles, len(queries))}" for side, n in alone_as_in_batch.items()},
        "top100_identical": round(same100, 4), "top10_identical": round(same10, 4), "top100_overlap": round(overlap, 4),
        "max_score_diff": float(np.max(np.abs(np.asarray(cpu_scores, dtype=np.float64) - np.asarray(gpu_scores, dtype=np.float64)))),
    })  # fmt: skip


def searcher_side(build: Path, device: str):
    """`FaissSearcher.search_vectors_positions` of the build, its index placed by DRSEARCH_FAISS_DEVICE."""
    import numpy as np

    from backends.faiss.searcher import FaissSearcher
    from backends.manifest import Manifest

    os.environ["DRSEARCH_FAISS_DEVICE"] = device
    searcher = FaissSearcher.open(build, Manifest.read(build).section("dense"))
    searcher._ensure_index()  # the device is read here, when the index is first opened
    if device == "cuda" and searcher._gpu_index is None:
        raise SystemExit("faiss-gpu did not take the index (no GPU seen?)")

    def search(q):
        runs = searcher.search_vectors_positions(q, K)
        return np.stack([s for _, s in runs]), np.stack([p for p, _ in runs])

    return search


def search(args) -> None:
    import faiss
    import numpy as np

    from backends.faiss.gpu import batch_invariant_gpu_search, gpu_count, to_gpu
    from backends.faiss.searcher import batch_invariant_search

    os.environ["DRSEARCH_FAISS_DEVICE"] = args.device  # read by to_gpu
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    queries = np.load(args.queries).astype(np.float32)
    report(args, {"step": "setup", "faiss": faiss.__version__, "gpus": gpu_count(faiss), "cpu_threads": faiss.omp_get_max_threads(),
                  "queries": len(queries)})  # fmt: skip
    build = Path(args.build)
    side_by_side(args, f"{build.name}: FaissSearcher, build's exact index", searcher_side(build, "cpu"),
                 searcher_side(build, args.device), queries, args.singles)  # fmt: skip
    if not args.stand_ins:
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.stand_ins, queries.shape[1]), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    gpu = to_gpu(exact, "exact", None) or exact  # the CPU index again on a dry run (--device cpu)
    side_by_side(args, f"exact, {len(x):,} stand-in vectors", lambda q: batch_invariant_search(exact, q, K),
                 lambda q: batch_invariant_gpu_search(gpu, q, K), queries, args.stand_in_singles)  # fmt: skip
    if args.ivf_pq:
        from backends.faiss.writer import build_faiss, ivf_probes
        from indexer.settings import DenseSettings

        settings = DenseSettings(ann="ivf-pq")
        t = time.perf_counter()
        ivfpq = build_faiss(x, "ivf-pq", settings)
        build_s = time.perf_counter() - t
        ivf = faiss.extract_index_ivf(ivfpq)
        ivf.nprobe = ivf_probes(settings, ivf.nlist)
        gpu_pq = to_gpu(ivfpq, "ivf-pq", ivf.nprobe) or ivfpq
        report(args, {"step": "ivf-pq built", "build_s": round(build_s, 1), "nlist": ivf.nlist, "nprobe": ivf.nprobe})
        side_by_side(args, f"ivf-pq, {len(x):,} stand-in vectors (no refine)", lambda q: batch_invariant_search(ivfpq, q, K),
                     lambda q: batch_invariant_gpu_search(gpu_pq, q, K), queries, args.stand_in_singles)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["query-vectors", "search"])
    ap.add_argument("--build", required=True, help="a build folder (INDEX/builds/NAME) with a dense/ section")
    ap.add_argument("--out", default="query_vectors.npy")
    ap.add_argument("--queries", default="query_vectors.npy")
    ap.add_argument("--stand-ins", type=int, default=0, help="random unit vectors for an exact index of that size")
    ap.add_argument("--ivf-pq", action="store_true", help="also an IVF-PQ index over the stand-ins")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--singles", type=int, default=300, help="single queries timed on the build's index")
    ap.add_argument("--stand-in-singles", type=int, default=50, help="single queries timed on the stand-ins' indexes")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a dry run, the CPU on both sides")
    ap.add_argument("--json", help="append each result row to this file")
    args = ap.parse_args()
    query_vectors(args) if args.step == "query-vectors" else search(args)


if __name__ == "__main__":
    main()
