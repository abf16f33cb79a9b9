"""BM25 over the Lucene index. Java objects never leave this module."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from backends.base import LEXICAL, Leg, SourceFilters, check_k
from backends.hit import Hit
from backends.lucene.jvm import autoclass
from backends.lucene.section import LuceneSection
from backends.lucene.topk import LuceneTopK
from indexer import layout
from indexer.errors import IndexFormatError
from indexer.schema import doc_id_of


class LuceneSearcher:
    """Anserini `SimpleSearcher` with BM25(k1, b). Queries are bags of words: the analyzer
    tokenises them and no Lucene query syntax is ever parsed. Queries arrive already validated."""

    name: ClassVar[Leg] = LEXICAL

    def __init__(self, lucene_dir: Path, *, k1: float = 0.9, b: float = 0.4, threads: int = 2):
        if not any(lucene_dir.glob("segments_*")):
            raise IndexFormatError("no Lucene index", where=str(lucene_dir))
        self.k1, self.b, self.threads = k1, b, threads
        self._searcher = autoclass("io.anserini.search.SimpleSearcher")(str(lucene_dir))
        self._searcher.set_bm25(float(k1), float(b))
        self._topk = LuceneTopK(lucene_dir, self._searcher.get_analyzer(), k1=k1, b=b, threads=threads)
        self._analyzer_utils = autoclass("io.anserini.analysis.AnalyzerUtils")
        self._lock = threading.Lock()

    @classmethod
    def open(cls, build_dir: Path, section: LuceneSection, *, threads: int = 2) -> "LuceneSearcher":
        return cls(build_dir / layout.LUCENE_DIR, k1=section.k1, b=section.b, threads=threads)

    @property
    def size(self) -> int:
        return int(self._searcher.get_total_num_docs())

    def terms(self, query: str) -> list[str]:
        return list(self._analyzer_utils.analyze(self._searcher.get_analyzer(), query))

    def search(self, queries: Sequence[str], k: int, filters: SourceFilters | None = None) -> list[list[Hit]]:
        """Top-k per query; `filters` are left to the pipeline's post-filter."""
        check_k(k)
        return [self._to_hits(ids, scores) for ids, scores in self._topk.batch(list(queries), k)]

    @staticmethod
    def _to_hits(ids: list[str], scores: list[float]) -> list[Hit]:
        # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank)
        return [Hit(pid, doc_id_of(pid), s, r, s, None, None, None, r) for r, (pid, s) in enumerate(zip(ids, scores), 1)]

    def close(self) -> None:
        with self._lock:
            self._topk.close()
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
