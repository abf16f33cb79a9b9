"""The numba kernels of `backends.faiss.prescan`. Imported only by `Int8Prescan`, which calls each
once when it is built, so that they are compiled (or loaded from numba's disk cache) then."""

from __future__ import annotations

import numpy as np
from numba import njit

# Constants here, not imported: numba freezes them into its cached machine code, whose cache notices
# changes to this file only.
ROUND_UP = 1.0 + 1e-6  # norms and errors are rounded up by this much
SLACK = 1e-12  # absolute: the float64 arithmetic of the bounds
# The query's codes span -levels..levels, stored + levels as uint8 (`prescan.query_levels` picks them).
# x86 CPUs without VNNI multiply uint8 by int8 and add pairs in int16 with saturation (vpmaddubsw),
# exact only while 2 x 128 x 127 <= 32,767: there the codes span -64..64. With VNNI or AMX the sums
# are int32 and they span -127..127, as the vectors' codes do, which halves the query's rounding error.
NARROW_LEVELS = 64.0
WIDE_LEVELS = 127.0
jit = njit(cache=True, nogil=True)


@jit
def quantize_query(q, levels, out):
    """The query's codes (-levels..levels, stored + levels as uint8) into out[0]; returns (scale,
    |q - q'| and |q| rounded up), scale 0 where q is not finite."""
    d = q.shape[0]
    top = 0.0
    for i in range(d):
        x = np.float64(q[i])
        if not np.isfinite(x):
            return 0.0, 0.0, 0.0
        top = max(top, abs(x))
    scale = top / levels if top > 0 else 1.0
    err2 = 0.0
    norm2 = 0.0
    for i in range(d):
        x = np.float64(q[i])
        c = min(levels, max(-levels, np.rint(x / scale)))
        out[0, i] = np.uint8(c + levels)
        r = x - c * scale
        err2 += r * r
        norm2 += x * x
    return scale, np.sqrt(err2) * ROUND_UP, np.sqrt(norm2) * ROUND_UP


@jit
def sift_down(heap, i, size):
    while True:
        smallest, left, right = i, 2 * i + 1, 2 * i + 2
        if left < size and heap[left] < heap[smallest]:
            smallest = left
        if right < size and heap[right] < heap[smallest]:
            smallest = right
        if smallest == i:
            return
        heap[i], heap[smallest] = heap[smallest], heap[i]
        i = smallest


@jit
def _bounds(dots, q_scale, q_error, q_norm, scale, error, recon_norm, v):
    """Vector v's approximate score and the most it can be off from FAISS's."""
    approx = np.float64(dots[v]) * (q_scale * scale[v])
    return approx, q_norm * error[v] + q_error * recon_norm[v] + SLACK


@jit
def _copy_row(vectors, src, rows_out, j):
    # Element by element: numba's slice assignment ran 2-4x slower on these rows.
    for t in range(vectors.shape[1]):
        rows_out[j, t] = vectors[src, t]


@jit
def candidates(dots, q_scale, q_error, q_norm, scale, error, recon_norm, k, whole_fours, vectors, heap, rows, rows_out):
    """Positions (ascending, into `rows`) whose upper bound reaches the k-th largest lower bound, their
    vectors copied to `rows_out`: those before `whole_fours` padded to a multiple of four (with copies
    of the last), then the others. Returns (candidates, candidates before whole_fours, padded count);
    -1 candidates where more than `rows_out` holds (or fewer than k). `heap` (at least k long) holds the
    k largest lower bounds while they are found; the bounds are computed again for the second pass
    rather than stored (the arrays fall out of cache after an encode, and recomputing is cheaper)."""
    n = dots.shape[0]
    for v in range(k):
        approx, bound = _bounds(dots, q_scale, q_error, q_norm, scale, error, recon_norm, v)
        heap[v] = approx - bound
    for start in range(k // 2 - 1, -1, -1):
        sift_down(heap, start, k)
    for v in range(k, n):
        approx, bound = _bounds(dots, q_scale, q_error, q_norm, scale, error, recon_norm, v)
        if approx - bound > heap[0]:
            heap[0] = approx - bound
            sift_down(heap, 0, k)
    threshold = heap[0]
    room = rows_out.shape[0] - 3
    found = 0
    for v in range(n):
        approx, bound = _bounds(dots, q_scale, q_error, q_norm, scale, error, recon_norm, v)
        if approx + bound >= threshold:
            if found == room:
                return -1, 0, 0
            rows[found] = v
            found += 1
    if found < k:  # only where a bound is not a number
        return -1, 0, 0
    main = 0
    while main < found and rows[main] < whole_fours:
        main += 1
    padded = main + (-main) % 4
    for j in range(main):
        _copy_row(vectors, rows[j], rows_out, j)
    for j in range(main, padded):
        _copy_row(vectors, rows[main - 1], rows_out, j)
    for j in range(main, found):
        _copy_row(vectors, rows[j], rows_out, padded + j - main)
    return found, main, padded


@jit
def best_first(exact, main, padded, found, rows, k):
    """The top k of the candidates' exact scores (exact[:main], then exact[padded:] for the others),
    best first, equal scores by position: (scores, positions), each of shape (1, k)."""
    # One integer sort: each key is the score's bits, flipped to sort best first, above the candidate's
    # index (candidates are in position order, so equal scores keep it). A stable float argsort with
    # its index arrays took several times as long.
    scores = np.empty(found, dtype=np.float32)  # as FAISS gave them, -0.0 too
    scores[:main] = exact[:main]
    scores[main:found] = exact[padded : padded + found - main]
    bits = (scores + np.float32(0.0)).view(np.int32)  # -0.0 + 0.0 is +0.0: the two tie
    keys = np.empty(found, dtype=np.uint64)
    for j in range(found):
        b = np.int64(bits[j])
        ascending = b ^ 0x80000000 if b >= 0 else ~b & 0xFFFFFFFF  # as the scores ascend
        keys[j] = np.uint64((0xFFFFFFFF - ascending) << 32 | j)
    keys.sort()
    top_scores, top_positions = np.empty((1, k), dtype=np.float32), np.empty((1, k), dtype=np.int64)
    for i in range(k):
        j = np.int64(keys[i] & np.uint64(0xFFFFFFFF))
        top_scores[0, i] = scores[j]
        top_positions[0, i] = rows[j]
    return top_scores, top_positions
