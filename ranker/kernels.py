"""Compiled forms of a single search's convex fusion and authority order (numba), off until `enable()`.

A single hybrid query's fusion and rerank are some thirty numpy calls on ~200 candidates, each a few
microseconds of call overhead on caches the encode has just flushed: ~0.29 ms of a ~4.7 ms query
(docs/BENCHMARKS.md, issue 14). Compiled, each is one call (together ~0.11 ms there). They do the same
floating-point operations in the same order as the numpy forms they stand for
(`ranker.candidates._convex_one`; `SearchPipeline._authority_rerank_many` of one list, with its ties
by passage id and `TextCollapse`), so every score and order is the same bit for bit;
tests/ranker/test_kernels.py holds the two to it. What they do not take (a run that names a passage
twice, a score that is not finite, a window, source filters) stays with the numpy forms. One more
reads a single query's BM25 hits as the Lucene helper packs them (`LuceneTopK._positions_and_scores`).

Compiling takes seconds the first time; later processes load the machine code from numba's disk cache
(~0.3 s with numba's import). So only processes that serve many searches turn them on: `serve` and
`drsearch mcp` after their warm-up (`service.validate.open_validated`), and the benchmarks. A one-off
`drsearch search` keeps the numpy forms. The switch is per process: the forms are pure functions.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from ranker.fusion import MIN_SPAN_OF_SCALE

log = logging.getLogger("drsearch.kernels")

_lock = threading.Lock()
_compiled: Any = None  # the namespace of compiled functions once enabled; None: numpy forms


def enable() -> bool:
    """Compile (or load from the disk cache) the kernels and use them from now on in this process.
    False, with a warning, where numba cannot be imported or compile: the numpy forms stay."""
    global _compiled
    with _lock:
        if _compiled is None:
            try:
                _compiled = _compile()
            except Exception as exc:  # numba missing or broken on this platform: slower, still exact
                log.warning("compiled fusion unavailable, numpy kept: %s", str(exc).splitlines()[0] if str(exc) else exc)
                return False
    return True


def disable() -> None:
    """Back to the numpy forms (for comparing the two)."""
    global _compiled
    with _lock:
        _compiled = None


def active() -> Any:
    """The compiled functions (`convex_one`, `rerank_positions`, `unpack_one`) when enabled, else None."""
    return _compiled


def _compile() -> Any:
    from types import SimpleNamespace

    from numba import njit

    jit = njit(cache=True, nogil=True)
    kernels = SimpleNamespace(convex_one=jit(_convex_one), rerank_positions=jit(_rerank_positions), unpack_one=jit(_unpack_one))
    # Compiled here, not on a first search: one call each on a tiny input of the types searches pass.
    keys, scores = np.array([1, 0], dtype=np.int64), np.array([1.0, 1.0])
    kernels.convex_one(keys, scores, keys[::-1].copy(), scores, 0.5, 0.5, -1)
    # The build's columns are read-only memory maps: a read-only array is a type of its own to numba.
    ids, offsets, no_texts, texts, hosts, words, doc_positions = _read_only(
        np.array([97, 98], dtype=np.uint8), np.array([0, 1, 2], dtype=np.int64), np.zeros(0, dtype=np.uint64),
        np.zeros(2, dtype=np.uint64), np.zeros(2, dtype=np.int32), np.array([1, 0, 0], dtype=np.int32),
        np.zeros(1, dtype=np.int32))  # fmt: skip
    host_tiers, prior_by_tier = np.zeros(1, dtype=np.int8), np.zeros(128)
    for text_keys in (no_texts, texts):
        kernels.rerank_positions(scores, keys, hosts, host_tiers, prior_by_tier, 0.05, 0.1, ids, offsets, text_keys)
    kernels.unpack_one(words, doc_positions)  # one hit, its bytes from the helper (read-only)
    return kernels


def _read_only(*arrays: np.ndarray) -> list[np.ndarray]:
    for array in arrays:
        array.flags.writeable = False
    return list(arrays)


def _unpack_one(words, doc_positions):  # pragma: no cover (compiled)
    """`LuceneTopK._positions_and_scores` of one query's words (its hit count, then the hits' Lucene doc
    ids, then their float32 scores' bits): (ok, column positions int64, scores float32); ok False (the
    rest empty) where the words do not hold that many hits or a doc id is outside `doc_positions`."""
    n = words.shape[0]
    count = words[0] if n else -1
    if count < 0 or n != 1 + 2 * count:
        return False, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    bits = words.view(np.float32)
    positions = np.empty(count, dtype=np.int64)
    scores = np.empty(count, dtype=np.float32)
    for i in range(count):
        doc = words[1 + i]
        if doc < 0 or doc >= doc_positions.shape[0]:
            return False, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        positions[i] = doc_positions[doc]
        scores[i] = bits[1 + count + i]
    return True, positions, scores


def _convex_one(lex_keys, lex_scores, den_keys, den_scores, w_lex, w_den, window):  # pragma: no cover (compiled)
    """`ranker.candidates._convex_one` on int64 keys and float64 scores (both runs not empty together);
    `window` < 0: none. Returns (ok, keys, [fused, bm25, dense], [bm25_rank, dense_rank], has_lexical)
    with the candidates in key order; ok False (the rest empty) where a run names a key twice or a scored
    score is not finite, which the numpy form handles."""
    n_lex, n_den = lex_keys.shape[0], den_keys.shape[0]
    m = n_lex + n_den
    keys = np.empty(m, np.int64)
    scores = np.empty(m, np.float64)
    keys[:n_lex], keys[n_lex:] = lex_keys, den_keys
    scores[:n_lex], scores[n_lex:] = lex_scores, den_scores
    failed = (False, keys[:0], np.empty((3, 0)), np.empty((2, 0), np.int64), False)
    part = np.zeros(m)
    for start, end, weight in ((0, n_lex, w_lex), (n_lex, m, w_den)):
        scored = end if window < 0 else min(end, start + window)  # past the window: 0
        if scored == start:
            continue
        lo = hi = scores[start]
        for i in range(start, scored):
            s = scores[i]
            if not np.isfinite(s):
                return failed
            lo, hi = min(lo, s), max(hi, s)
        spread = hi - lo
        floor = MIN_SPAN_OF_SCALE * max(abs(lo), abs(hi))  # `fusion.span_floor`
        for i in range(start, scored):
            if spread < floor:
                part[i] = weight * (1.0 - (hi - scores[i]) / floor)
            else:
                part[i] = weight * ((scores[i] - lo) / spread) if not spread <= 0.0 else weight * 1.0
    order = np.argsort(keys, kind="mergesort")  # stable: a passage's lexical entry before its dense one
    n = 0
    for j in range(m):
        n += j == 0 or keys[order[j]] != keys[order[j - 1]]
    out_keys = np.empty(n, np.int64)
    floats = np.full((3, n), np.nan)  # fused, bm25, dense
    ranks = np.zeros((2, n), np.int64)  # bm25_rank, dense_rank (0: missed)
    floats[0] = 0.0
    g = -1
    for j in range(m):
        i = order[j]
        if j == 0 or keys[i] != keys[order[j - 1]]:
            g += 1
            out_keys[g] = keys[i]
        leg, rank = (0, i + 1) if i < n_lex else (1, i - n_lex + 1)
        if ranks[leg, g]:
            return failed
        floats[0, g] += part[i]  # lexical part first, as the numpy form's bincount adds them
        floats[1 + leg, g] = scores[i]
        ranks[leg, g] = rank
    has_lexical = False
    for g in range(n):
        b = floats[1, g]
        has_lexical |= b != 0 and b == b
    return True, out_keys, floats, ranks, has_lexical


def _rerank_positions(scores, positions, hosts, host_tiers, prior_by_tier, weight, min_span, id_bytes, id_offsets,
                      text_keys):  # pragma: no cover (compiled)  # fmt: skip
    """`SearchPipeline._authority_rerank_many` of one search's candidates keyed by column position, no
    window: (ok, final scores, authority priors, order). The order is by final score, then fused score
    (`scores`, as on the lean path), then passage id (compared as the UTF-8 bytes of `id_bytes` between
    `id_offsets`: the order of the strings), and, where `text_keys` (the build's `text_hash` column) is
    not empty, leaves out each candidate whose text one before it has. ok False (the rest empty) where a
    score is not finite or a position negative, which the numpy form handles. A candidate's tier is its
    host's: `host_tiers[hosts[position]]` (the build's host column, the tier of each host code), read
    here as `SourceTable.tiers_at` reads it, without its numpy calls on caches an encode has flushed."""
    n = scores.shape[0]
    lo = hi = scores[0]
    for i in range(n):
        if not np.isfinite(scores[i]) or positions[i] < 0:
            return False, scores[:0], scores[:0], positions[:0]
        lo, hi = min(lo, scores[i]), max(hi, scores[i])
    span = max(hi - lo, min_span * max(abs(lo), abs(hi)))
    scaled = span > 0 and np.isfinite(span)
    prior = np.empty(n)
    final = np.empty(n)
    for i in range(n):
        prior[i] = weight * prior_by_tier[host_tiers[hosts[positions[i]]]]
        final[i] = ((scores[i] - lo) / span if scaled else 1.0) + prior[i]
    by_fused = np.argsort(-scores, kind="mergesort")
    order = by_fused[np.argsort(-final[by_fused], kind="mergesort")]
    start = 0
    for end in range(1, n + 1):  # each run of neighbours equal in both scores: by passage id (insertion sort)
        if end < n and final[order[end]] == final[order[start]] and scores[order[end]] == scores[order[start]]:
            continue
        for j in range(start + 1, end):
            at = order[j]
            a0, a1 = id_offsets[positions[at]], id_offsets[positions[at] + 1]
            k = j
            while k > start:  # moved down while its id sorts before the one before it
                b0, b1 = id_offsets[positions[order[k - 1]]], id_offsets[positions[order[k - 1]] + 1]
                before = a1 - a0 < b1 - b0  # one id a prefix of the other: the shorter first
                for i in range(min(a1 - a0, b1 - b0)):
                    if id_bytes[a0 + i] != id_bytes[b0 + i]:
                        before = id_bytes[a0 + i] < id_bytes[b0 + i]
                        break
                if not before:
                    break
                order[k] = order[k - 1]
                k -= 1
            order[k] = at
        start = end
    if text_keys.shape[0] == 0:
        return True, final, prior, order
    texts = np.empty(n, text_keys.dtype)
    for j in range(n):
        texts[j] = text_keys[positions[order[j]]]
    by_text = np.argsort(texts, kind="mergesort")  # stable: each text's best-ranked copy first
    kept = np.zeros(n, np.bool_)
    for j in range(n):
        kept[by_text[j]] = j == 0 or texts[by_text[j]] != texts[by_text[j - 1]]
    return True, final, prior, order[kept]
