"""Cost growth with the library: build, open, memory and query latency at several corpus sizes.

    python bench/scale.py --work /tmp/scale --sizes 10000 100000 [--dense-vectors DIR --dense-sizes 100000]

The corpora are synthetic (bench/scale_corpus.py), FOR COST MEASUREMENTS ONLY. Per size: a BM25 +
store build (`drsearch index build --no-dense`) timed with its peak RSS (largest process: Python
or the Java indexer), sizes on disk, then a fresh serving process that opens the build and reports
open time, RSS and anonymous memory (heap; memory-mapped files excluded), BM25 p50/p95 and batch
QPS, and a query filtered to the domain holding ~0.1% of passages (with the filter pushed into the
retriever, and post-filter only as before) with its result counts.

`--dense-vectors` (an embedding cache folder of real vectors) adds the FAISS table: recall@10
against exact search on the real vectors (held-out vectors as queries), then memory and latency
per index type on copies of them with small random perturbations up to `--dense-sizes` (labelled).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, load_queries, table  # noqa: E402
from bench.scale_corpus import FIVE_DOC_DOMAIN, RARE_DOMAIN, write  # noqa: E402


def proc_status() -> dict[str, int]:
    """VmRSS and RssAnon of this process in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) // 1024
    return out


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# ---------------------------------------------------------------------------------------------- build


def build(n: int, work: Path) -> dict:
    corpus = work / f"corpus-{n}"
    if not corpus.is_dir():
        write(n, corpus)
    root = work / f"index-{n}"
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service.cli", "index", "build", "--corpus", str(corpus), "--out", str(root),
                    "--no-dense", "-q"], check=True, cwd=REPO)  # fmt: skip
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    build_dir = (root / "current").resolve()
    manifest = json.loads((build_dir / "manifest.json").read_text())
    timings = {"read_chunk_store_s": manifest["timings"]["read_chunk_store_s"], "lucene_s": manifest["timings"]["bm25_s"]}
    return {
        "passages": manifest["counts"]["passages"],
        "build_s": round(seconds, 1),
        "read_chunk_store_psg_s": round(n / max(timings["read_chunk_store_s"], 1e-9)),
        "lucene_psg_s": round(n / max(timings["lucene_s"], 1e-9)),
        "peak_rss_mb": round(peak / 1024),  # ru_maxrss: the largest child so far (sizes run in ascending order)
        "disk_mb": {p.name: round(du_mb(p) if p.is_dir() else p.stat().st_size / 2**20, 1)
                    for p in build_dir.iterdir() if p.name != "manifest.json"},  # fmt: skip
        "build_dir": str(build_dir),
    }


# ---------------------------------------------------------------------------------------------- serve


def serve(build_dir: str, n_queries: int) -> dict:
    """Runs in a fresh process: open the build, query it, report time and memory."""
    import statistics

    from ranker.pipeline import SearchOptions, SearchPipeline

    base = proc_status()
    t = time.perf_counter()
    pipe = SearchPipeline.open(build_dir)
    _ = pipe.sources  # columns + host table
    open_s = time.perf_counter() - t
    queries = load_queries("scifact", n_queries)
    bm25 = SearchOptions(k=10, mode="bm25")

    def p50_p95(options, qs) -> tuple[float, float, list[int]]:
        times, counts = [], []
        for q in qs:
            t0 = time.perf_counter()
            counts.append(len(pipe.rank([q], options)[0]))
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], counts

    p50_p95(bm25, queries[:20])  # warm-up (JIT, page cache)
    p50, p95, _ = p50_p95(bm25, queries)
    t = time.perf_counter()
    pipe.rank(queries, bm25)
    qps = len(queries) / (time.perf_counter() - t)
    rare = SearchOptions(k=10, mode="bm25", include_domains=(RARE_DOMAIN,))
    five = SearchOptions(k=10, mode="bm25", include_domains=(FIVE_DOC_DOMAIN,), per_doc=1)
    fq = queries[:100]
    f50, f95, f_counts = p50_p95(rare, fq)
    u50, _, _ = p50_p95(bm25, fq)
    _, _, five_counts = p50_p95(five, fq[:20])
    after = proc_status()
    filter_fields = pipe.lexical.filter_fields
    pipe.lexical.filter_fields = ()  # the old way: the leg ignores the filter, post-filter on a deepened list
    post50, _, post_counts = p50_p95(rare, fq[:20])
    allowed = int(pipe.sources.allowed(rare.filters).sum())
    dense = {}
    if pipe.has_dense:  # a build with the dense leg: its latencies, then memory with the encoder loaded
        pipe.lexical.filter_fields = filter_fields
        for mode in ("dense", "hybrid"):
            options = SearchOptions(k=10, mode=mode)
            p50_p95(options, queries[:20])  # warm-up: the encoder loads, index pages are read
            d50, d95, counts = p50_p95(options, queries)
            dense.update({f"{mode}_p50_ms": round(d50, 2), f"{mode}_p95_ms": round(d95, 2), f"{mode}_results_min": min(counts)})
        t = time.perf_counter()
        pipe.rank(queries, SearchOptions(k=10, mode="hybrid"))
        dense["hybrid_batch_qps"] = round(len(queries) / (time.perf_counter() - t))
        with_dense = proc_status()
        dense.update({"dense_index": pipe.manifest.dense.ann, "rss_mb_with_dense": with_dense["VmRSS"],
                      "anon_mb_with_dense": with_dense["RssAnon"]})  # fmt: skip
    return {
        **dense,
        "open_s": round(open_s, 2),
        "rss_mb": after["VmRSS"], "anon_mb": after["RssAnon"], "anon_growth_mb": after["RssAnon"] - base["RssAnon"],
        "bm25_p50_ms": round(p50, 2), "bm25_p95_ms": round(p95, 2), "bm25_batch_qps": round(qps),
        "rare_passages": allowed, "filtered_p50_ms": round(f50, 2), "filtered_p95_ms": round(f95, 2),
        "unfiltered_p50_ms": round(u50, 2), "filtered_results_min": min(f_counts),
        "five_doc_results": sorted(set(five_counts)), "postfilter_only_p50_ms": round(post50, 2),
        "postfilter_results_min": min(post_counts),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- dense


def load_vectors(directory: Path):
    import numpy as np

    blocks = [np.load(f)["vectors"] for f in sorted(directory.rglob("shard-*.npz"))]
    return np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)


