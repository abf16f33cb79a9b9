"""The Lucene leg's manifest section (written by `LuceneWriter`, read by `LuceneSearcher`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from backends.base import Section

# Han and Hangul runs as characters + bigrams, Thai/Lao/Khmer/Myanmar runs as character bigrams, before
# Lucene's English analyzer, and Greek, Arabic, Persian, Hebrew and Turkish spelling variants folded
# (indexer/analysis.py).
ANALYZER = "anserini-default-porter+zh-ko-unigram-bigram+th-lo-km-my-bigram+el-ar-fa-he-tr-fold+invisible-marks"
# builds before direction marks, word joiners and BOMs were dropped outside RTL text too
MARKS_IN_RTL_ONLY_ANALYZER = "anserini-default-porter+zh-ko-unigram-bigram+th-lo-km-my-bigram+el-ar-fa-he-tr-fold"
HAN_ONLY_ANALYZER = "anserini-default-porter+zh-unigram-bigram"  # builds before Hangul and Thai units
LEGACY_ANALYZER = "anserini-default-porter"  # builds before Chinese units: queries go in unchanged
# host code token "h<code>", YYYYMMDD date token ("x": not an ISO date), language code token "l<code>" (field "language")
FILTER_FIELDS = ("host", "date", "language")


class LuceneSection(Section):
    backend: Literal["lucene"] = "lucene"
    summary_fields: ClassVar[tuple[str, ...]] = ("k1", "b", "analyzer")
    k1: float = Field(gt=0)
    b: float = Field(ge=0, le=1)
    analyzer: str = LEGACY_ANALYZER
    documents: int = Field(ge=0)  # Lucene documents indexed (one per passage)
    filter_fields: tuple[str, ...] = ()  # extra indexed fields a `Restriction` is applied over
