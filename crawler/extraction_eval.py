"""Extraction quality against a gold main text: token-level precision, recall and F1 per page (bag of
whitespace tokens), averaged over pages as the article-extraction benchmark's own evaluation does.
Used by bench/extraction_quality.py and the slow test; reads <root>/ground-truth.json and <root>/html/*.html.gz."""

from __future__ import annotations

import gzip
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from crawler.extract import extract_html


@dataclass(frozen=True)
class ExtractionScores:
    pages: int
    precision: float
    recall: float
    f1: float
    seconds: float


def token_prf(predicted: str, gold: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of the predicted text's tokens against the gold text's (with multiplicity)."""
    pred, true = Counter(predicted.split()), Counter(gold.split())
    if not pred and not true:
        return 1.0, 1.0, 1.0
    overlap = sum((pred & true).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(true.values()) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate_extraction(root: Path, **options: object) -> ExtractionScores:
    """Score the crawler's `extract_html` (with trafilatura option overrides) on every page with a gold text."""
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    scores = []
    start = time.perf_counter()
    for key, item in sorted(truth.items()):
        path = root / "html" / f"{key}.html.gz"
        if not path.is_file():
            continue
        text = extract_html(gzip.decompress(path.read_bytes()), item.get("url"), **options).text
        scores.append(token_prf(text, item.get("articleBody") or ""))
    if not scores:
        raise FileNotFoundError(f"no page with a gold text under {root}")
    return ExtractionScores(
        pages=len(scores),
        precision=statistics.fmean(s[0] for s in scores),
        recall=statistics.fmean(s[1] for s in scores),
        f1=statistics.fmean(s[2] for s in scores),
        seconds=time.perf_counter() - start,
    )
