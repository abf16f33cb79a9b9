"""Extraction quality of the crawler's HTML extraction on the article-extraction benchmark.

Token-level precision / recall / F1 per page (bag-of-tokens overlap of whitespace tokens), averaged
over pages, as in the benchmark's own evaluation. Usage:

    python bench/extraction_quality.py [--variants]

Data: $DRSEARCH_DATA/web_samples/article-extraction-benchmark (default <repo>/../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawler.extract import HTML_OPTIONS  # noqa: E402
from crawler.extraction_eval import evaluate_extraction  # noqa: E402


def data_dir() -> Path:
    root = Path(os.environ.get("DRSEARCH_DATA", REPO.parent / "shared" / "data"))
    return root / "web_samples" / "article-extraction-benchmark"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", action="store_true", help="also score other trafilatura option sets")
    args = ap.parse_args()
    if not (data_dir() / "ground-truth.json").is_file():
        print(f"benchmark data not found under {data_dir()}", file=sys.stderr)
        return 2
    variants: list[tuple[str, dict[str, object]]] = [("crawler default " + json.dumps(HTML_OPTIONS), {})]
    if args.variants:
        variants += [
            ("balanced (no favor_*)", {"favor_recall": False, "favor_precision": False}),
            ("favor_recall", {"favor_recall": True, "favor_precision": False}),
            ("favor_precision, no tables", {"include_tables": False}),
            ("favor_precision + comments", {"include_comments": True}),
        ]
    print(f"{'variant':<60} {'pages':>5} {'P':>6} {'R':>6} {'F1':>6} {'sec':>6}")
    for name, opts in variants:
        r = evaluate_extraction(data_dir(), **opts)
        print(f"{name[:60]:<60} {r.pages:>5} {r.precision:.3f} {r.recall:.3f} {r.f1:.3f} {r.seconds:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
