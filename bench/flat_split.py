"""Queries over a large exact index on every core: the retriever's split and blocks against FAISS's own search.

    python bench/flat_split.py [--sizes 100000 1000000] [--threads N] [--singles 50] [--batches 32 200] [--json FILE]

Over random unit stand-in vectors (a cost measurement only: they mean nothing), k=100, with FAISS
on --threads threads (default: every core) and OpenMP's passive wait, as the service sets it:

- `faiss`: plain `index.search` of one query. FAISS splits the index over its threads with a kernel
  of its own, so the query's scores differ from those it gets in a batch (what the retriever avoids).
- `padded`: the query padded with zero queries to one a thread, each taken whole, as in a batch.
- `split`: the retriever's `batch_invariant_search` (`backends.faiss.flat_split`: shards scanned on
  threads of their own, their top k merged).
- with source filters that allow half of the passages, through an id selector: `selector padded`
  (as `padded`; the retriever's path before) and `selector split` (the retriever's: each shard's
  thread searching through the selector and its own id range).

Per size and way: single-query p50 (each query on every way in turn), and for the retriever's two
ways, how many queries searched alone got the scores they get in a batch of 200.

Batches (--batches sizes, best of 3 each): `whole scans` (FAISS's `index.search` of the batch, each
query scanning every vector: the retriever's path before 2026-12-04) against `blocked` (the
retriever's: a block of vectors at a time for the whole batch, `blocked_search`), and whether the
two gave the same scores and positions for every query.

Restrictions (--allowed-shares, e.g. 0.02 0.2 0.5: source filters allowing that share of the
passages at random), through `FaissSearcher.search_vectors_positions` over the index written to a
temporary folder: `copied rows` (the allowed vectors copied out and scored, the path below
`exact_allowed_max` for every index type before 2026-12-04) against `selector` (FAISS's search
through an id bitmap, in place); one query (p50 of --singles) and a batch of 32 (best of 3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:  # pragma: no cover
    from backends.faiss.section import FaissSection

from bench.common import report  # noqa: E402

K = 100
BATCH = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--singles", type=int, default=50, help="single queries timed per size")
    ap.add_argument("--batches", type=int, nargs="*", default=[32, 200], help="batch sizes timed per size")
    ap.add_argument("--allowed-shares", type=float, nargs="*", default=[], help="restrictions timed per size")
    ap.add_argument("--dimension", type=int, default=384)
    ap.add_argument("--json", help="append each result row to this file")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before FAISS loads, as `backends.threads.set_budget`
    import faiss
    import numpy as np

    from backends.faiss.flat_split import ties_by_id
    from backends.faiss.searcher import batch_invariant_search

    faiss.omp_set_num_threads(args.threads)
    report(args, {"step": "setup", "faiss": faiss.__version__, "threads": faiss.omp_get_max_threads(), "cpus": os.cpu_count()})
    rng = np.random.default_rng(0)
    queries = unit(rng.standard_normal((BATCH, args.dimension), dtype=np.float32))
    for size in args.sizes:
        index = faiss.IndexFlatIP(args.dimension)
        index.add(unit(rng.standard_normal((size, args.dimension), dtype=np.float32)))
        allowed = rng.random(size) < 0.5
        bits = np.packbits(allowed, bitorder="little")
        bitmap = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        everywhere = faiss.SearchParameters(sel=bitmap)

        def padded(q, params=None):
            rows = np.zeros((args.threads, q.shape[1]), dtype=np.float32)
            rows[: len(q)] = q
            return index.search(rows, K, params=params)

        ways = {
            "faiss": lambda q: index.search(q, K),
            "padded": padded,
            "split": lambda q: batch_invariant_search(index, q, K),
            "selector padded": lambda q: padded(q, everywhere),
            "selector split": lambda q: batch_invariant_search(index, q, K, params=everywhere),
        }
        singles: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(args.singles):
            names = list(ways) if i % 2 else list(ways)[::-1]
            for name in names:
                t = time.perf_counter()
                ways[name](queries[i : i + 1])
                singles[name].append(time.perf_counter() - t)
        batch_scores = {name: ways[name](queries)[0] for name in ("split", "selector split")}
        same = {name: sum(np.array_equal(ways[name](queries[i : i + 1])[0][0], batch_scores[name][i])
                          for i in range(args.singles)) for name in batch_scores}  # fmt: skip
        report(args, {"size": size, "threads": args.threads, "singles": args.singles,
                      **{f"p50_ms {name}": round(statistics.median(v) * 1000, 2) for name, v in singles.items()},
                      **{f"alone as in batch, {name}": f"{n}/{args.singles}" for name, n in same.items()}})  # fmt: skip
        for size_b in args.batches:
            batch = unit(rng.standard_normal((size_b, args.dimension), dtype=np.float32))
            timed = {"whole scans": lambda: ties_by_id(index, *index.search(batch, K)),
                     "blocked": lambda: batch_invariant_search(index, batch, K)}  # fmt: skip
            best, got = {}, {}
            for _ in range(3):
                for name, run in timed.items():
                    t = time.perf_counter()
                    got[name] = run()
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
            same_b = all(np.array_equal(a, b) for a, b in zip(got["whole scans"], got["blocked"]))
            report(args, {"size": size, "threads": args.threads, "batch": size_b,
                          **{f"{name} ms": round(v * 1000, 1) for name, v in best.items()},
                          "speed-up": round(best["whole scans"] / best["blocked"], 2), "same": same_b})  # fmt: skip
        if args.allowed_shares:
            restrictions(args, index, queries, rng)


def restrictions(args, index, queries, rng) -> None:
    """Copied rows against the id selector, per allowed share (see the module's docstring)."""
    import tempfile

    import numpy as np

    from backends.base import Restriction
    from backends.faiss.searcher import FaissSearcher

    n = int(index.ntotal)
    with tempfile.TemporaryDirectory() as tmp:
        section = flat_dense_folder(Path(tmp), index)
        for share in args.allowed_shares:
            restriction = Restriction(allowed=rng.random(n) < share)
            timed, got = {}, {}
            for name, limit in (("copied rows", n), ("selector", 0)):
                retriever = FaissSearcher(Path(tmp), section)
                retriever._exact_limit = lambda _index, limit=limit: limit  # copied rows up to `limit` allowed
                singles = []
                for i in range(args.singles):
                    t = time.perf_counter()
                    retriever.search_vectors_positions(queries[i : i + 1], K, restriction)
                    singles.append(time.perf_counter() - t)
                batch = []
                for _ in range(3):
                    t = time.perf_counter()
                    got[name] = retriever.search_vectors_positions(queries[:32], K, restriction)
                    batch.append(time.perf_counter() - t)
                timed[name] = (statistics.median(singles), min(batch))
            same = all(np.array_equal(a[0], b[0]) for a, b in zip(got["copied rows"], got["selector"]))
            report(args, {"size": n, "threads": args.threads, "allowed": int(restriction.allowed.sum()),
                          **{f"{name} one query p50 ms": round(v[0] * 1000, 2) for name, v in timed.items()},
                          **{f"{name} batch of 32 ms": round(v[1] * 1000, 1) for name, v in timed.items()},
                          "same positions": same})  # fmt: skip


def flat_dense_folder(build_dir: Path, index) -> FaissSection:
    """A dense folder under `build_dir` holding `index` (exact) with stand-in passage ids, and its
    manifest section: a `FaissSearcher` over vectors no encoder made (no query encoding then)."""
    import json

    import faiss

    from backends.faiss.section import FaissSection
    from indexer import layout

    dense = build_dir / layout.DENSE_DIR
    dense.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(dense / "index.faiss"))
    n = int(index.ntotal)
    (dense / "passage_ids.json").write_text(json.dumps([f"p{i}#0" for i in range(n)]), encoding="utf-8")
    return FaissSection(model="stand-in", bundled=False, model_name="stand-in", dimension=int(index.d), model_key="-",
                        count=n, encoded=n, reused=0, ann="exact")  # fmt: skip


def unit(x):
    import numpy as np

    return x / np.linalg.norm(x, axis=1, keepdims=True)


if __name__ == "__main__":
    main()
