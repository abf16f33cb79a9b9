"""Dense-leg benchmark on SciFact: encode throughput of the build vs plain encode, and HNSW recall@10.

1. Throughput: the first N SciFact documents (one passage each, "title\\ntext"), in the same process and
   with the same loaded model: plain `SentenceTransformer.encode` passages/s vs `build_dense_index`
   passages/s into a fresh embedding cache (hashing, sharded cache writes and the FAISS build included).
2. Recall: all SciFact documents embedded (through the build, reusing step 1's cache), queries from
   `scifact/queries.jsonl`; top-10 of IndexHNSWFlat (DenseSettings defaults for M / efConstruction,
   efSearch swept) against exact IndexFlatIP top-10.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python bench/encode_throughput.py [--n 2000] [--device cpu]

Prints markdown tables. `$DRSEARCH_DATA` (default <repo>/../shared/data) locates the collection.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from indexer.chunker import ChunkSettings, chunk_document  # noqa: E402
from backends.faiss.encoder import encode_queries, load_encoder, passage_text  # noqa: E402
from backends.faiss.writer import build_dense_index, build_faiss  # noqa: E402
from indexer.schema import Document  # noqa: E402
from indexer.settings import DenseSettings  # noqa: E402
from indexer.store import Store, StoreWriter  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("DRSEARCH_DATA") or REPO.parent / "shared" / "data")


def read_corpus(path: Path, limit: int | None) -> list[Document]:
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            docs.append(Document(doc_id=str(r["_id"]), title=r.get("title") or "", text=r.get("text") or ""))
            if limit is not None and len(docs) >= limit:
                break
    return docs


def read_queries(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def write_store(path: Path, docs: list[Document]) -> Store:
    writer = StoreWriter(path)
    for doc in docs:
        writer.add(doc, chunk_document(doc, ChunkSettings(target_words=0)))
    writer.close()
    return Store(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="documents for the throughput part")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    ap.add_argument("--batch-size", type=int, default=DenseSettings().batch_size)
    ap.add_argument("--ef-search", default="16,32,64,128,256", help="efSearch values to sweep")
    ap.add_argument("--cache-dir", type=Path, default=None, help="keep the embedding cache here (default: temp)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved timing runs of each path (best is reported)")
    ap.add_argument("--skip-recall", action="store_true")
    args = ap.parse_args()

    scifact = data_dir() / "scifact"
    # sentence-transformers, as the rows say: a build's default encoder (auto) is ONNX Runtime on a CPU
    defaults = DenseSettings(device=args.device, batch_size=args.batch_size, encoder="st")
    t0 = time.perf_counter()
    model = load_encoder(defaults)
    load_s = time.perf_counter() - t0
    print(f"device={model.device} threads={_torch_threads()} model load {load_s:.1f}s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="drsearch-bench-") as tmp_s:
        tmp = Path(tmp_s)
        cache = args.cache_dir or tmp / "cache"
        docs = read_corpus(scifact / "corpus.jsonl.gz", args.n)
        texts = [passage_text(d.title, d.text) for d in docs]
        model.encode(texts[: args.batch_size], batch_size=args.batch_size)  # warm-up

        store = write_store(tmp / "n.sqlite", docs)
        plain_times: list[float] = []
        build_times: list[float] = []
        for rep in range(args.repeats):  # interleaved, order alternating: fair under a noisy/shared CPU
            for which in (("plain", "build") if rep % 2 == 0 else ("build", "plain")):
                t0 = time.perf_counter()
                if which == "plain":
                    model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True)
                    plain_times.append(time.perf_counter() - t0)
                else:
                    fresh = tmp / "fresh-cache" if rep == 0 else tmp / f"fresh-cache-{rep}"
                    section = build_dense_index(store, tmp / f"dense-n{rep}", fresh, defaults, quiet=True, model=model)
                    build_times.append(time.perf_counter() - t0)
                    assert section.encoded == len(set(texts)), section
        store.close()
        plain_s, build_s = min(plain_times), min(build_times)
        print(f"plain runs {[round(x, 1) for x in plain_times]} s, build runs {[round(x, 1) for x in build_times]} s",
              file=sys.stderr)
        plain_rate, build_rate = len(texts) / plain_s, len(texts) / build_s
        print(f"\n### Encode throughput: SciFact first {len(texts)} docs, device {model.device}, batch {args.batch_size}\n")
        print("| path | seconds | passages/s |")
        print("|---|---:|---:|")
        print(f"| plain `SentenceTransformer.encode` | {plain_s:.1f} | {plain_rate:.1f} |")
        print(f"| `build_dense_index` (fresh cache, FAISS incl.) | {build_s:.1f} | {build_rate:.1f} |")
        print(f"| ratio build / plain (best of {args.repeats} interleaved runs each) | | **{build_rate / plain_rate:.3f}** |")

        if args.skip_recall:
            return
        # -------------------------------------------------------------------------------- recall
        import faiss

        all_docs = read_corpus(scifact / "corpus.jsonl.gz", None)
        store = write_store(tmp / "all.sqlite", all_docs)
        if args.cache_dir is None:  # reuse what the throughput part encoded
            os.replace(tmp / "fresh-cache", cache)
        t0 = time.perf_counter()
        exact_settings = defaults.model_copy(update={"ann": "exact"})
        section = build_dense_index(store, tmp / "dense-all", cache, exact_settings, quiet=True, model=model)
        store.close()
        print(f"all docs: {section.count} passages, encoded {section.encoded}, reused {section.reused} "
              f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)  # fmt: skip
        exact = faiss.read_index(str(tmp / "dense-all" / "index.faiss"))
        vectors = exact.reconstruct_n(0, exact.ntotal)
        queries = read_queries(scifact / "queries.jsonl")
        q = encode_queries(model, queries, defaults)
        k = 10
        _, truth = exact.search(q, k)

        t0 = time.perf_counter()
        hnsw = build_faiss(vectors, "hnsw", defaults)
        hnsw_build_s = time.perf_counter() - t0
        print(f"\n### HNSW recall@{k} vs exact: {len(vectors)} SciFact doc embeddings, {len(queries)} queries, "
              f"M={defaults.hnsw_m}, efConstruction={defaults.hnsw_ef_construction} (build {hnsw_build_s:.2f}s)\n")  # fmt: skip
        print("| efSearch | recall@10 | QPS (batch) |")
        print("|---:|---:|---:|")
        for ef in [int(x) for x in args.ef_search.split(",") if x.strip()]:
            hnsw.hnsw.efSearch = ef
            t0 = time.perf_counter()
            _, found = hnsw.search(q, k)
            secs = time.perf_counter() - t0
            recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found.tolist(), truth.tolist())]))
            mark = " (default)" if ef == defaults.hnsw_ef_search else ""
            print(f"| {ef}{mark} | {recall:.4f} | {len(queries) / secs:,.0f} |")
        t0 = time.perf_counter()
        exact.search(q, k)
        print(f"| exact IndexFlatIP | 1.0000 | {len(queries) / (time.perf_counter() - t0):,.0f} |")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
