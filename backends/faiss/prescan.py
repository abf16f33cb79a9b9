"""A single query over a small exact index: an int8 scan first, then FAISS on the few it cannot rule out.

After a query's encode has flushed the caches, FAISS's exact scan of a flat index reads every float32
vector from memory (8 MB for SciFact's 5,183 x 384): 0.43-0.8 ms of a ~4.5 ms hybrid search (docs/
BENCHMARKS.md, issue 14). Here the query is first scored against an int8 copy of the vectors (a
quarter of the bytes, ONNX Runtime's integer GEMM), with a bound on how far each approximate score
can be from the one FAISS computes; only vectors whose upper bound reaches the k-th best lower bound
can be in the top k (typically ~170 of 5,183 for k=100; ~230 with the narrow query codes, below), and
FAISS scores exactly those, with the same kernel as its full scan. The result is the full scan's,
score for score, in the order every path over an exact index gives (`flat_split.exact_top_k`: best
first, equal scores by position).

The bound, for query q and vector x with reconstructions q' = s_q c_q (|c_q| <= 127, or 64 where the
CPU's integer products could saturate: `query_levels`) and x' = s_x c_x (|c_x| <= 127), c_q . c_x
exact: |q.x - q'.x'| <= |q| |x - x'| + |q - q'| |x'| (Cauchy-Schwarz), and FAISS's float32 sum is
within gamma_d |q| |x| of q.x in any order of summation (gamma_d = d u / (1 - d u), u = 2^-24).
Norms are rounded up and a tiny absolute slack covers the float64 arithmetic.

FAISS's full scan computes vectors four at a time and the last `n % 4` one by one; the candidates are
laid out so that each is computed the same way as there (padded to a multiple of four, the last few
positions apart). Used only by serving processes (`FaissSearcher.enable_prescan`); its kernels are
compiled with numba (cached on disk) when it is built.
"""

from __future__ import annotations

import logging
import threading
from functools import cache
from typing import Any

import numpy as np

log = logging.getLogger("drsearch.prescan")

MAX_CANDIDATES = 1024  # more than this to re-score (k of a few hundred): the full scan is as cheap


