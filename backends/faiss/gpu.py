"""Searching the dense index on a GPU with faiss-gpu, where it is installed and a device exists.

`DRSEARCH_FAISS_DEVICE` chooses: `auto` (default) searches on GPU 0 when the installed faiss has GPU
support and sees a device, else on the CPU; `cpu` never uses a GPU; `cuda` requires one and fails
with a one-line error where there is none. Exact (flat) and IVF-PQ indexes move to the GPU; HNSW
graphs stay on the CPU (faiss has no GPU HNSW search). Only unrestricted searches run there: a
search restricted to some passages (source filters) uses the CPU index, because the GPU indexes do
not take FAISS id selectors. The CPU index stays open (memory-mapped) beside the GPU copy.
GPU searches run on blocks of a fixed number of queries (`batch_invariant_gpu_search`), so that a
query's scores do not depend on the batch it came in.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from indexer.errors import ConfigError

ENV_VAR = "DRSEARCH_FAISS_DEVICE"
DEVICES = ("auto", "cpu", "cuda")
GPU_ANN = ("exact", "ivf-pq")
GPU_MAX_NPROBE = 2048  # the GPU kernels' limits: lists probed per query, results per query
GPU_MAX_K = 2048
# Every GPU search is a call over exactly this many query rows (the last block padded with zeros).
GPU_QUERY_BLOCK = 64


def faiss_device() -> str:
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in DEVICES:
        raise ConfigError(f"{ENV_VAR}={value!r} is not one of {', '.join(DEVICES)}", field=ENV_VAR)
    return value


def gpu_count(faiss: Any) -> int:
    """GPUs the installed faiss can use: 0 for faiss-cpu (it has no GPU functions)."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except RuntimeError:
        return 0


def to_gpu(index: Any, ann: str, nprobe: int | None) -> Any | None:
    """A GPU copy of `index` for unrestricted searches, or None to search on the CPU."""
    import faiss

    device = faiss_device()
    if device == "cpu":
        return None
    gpus = gpu_count(faiss)
    if device == "cuda" and not gpus:
        raise ConfigError(
            f"{ENV_VAR}=cuda but the installed faiss has no GPU support or sees no GPU "
            "(install faiss-gpu, or set it to auto or cpu)", field=ENV_VAR,
        )  # fmt: skip
    if not gpus or ann not in GPU_ANN:
        return None
    options = faiss.GpuClonerOptions()
    # IVF-PQ: fp16 lookup tables (48-byte codes x 256 centroids do not fit shared memory in fp32);
    # never for flat, where the same option would store the exact vectors in fp16
    options.useFloat16 = ann == "ivf-pq"
    resources = faiss.StandardGpuResources()
    gpu = faiss.index_cpu_to_gpu(resources, 0, index, options)
    gpu.referenced_objects = [resources]  # the copy lives only as long as its resources
    if nprobe:
        gpu.nprobe = min(nprobe, GPU_MAX_NPROBE)
    return gpu


def batch_invariant_gpu_search(index: Any, queries: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """`index.search` on a GPU index, one call per block of exactly `GPU_QUERY_BLOCK` queries.

    faiss-gpu scores an exact index with cuBLAS matrix products, whose sums run in an order that
    depends on the product's shape: on an H200, every one of 300 SciFact queries searched alone got
    scores (up to ~1e-7) other than in a batch of 1,109 (docs/BENCHMARKS.md, issue 14), and the
    service's micro-batcher must give a request the same scores whatever it was merged with. Blocks
    of one shape give each query the same sums; a single query costs what a block does (on the GPU,
    the library's read dominates either way)."""
    n = len(queries)
    rows = -(-n // GPU_QUERY_BLOCK) * GPU_QUERY_BLOCK
    padded = np.zeros((rows, queries.shape[1]), dtype=np.float32)
    padded[:n] = queries
    parts = [index.search(padded[i : i + GPU_QUERY_BLOCK], k, params=params) for i in range(0, rows, GPU_QUERY_BLOCK)]
    return np.vstack([scores for scores, _ in parts])[:n], np.vstack([found for _, found in parts])[:n]