def build_and_open(x, ann: str, settings, path: Path) -> tuple[Any, float, int, int]:
    """Build `ann` over `x` with the build's code, write it to `path` and open it as the searcher
    does (memory-mapped, search parameters set): (index, build seconds, MiB of anonymous memory the
    open added, VmRSS MiB before the open)."""
    import faiss

    from backends.faiss.searcher import _read_index
    from backends.faiss.writer import build_faiss, ivf_probes

    t = time.perf_counter()
    index = build_faiss(x, ann, settings)
    build_s = time.perf_counter() - t
    faiss.write_index(index, str(path))
    del index
    before = proc_status()
    opened = _read_index(str(path), ann)
    anon = proc_status()["RssAnon"] - before["RssAnon"]
    if ann == "ivf-pq":
        ivf = faiss.extract_index_ivf(opened)
        ivf.nprobe = ivf_probes(settings, ivf.nlist)
    elif ann != "exact":
        opened.hnsw.efSearch = settings.hnsw_ef_search
    return opened, build_s, anon, before["VmRSS"]


def timed_searches(opened, ann: str, settings, x, queries) -> tuple[list[float], list]:
    """Each query's top-10 from an opened FAISS index and its latency in ms, IVF-PQ candidates
    re-scored with the exact vectors `x` as the retriever does."""
    import numpy as np

    k = 10 * settings.refine if ann == "ivf-pq" else 10
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = opened.search(q[None, :], k)
        if ann == "ivf-pq":
            cand = np.sort(ids[0][ids[0] >= 0])
            ids = cand[np.argsort(-(x[cand] @ q), kind="stable")[:10]][None, :]
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[0][:10])
    return times, found


def dense(vector_dir: Path, sizes: list[int], work: Path) -> list[list]:
    import faiss
    import numpy as np

    from indexer.settings import DenseSettings

    real = load_vectors(vector_dir)
    rng = np.random.default_rng(0)
    rng.shuffle(real)
    queries, base = real[:200], real[200:]
    types = ["exact", "hnsw", "hnsw-sq8", "ivf-pq"]
    rows = []
    for n, label in [(len(base), "real")] + [(s, "perturbed copies") for s in sizes]:
        if label == "real":
            x = base
        else:  # real vectors plus small noise, re-normalised: for memory and latency, never recall
            x = base[np.arange(n) % len(base)] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        truth = faiss.IndexFlatIP(x.shape[1])
        truth.add(x)
        _, exact_ids = truth.search(queries, 10)
        for ann in types:
            settings = DenseSettings(ann=ann, pq_m=48)
            path = work / f"dense-{ann}-{n}.faiss"
            opened, build_s, anon, _ = build_and_open(x, ann, settings, path)
            times, found = timed_searches(opened, ann, settings, x, queries)
            recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact_ids)])
            rows.append([f"{n:,} ({label})", ann, round(build_s, 1), round(path.stat().st_size / 2**20, 1), anon,
                         round(float(np.median(times)), 2), round(float(recall), 3) if label == "real" else "-"])  # fmt: skip
            del opened
            path.unlink()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/drsearch-scale"))
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--dense-vectors", type=Path)
    ap.add_argument("--dense-sizes", type=int, nargs="*", default=[100_000])
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        print(json.dumps(serve(args.serve, args.queries)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        b = build(n, args.work)
        out = subprocess.run([sys.executable, __file__, "--serve", b["build_dir"], "--queries", str(args.queries)],
                             check=True, capture_output=True, text=True, cwd=REPO, env={**os.environ})  # fmt: skip
        s = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps({"n": n, **b, **s}), flush=True)
        rows.append([f"{n:,}", b["build_s"], b["read_chunk_store_psg_s"], b["lucene_psg_s"], b["peak_rss_mb"],
                     round(sum(b["disk_mb"].values())), s["open_s"], s["rss_mb"], s["anon_mb"], s["bm25_p50_ms"],
                     s["bm25_p95_ms"], s["bm25_batch_qps"], s["rare_passages"],
                     f'{s["filtered_p50_ms"]} ({s["filtered_results_min"]})', s["unfiltered_p50_ms"],
                     f'{s["postfilter_only_p50_ms"]} ({s["postfilter_results_min"]})', s["five_doc_results"]])  # fmt: skip
    if rows:
        print(table(["passages", "build s", "read+chunk+store psg/s", "lucene psg/s", "build peak RSS MB", "disk MB",
                     "open s", "serving RSS MB", "anon MB", "BM25 p50 ms", "p95 ms", "batch QPS", "rare-domain passages",
                     "filtered p50 ms (min results)", "unfiltered p50 ms", "post-filter only p50 ms (min results)",
                     "5-doc filter results"], rows))  # fmt: skip
    if args.dense_vectors:
        print(table(["vectors", "index", "build s", "file MB", "anon MB after open", "p50 ms", "recall@10"],
                    dense(args.dense_vectors, args.dense_sizes, args.work)))  # fmt: skip


if __name__ == "__main__":
    main()
