"""The crawler's own HTML extraction on the article-extraction benchmark (181 pages with gold main text):
token-level F1 >= 0.90, the issue's acceptance bar (docs/BENCHMARKS.md has the full figures)."""

from __future__ import annotations

import pytest

from crawler.extraction_eval import evaluate_extraction, token_prf
from tests.conftest import data_dir


def test_token_prf() -> None:
    assert token_prf("a b b c", "a b c d") == (0.75, 0.75, 0.75)
    assert token_prf("", "") == (1.0, 1.0, 1.0) and token_prf("", "gold text") == (0.0, 0.0, 0.0)


@pytest.mark.slow
def test_extraction_f1_on_the_article_benchmark() -> None:
    scores = evaluate_extraction(data_dir("web_samples") / "article-extraction-benchmark")
    assert scores.pages >= 180
    assert scores.f1 >= 0.90, scores