class Int8Prescan:
    """The int8 scan of one flat inner-product index's vectors (an (n, d) float32 view, kept)."""

    @classmethod
    def over(cls, vectors: np.ndarray) -> "Int8Prescan | None":
        """The scan of `vectors`, its kernels compiled; None, with a warning, where it cannot be made
        (numba missing, vectors that are not all finite): searches then scan in full, as before."""
        try:
            if not np.isfinite(vectors).all():  # (an empty index never gets here: `enable_prescan`)
                raise ValueError("the vectors are not all finite")
            prescan = cls(vectors)
            prescan.search(vectors[0], 1)  # compiles the kernels (or loads them from numba's cache) now
        except Exception as exc:  # slower without it, never wrong
            log.warning("int8 prescan unavailable, full scans kept: %s", (str(exc).splitlines() or [type(exc).__name__])[0])
            return None
        return prescan

    def __init__(self, vectors: np.ndarray, levels: float | None = None):
        """`levels`: the query codes' range (default `query_levels`: as wide as this CPU computes exactly)."""
        import faiss

        from backends.faiss import prescan_kernels
        from backends.faiss.prescan_kernels import ROUND_UP

        self._faiss = faiss
        self._kernels = prescan_kernels
        self.vectors = vectors
        n, d = vectors.shape
        self.n, self.d = n, d
        self.whole_fours = n - n % 4  # positions past this the full scan computes one by one
        self.scale, self.error, self.recon_norm = np.empty(n), np.empty(n), np.empty(n)
        codes_t = np.empty((d, n), dtype=np.int8)
        u = 2.0**-24
        gamma = d * u / (1 - d * u)
        for start in range(0, n, 1024):  # in blocks: float64 copies of all the vectors would stay in the heap
            x = vectors[start : start + 1024].astype(np.float64)
            block = slice(start, start + len(x))
            top = np.abs(x).max(axis=1)
            self.scale[block] = scale = np.where(top > 0, top / 127.0, 1.0)
            codes = np.clip(np.rint(x / scale[:, None]), -127, 127)
            recon = codes * scale[:, None]
            self.error[block] = (np.linalg.norm(x - recon, axis=1) + gamma * np.linalg.norm(x, axis=1)) * ROUND_UP
            self.recon_norm[block] = np.linalg.norm(recon, axis=1) * ROUND_UP
            codes_t[:, block] = codes.T
        self.levels = float(levels or query_levels(d))
        self._session = _integer_gemv(codes_t, self.levels)
        self._idle: list[_Scratch] = []  # buffers no search holds: as many as searches ever ran at once
        self._idle_lock = threading.Lock()

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores, positions), each of shape (1, k), as `flat_split.exact_top_k` of the full scan gives
        them; None where the scan does not pay (a non-finite query, too many candidates): search in full."""
        if query.shape != (self.d,):  # the kernels index without bounds checks
            raise ValueError(f"query has shape {query.shape}, the vectors' dimension is {self.d}")
        if not 0 < k <= self.n:
            return None
        with self._idle_lock:
            scratch = self._idle.pop() if self._idle else None
        if scratch is None:  # more searches at once than ever before
            scratch = _Scratch(self._session, self.n, self.d)
        try:
            return self._search(np.ascontiguousarray(query, dtype=np.float32), k, scratch)
        finally:
            with self._idle_lock:
                self._idle.append(scratch)

    def _search(self, query: np.ndarray, k: int, scratch: "_Scratch") -> tuple[np.ndarray, np.ndarray] | None:
        kernels = self._kernels
        quantized = kernels.quantize_query(query, self.levels, scratch.query_codes)
        if quantized[0] <= 0:
            return None
        self._session.run_with_iobinding(scratch.binding)
        found, main, padded = kernels.candidates(scratch.dots[0], quantized[0], quantized[1], quantized[2], self.scale,
                                                 self.error, self.recon_norm, k, self.whole_fours, self.vectors,
                                                 scratch.heap, scratch.rows, scratch.rows_out)  # fmt: skip
        if found < 0:
            return None
        faiss = self._faiss
        q = faiss.swig_ptr(query)
        if padded:
            faiss.fvec_inner_products_ny(faiss.swig_ptr(scratch.exact), q, faiss.swig_ptr(scratch.rows_out), self.d, padded)
        if found > main:  # the last positions, one by one as in the full scan
            faiss.fvec_inner_products_ny(faiss.swig_ptr(scratch.exact[padded:]), q,
                                         faiss.swig_ptr(scratch.rows_out[padded:]), self.d, found - main)  # fmt: skip
        return kernels.best_first(scratch.exact, main, padded, found, scratch.rows, k)


class _Scratch:
    """One search's buffers: the query's codes (bound as the GEMV's input), the integer scores (bound
    as its output), the best lower bounds, candidate positions and their vectors laid out for FAISS."""

    def __init__(self, session: Any, n: int, d: int):
        self.query_codes = np.zeros((1, d), dtype=np.uint8)
        self.dots = np.zeros((1, n), dtype=np.int32)
        self.heap = np.empty(n)  # the k largest lower bounds
        self.rows = np.empty(n, dtype=np.int64)
        self.rows_out = np.empty((MAX_CANDIDATES + 3, d), dtype=np.float32)
        self.exact = np.empty(MAX_CANDIDATES + 3, dtype=np.float32)
        self.binding = session.io_binding()
        self.binding.bind_cpu_input("codes", self.query_codes)
        self.binding.bind_output("dots", "cpu", 0, np.int32, list(self.dots.shape), self.dots.ctypes.data)


@cache
def query_levels(d: int) -> float:
    """The widest range of query codes whose products ONNX Runtime's integer GEMV sums exactly here:
    127 where it adds them in int32 (VNNI, AMX), else 64 (`prescan_kernels.NARROW_LEVELS`). Probed
    with the codes that saturate an int16 pair sum (2 x 254 x 127 > 32,767), the query's length d."""
    from backends.faiss.prescan_kernels import NARROW_LEVELS, WIDE_LEVELS

    wide = int(WIDE_LEVELS)
    columns = np.empty((d, 2), dtype=np.int8)
    columns[:, 0], columns[:, 1] = wide, -wide
    full = d * wide * wide
    try:
        gemv = _integer_gemv(columns, WIDE_LEVELS)
        for stored, sign in ((2 * wide, 1), (0, -1)):  # every code +127, then every code -127
            dots = gemv.run(None, {"codes": np.full((1, d), stored, dtype=np.uint8)})[0]
            if dots.tolist() != [[sign * full, -sign * full]]:
                return NARROW_LEVELS
    except Exception:  # an ONNX Runtime that refuses these codes: the narrow range, which it summed before
        return NARROW_LEVELS
    return WIDE_LEVELS


def _integer_gemv(codes_t: np.ndarray, zero_point: float) -> Any:
    """An ONNX Runtime session computing (c_q + zero_point as uint8, less that zero point) x codes_t:
    the query's codes against every vector's int8 codes, exactly, in int32, on the calling thread."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    d, n = codes_t.shape
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["codes", "vectors", "zero"], ["dots"])], "int8_prescan",
        [helper.make_tensor_value_info("codes", TensorProto.UINT8, [1, d])],
        [helper.make_tensor_value_info("dots", TensorProto.INT32, [1, n])],
        [numpy_helper.from_array(codes_t, "vectors"), numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), "zero")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
