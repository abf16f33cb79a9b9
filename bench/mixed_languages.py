"""A mixed library: SciFact (English) and rgb_zh (Chinese) in one index against each alone.

    DRSEARCH_TEST_EMBEDDINGS=/path/to/cache python bench/mixed_languages.py [--modes bm25,dense,hybrid] [--no-dense]

Builds three indexes with the defaults of `drsearch index build` (BM25 + the bundled English dense
model): SciFact alone, rgb_zh alone, both together; then evaluates each collection's test queries
(document level, 1,000 passages per leg) on its own index and on the mixed one. An embedding cache
folder (DRSEARCH_TEST_EMBEDDINGS, as the tests use) makes the dense encode a one-time cost.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import DATA, table

from indexer import layout
from indexer.build import build_index
from indexer.settings import BuildSettings, DenseSettings
from ranker.eval import evaluate
from ranker.pipeline import SearchOptions, SearchPipeline

COLLECTIONS = ("scifact", "rgb_zh")


def build(root: Path, corpora: list[Path], dense: bool) -> Path:
    shared = os.environ.get("DRSEARCH_TEST_EMBEDDINGS")
    root.mkdir(parents=True)
    if shared:
        (root / layout.EMBEDDING_CACHE_DIR).symlink_to(Path(shared).resolve(), target_is_directory=True)
    return build_index(corpora, root, BuildSettings(quiet=True, dense=DenseSettings(enabled=dense))).build_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="bm25,dense,hybrid")
    ap.add_argument("--no-dense", action="store_true", help="BM25 only (no encode): --modes bm25")
    args = ap.parse_args()
    modes = ["bm25"] if args.no_dense else args.modes.split(",")
    scores: dict[tuple[str, str, str], float] = {}  # (collection, index, mode) -> nDCG@10
    recalls: dict[tuple[str, str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        builds = {name: build(Path(tmp) / name, [DATA / name], not args.no_dense) for name in COLLECTIONS}
        builds["mixed"] = build(Path(tmp) / "mixed", [DATA / name for name in COLLECTIONS], not args.no_dense)
        for index, build_dir in builds.items():
            pipeline = SearchPipeline.open(build_dir)
            for collection in COLLECTIONS if index == "mixed" else (index,):
                for mode in modes:
                    options = SearchOptions(k=1000, k0=1000, mode=mode, per_doc=0, dedupe_text=False,
                                            authority_weight=0.0)
                    report = evaluate(lambda qs, o=options: pipeline.rank(qs, o), DATA / collection, quiet=True)
                    key = (collection, "mixed" if index == "mixed" else "alone", mode)
                    scores[key], recalls[key] = report["ndcg@10"], report["recall@100"]
            print(index, pipeline.manifest.languages, flush=True)
            pipeline.close()
    rows = []
    for collection in COLLECTIONS:
        for mode in modes:
            alone, mixed = scores[(collection, "alone", mode)], scores[(collection, "mixed", mode)]
            rows.append([collection, mode, f"{alone:.4f}", f"{mixed:.4f}", f"{mixed - alone:+.4f}",
                         f"{recalls[(collection, 'alone', mode)]:.4f}", f"{recalls[(collection, 'mixed', mode)]:.4f}"])
    print("\nnDCG@10 and R@100, document level; index defaults (passages of ~200 words, bundled MiniLM)\n")
    print(table(["collection", "mode", "nDCG@10 alone", "nDCG@10 mixed", "difference", "R@100 alone", "R@100 mixed"],
                rows))


if __name__ == "__main__":
    main()
