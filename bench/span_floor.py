"""How often the authority prior's normalisation floor (`ranker.fusion.MIN_SPAN_OF_SCALE`) widens
a query's candidate range, per mode: on ordinary pools it should never, so that the floor changes
only near-ties among a handful of candidates (where min-max would stretch a rounding gap to a full point).

    python bench/span_floor.py /tmp/sf-onnxb [--queries 1000] [--k0 100]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from common import REPO, load_queries

sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k0", type=int, default=None, help="passages per leg (default: the serving default)")
    args = parser.parse_args()

    import ranker.pipeline as pipeline_module
    from ranker.pipeline import SearchOptions, SearchPipeline
    from ranker.settings import SearchSettings

    counts = {"queries": 0, "widened": 0}
    spans = pipeline_module._spans

    def counting_spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        out = spans(lo, hi)
        raw, used = np.atleast_1d(np.asarray(hi - lo, dtype=float)), np.atleast_1d(np.asarray(out, dtype=float))
        # per query: the arrays repeat each query's bounds for each of its candidates
        firsts = np.r_[True, (raw[1:] != raw[:-1]) | (used[1:] != used[:-1])]
        counts["queries"] += int(firsts.sum())
        counts["widened"] += int((firsts & (used > raw)).sum())
        return out

    pipeline_module._spans = counting_spans
    queries = load_queries("scifact", args.queries)
    settings = SearchSettings(authority_weight=0.05, **({"k0": args.k0} if args.k0 else {}))
    pipeline = SearchPipeline.open(args.index, settings)
    print("| mode | queries | ranges widened by the floor |\n|---|---:|---:|")
    for mode in ("bm25", "dense", "hybrid"):
        counts.update(queries=0, widened=0)
        for i in range(0, len(queries), 100):
            pipeline.batch_search(queries[i : i + 100], SearchOptions(k=10, mode=mode))
        print(f"| {mode} | {len(queries)} | {counts['widened']} |")


if __name__ == "__main__":
    main()
