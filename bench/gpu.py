"""GPU figures: CUDA encoding throughput (issue 14) and the dense leg at 1M real vectors (issue 10).

Runs on a machine with a GPU, through the project's own code paths (`load_encoder`,
`encode_queries`, `encode_passages`, `build_faiss`, `_read_index`); it needs only numpy, torch,
sentence-transformers, pydantic and faiss-cpu, not the whole project environment. Two steps, so
that each can run where its packages are:

    python bench/gpu.py encode --work /tmp/gpu --passages 1000000 [--model DIR] [--cpu-sample F.npz]
    python bench/gpu.py faiss  --work /tmp/gpu [--types exact hnsw hnsw-sq8 ivf-pq]

`encode` measures SciFact query and passage throughput on CUDA (fp32 and fp16), the cosine of its
vectors to CPU-encoded ones (`--cpu-sample`, written by the `cpu-sample` step on a CPU host), a torch exact
top-100 search on the GPU, then encodes the first N passages of the synthetic scale corpus
(`bench/scale_corpus.py`: synthetic text, FOR COST MEASUREMENTS ONLY; the vectors are real encodes
of it) and SciFact's queries, and writes them under --work. `faiss` builds every index type over
those vectors with the build's own parameters and reports build time, file size, memory after open
and after queries, single-query p50 and recall@10 against exact search. Results are printed as JSON
lines and appended to --json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, load_queries, report  # noqa: E402

HOSTS_FILE = "listed_hosts.txt"



def scifact_passages(n: int | None = None) -> tuple[list[str], list[str]]:
    from backends.faiss.encoder import passage_text

    ids, texts = [], []
    with gzip.open(DATA / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            ids.append(str(d["_id"]))
            texts.append(passage_text(d.get("title", ""), d["text"]))
            if n and len(texts) >= n:
                break
    return ids, texts


def write_cpu_sample(path: Path, n: int) -> None:
    """Here (CPU): the first `n` SciFact documents encoded by the default build encoder, for comparison."""
    import numpy as np

    from backends.faiss.encoder import encode_passages, load_encoder
    from indexer.settings import DenseSettings

    settings = DenseSettings(device="cpu")
    ids, texts = scifact_passages(n)
    vectors = encode_passages(load_encoder(settings), texts, settings)
    np.savez_compressed(path, ids=np.array(ids), vectors=vectors)
    hosts = path.parent / HOSTS_FILE
    from bench.scale_corpus import listed_hosts

    hosts.write_text("\n".join(listed_hosts()) + "\n", encoding="utf-8")
    print(f"{len(ids)} CPU vectors -> {path}; {hosts}")


def timed(fn, *a, **kw):
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t = time.perf_counter()
    out = fn(*a, **kw)
    sync()
    return out, time.perf_counter() - t


def encode(args) -> None:
    import torch

    from backends.faiss.encoder import load_encoder
    from indexer.settings import DenseSettings

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    # torch (st) on any device: the GPU's encoder, and the CPU dry run's too (auto would pick ONNX there)
    settings = DenseSettings(model=args.model, device=args.device, batch_size=args.batch, encoder="st")
    model = load_encoder(settings).float()  # weights may be stored in fp16 (to travel); run in fp32
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "none"
    report(args, {"step": "device", "device": args.device, "gpu": gpu, "torch": torch.__version__})
    queries = load_queries()
    if not args.skip_throughput:
        throughput(args, model, settings, queries)
    model = model.half() if args.fp16 else model.float()
    scale_vectors(args, work, model, settings, queries)


def throughput(args, model, settings, queries: list[str]) -> None:
    import numpy as np

    from backends.faiss.encoder import encode_passages, encode_queries

    _, docs = scifact_passages(args.scifact_docs)
    docs.sort(key=len, reverse=True)  # the build encodes length-sorted windows
    precisions = ("fp32", "fp16") if args.device.startswith("cuda") else ("fp32",)
    encode_queries(model, queries[:64], settings)
    encode_passages(model, docs[:512], settings)
    for precision in precisions:
        if precision == "fp16":
            model.half()
        q_best = p_best = 0.0
        singles = []
        for _ in range(args.rounds):
            _, s = timed(encode_queries, model, queries, settings)
            q_best = max(q_best, len(queries) / s)
            _, s = timed(encode_passages, model, docs, settings)
            p_best = max(p_best, len(docs) / s)
        for q in queries[:100]:
            singles.append(timed(encode_queries, model, [q], settings)[1] * 1000)
        report(args, {"step": "encode", "device": args.device, "precision": precision, "queries": len(queries), "queries_per_s": round(q_best, 1),
                      "single_query_p50_ms": round(statistics.median(singles), 2), "passages": len(docs),
                      "passages_per_s": round(p_best, 1), "batch_size": settings.batch_size})  # fmt: skip
    if args.cpu_sample and Path(args.cpu_sample).is_file():
        sample = np.load(args.cpu_sample)
        _, texts = scifact_passages(len(sample["ids"]))
        for precision in precisions[::-1]:
            model = model.half() if precision == "fp16" else model.float()
            got = encode_passages(model, texts, settings)
            cos = (got * sample["vectors"]).sum(axis=1)
            report(args, {"step": "vs-cpu-vectors", "precision": precision, "passages": len(texts),
                          "min_cosine": round(float(cos.min()), 7), "mean_cosine": round(float(cos.mean()), 7)})  # fmt: skip


def scale_vectors(args, work: Path, model, settings, queries: list[str]) -> None:
    import numpy as np
    import torch

    from backends.faiss.encoder import encode_passages, encode_queries

    # The scale corpus's passages: one per paragraph by construction (see bench/scale_corpus.py).
    from bench import scale_corpus

    hosts = Path(args.hosts or (Path(args.cpu_sample).parent / HOSTS_FILE if args.cpu_sample else HOSTS_FILE))
    if hosts.is_file():
        scale_corpus.listed_hosts = lambda: hosts.read_text(encoding="utf-8").split()
    t = time.perf_counter()
    texts = []
    for doc in scale_corpus.documents(args.passages):
        texts.extend(passage_text_of(doc, p) for p in doc["text"].split("\n\n"))
    gen_s = time.perf_counter() - t
    out = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(texts), 384))
    t = time.perf_counter()
    chunk = 65_536
    for start in range(0, len(texts), chunk):
        window = sorted(range(start, min(start + chunk, len(texts))), key=lambda i: -len(texts[i]))
        out[window] = encode_passages(model, [texts[i] for i in window], settings)
    timed(lambda: None)
    enc_s = time.perf_counter() - t
    out.flush()
    qv = encode_queries(model, queries, settings)
    np.save(work / "queries.npy", qv)
    report(args, {"step": "scale-encode", "passages": len(texts), "precision": "fp16" if args.fp16 else "fp32",
                  "generate_s": round(gen_s, 1), "encode_s": round(enc_s, 1), "passages_per_s": round(len(texts) / enc_s, 1)})  # fmt: skip
    # Exact top-100 on the GPU (torch matmul + topk): the flat search faiss-gpu would do.
    base = torch.from_numpy(np.asarray(out)).to(args.device, dtype=torch.float16 if args.fp16 else torch.float32)
    qs = torch.from_numpy(qv).to(args.device, dtype=base.dtype)
    k = min(100, len(texts))  # top-100, or the whole corpus of a small dry run
    for batch in (1, 64, len(qv)):
        def search(b=batch):
            return [torch.topk(qs[i : i + b] @ base.T, k, dim=1) for i in range(0, len(qv), b)]
        search()
        _, s = timed(search)
        report(args, {"step": "torch-exact-k100", "device": args.device, "vectors": len(texts), "query_batch": batch, "queries_per_s": round(len(qv) / s, 1)})
    truth = torch.topk(qs.float() @ base.float().T, k, dim=1).indices.cpu().numpy()
    np.save(work / "truth_top100.npy", truth)


def passage_text_of(doc: dict, paragraph: str) -> str:
    from backends.faiss.encoder import passage_text

    return passage_text(doc.get("title", ""), paragraph)


def faiss_step(args) -> None:
    import faiss
    import numpy as np

    from bench.scale import build_and_open, proc_status, timed_searches
    from indexer.settings import DenseSettings

    work = Path(args.work)
    x = np.load(work / "vectors.npy", mmap_mode="r")
    x = np.ascontiguousarray(x, dtype=np.float32)
    queries = np.load(work / "queries.npy")[: args.queries]
    truth = np.load(work / "truth_top100.npy")[: args.queries, :10]
    report(args, {"step": "faiss-setup", "vectors": len(x), "queries": len(queries), "threads": faiss.omp_get_max_threads()})
    for ann in args.types:
        settings = DenseSettings(ann=ann)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        path = work / f"dense-{ann}.faiss"
        opened, build_s, anon_open, rss0 = build_and_open(x, ann, settings, path)
        faiss.omp_set_num_threads(1)  # one query per thread, as a serving worker runs it
        times, found = timed_searches(opened, ann, settings, x, queries)
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, truth)]))
        report(args, {"step": "faiss", "index": ann, "vectors": len(x), "build_s": round(build_s, 1),
                      "file_mb": round(path.stat().st_size / 2**20, 1), "anon_mb_after_open": anon_open,
                      "rss_mb_growth_after_queries": proc_status()["VmRSS"] - rss0,
                      "p50_ms": round(statistics.median(times), 3), "recall_at_10": round(recall, 4),
                      "params": settings.model_dump(include={"hnsw_m", "hnsw_ef_construction", "hnsw_ef_search",
                                                             "ivf_nprobe", "pq_m", "refine"})})  # fmt: skip
        del opened
        path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["encode", "faiss", "cpu-sample"])
    ap.add_argument("--work", default="/tmp/drsearch-gpu")
    ap.add_argument("--json", help="append each result row to this file")
    ap.add_argument("--model", help="sentence-transformers model directory (default: the bundled one)")
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--device", default="cuda", help="cuda (the figures) or cpu (a dry run of the script)")
    ap.add_argument("--scifact-docs", type=int, help="SciFact documents for the throughput figures (default all)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-throughput", action="store_true", help="only encode the scale corpus")
    ap.add_argument("--fp16", action="store_true", help="encode the scale corpus in fp16 (default fp32)")
    ap.add_argument("--cpu-sample", help="npz of CPU-encoded SciFact vectors (written by the cpu-sample step)")
    ap.add_argument("--hosts", help=f"listed hosts, one per line (default: {HOSTS_FILE} beside --cpu-sample)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--types", nargs="+", default=["exact", "hnsw", "hnsw-sq8", "ivf-pq"])
    args = ap.parse_args()
    if args.step == "cpu-sample":
        write_cpu_sample(Path(args.cpu_sample or "cpu_sample.npz"), 256)
    elif args.step == "encode":
        encode(args)
    else:
        faiss_step(args)


if __name__ == "__main__":
    main()
