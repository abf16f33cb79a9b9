"""`make bench`: build the benchmark indexes (once) and run the first round's benchmarks (quality, BM25
against Pyserini, fusion, encoding, authority, latency by mode, service, extraction, ingest memory),
printing their tables. The later issues' benchmarks (speed, scale, Chinese, reliability, agent tools,
GPU) run by their own commands, each written next to its figures in docs/BENCHMARKS.md.

Indexes go to indexes/bench-* and are reused on later runs (delete them to rebuild).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import DATA, REPO

INDEXES = REPO / "indexes"


def sh(*args: object) -> None:
    print("\n$ " + " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], cwd=REPO / "bench", check=True)


def ensure_index(name: str, corpus: Path, *flags: str) -> Path:
    root = INDEXES / name
    if not (root / "current").exists():
        sh(sys.executable, "-m", "service.cli", "index", "build", "--corpus", corpus, "--out", root, *flags)
    return root


def main() -> None:
    flat = ensure_index("bench-scifact-flat", DATA / "scifact", "--chunk-words", "0")
    chunked = ensure_index("bench-scifact", DATA / "scifact")
    cran = ensure_index("bench-cranfield", DATA / "cranfield")
    for index, beir in ((flat, "scifact"), (chunked, "scifact"), (cran, "cranfield")):
        sh(sys.executable, "-m", "service.cli", "eval", "--index", index, "--beir", DATA / beir, "--mode", "all")
    sh(sys.executable, "bm25_vs_pyserini.py")
    sh(sys.executable, "tune_fusion.py", "--index", flat)
    sh(sys.executable, "encode_throughput.py", "--n", "2000")
    sh(sys.executable, "authority_ranking.py", "--root", INDEXES / "bench-authority",
       "--reuse-embeddings", flat / "embeddings")  # fmt: skip
    sh(sys.executable, "modes_latency.py", "--index", chunked)
    sh(sys.executable, "service_throughput.py", chunked)
    sh(sys.executable, "extraction_quality.py")
    sh(sys.executable, "ingest_memory.py", "--work", INDEXES / "bench-ingest-memory")


if __name__ == "__main__":
    main()
