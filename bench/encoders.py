"""Encoder speed side by side: sentence-transformers fp32 (torch) vs ONNX Runtime fp32 vs int8, and
torch in bfloat16 (st-bf16) where the CPU runs bfloat16 natively (AMX, AVX512-BF16). st-bf16 is a
passage encoder (its builds encode queries in fp32), so only its passages are timed.

Queries: SciFact queries through `encode_queries` (the batch-invariant path the service uses),
batch throughput and single-query p50. Passages: the first N SciFact documents ("title\\ntext"),
length-sorted windows as the build encodes them. Interleaved rounds, best round per encoder; ratios
to the torch encoder measured in the same run.

    HF_HUB_OFFLINE=1 python bench/encoders.py [--queries 512] [--passages 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time

from common import DATA, load_queries, table

from backends.faiss.bf16 import cpu_capability, native_bf16
from backends.faiss.encoder import encode_passages, encode_queries, load_encoder, passage_text
from backends.threads import cores, set_budget
from indexer.settings import DenseSettings

ENCODERS = ("st", "onnx", "onnx-int8", "st-bf16")


def passages(n: int) -> list[str]:
    out = []
    with gzip.open(DATA / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            out.append(passage_text(d.get("title", ""), d["text"]))
            if len(out) >= n:
                break
    return sorted(out, key=len, reverse=True)  # the build encodes length-sorted windows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=512)
    ap.add_argument("--passages", type=int, default=256)
    ap.add_argument("--singles", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    set_budget(cores())
    queries = load_queries()[: args.queries]
    texts = passages(args.passages)
    settings = DenseSettings(device="cpu")
    encoders = [e for e in ENCODERS if e != "st-bf16" or native_bf16(cpu_capability())]
    models = {e: load_encoder(settings.model_copy(update={"encoder": e})) for e in encoders}
    for m in models.values():  # warm up (first ONNX run allocates)
        encode_passages(m, texts[:8], settings)
    passages_only = {"st-bf16"}
    best_q = dict.fromkeys(encoders, 0.0)
    best_p = dict.fromkeys(encoders, 0.0)
    p50 = dict.fromkeys(encoders, float("inf"))
    for _ in range(args.rounds):
        for name, m in models.items():
            t = time.perf_counter()
            encode_passages(m, texts, settings)
            best_p[name] = max(best_p[name], len(texts) / (time.perf_counter() - t))
            if name in passages_only:
                continue
            t = time.perf_counter()
            encode_queries(m, queries, settings)
            best_q[name] = max(best_q[name], len(queries) / (time.perf_counter() - t))
            times = []
            for q in queries[: args.singles]:
                t = time.perf_counter()
                encode_queries(m, [q], settings)
                times.append((time.perf_counter() - t) * 1000)
            p50[name] = min(p50[name], statistics.median(times))
    rows = [[name, "-", "-", f"{best_p[name]:,.1f}", f"{best_p[name] / best_p['st']:.2f}", "-"] if name in passages_only
            else [name, f"{best_q[name]:,.0f}", f"{best_q[name] / best_q['st']:.2f}", f"{best_p[name]:,.1f}",
                  f"{best_p[name] / best_p['st']:.2f}", f"{p50[name]:.1f}"] for name in encoders]  # fmt: skip
    print(f"{len(queries)} SciFact queries, {len(texts)} SciFact documents (max 256 tokens), {cores()} threads, "
          f"best of {args.rounds} interleaved rounds\n")
    print(table(["encoder", "queries/s", "x st", "passages/s", "x st", "single query p50 ms"], rows))


if __name__ == "__main__":
    main()
