"""BM25 over the Lucene index. Java objects never leave this module."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import LEXICAL, Leg, Restriction, SourceFilters, check_k
from backends.hit import Hit
from backends.lucene.jvm import INSTANCE_CALLS, autoclass, java_path
from backends.lucene.section import ANALYZER, HAN_ONLY_ANALYZER, MARKS_IN_RTL_ONLY_ANALYZER, LuceneSection
from backends.lucene.topk import JavaLater, LuceneTopK
from backends.threads import Later
from indexer import layout
from indexer.damage import LegError, first_line, java_exception_names
from indexer.analysis import for_lucene, for_lucene_han_only
from indexer.errors import IndexClosed, IndexFormatError
from indexer.schema import doc_id_of
from ranker.long_query import MAX_BM25_TERMS, bound_terms, might_exceed


class LuceneSearcher:
    """BM25(k1, b) over one Lucene index, ranked as Anserini's `SimpleSearcher` ranks (its analyzer, its
    order of ties). Queries are bags of words: the analyzer tokenises them and no Lucene query syntax is
    ever parsed. Queries arrive already validated."""

    name: ClassVar[Leg] = LEXICAL

    @property
    def restricts(self) -> bool:
        """Whether `search` applies a `Restriction` (builds that indexed the host/date fields)."""
        return bool(self.filter_fields)

    def __init__(self, lucene_dir: Path, *, k1: float = 0.9, b: float = 0.4, threads: int = 2,
                 filter_fields: tuple[str, ...] = (), max_terms: int = MAX_BM25_TERMS,
                 analyzer: str = ANALYZER):  # fmt: skip
        if not any(lucene_dir.glob("segments_*")):
            raise IndexFormatError("no Lucene index", where=str(lucene_dir))
        self.k1, self.b, self.threads, self.max_terms = k1, b, threads, max_terms
        self._dir = lucene_dir
        self._prepare = _PREPARE.get(analyzer, _unchanged)  # as the index was built
        java_path(lucene_dir)  # a name Java cannot take is a one-line error before Java sees it
        with unreadable_as_error(lucene_dir):  # a truncated or overwritten segment file fails here, mostly
            # The analyzer Anserini's SimpleSearcher searches with (IndexCollection.DEFAULT_ANALYZER), made
            # without SimpleSearcher: pyjnius reflecting that class (~2,500 classes reached through its
            # methods) took ~0.75 s of every process's first open, and it opened a second reader.
            self._analyzer = autoclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
            self._topk = LuceneTopK(lucene_dir, self._analyzer, k1=k1, b=b, threads=threads)
            self._size = int(self._topk.reader.numDocs())  # one reader for the searcher's life
        self._analyzer_utils = autoclass("io.anserini.analysis.AnalyzerUtils")
        self._lock = threading.Lock()
        self.filter_fields = filter_fields  # indexed host/date(/language) fields: a Restriction can be applied
        self._java: dict | None = None  # Lucene query classes for restricted searches, loaded on first use

    @classmethod
    def open(cls, build_dir: Path, section: LuceneSection, *, threads: int = 2) -> "LuceneSearcher":
        """The searcher of a build's Lucene leg; a folder whose document count is not the manifest's
        (copied from another build) is refused as a damaged one is, in one line naming the folder."""
        searcher = cls(
            build_dir / layout.LUCENE_DIR, k1=section.k1, b=section.b, threads=threads,
            filter_fields=section.filter_fields, analyzer=section.analyzer,
        )  # fmt: skip
        if searcher.size != section.documents:
            searcher.close()
            raise LegError("lucene", f"has {searcher.size} documents, the manifest says {section.documents} "
                           "(a Lucene index from another build?)", str(build_dir / layout.LUCENE_DIR))  # fmt: skip
        return searcher

    @property
    def size(self) -> int:
        return self._size

    def terms(self, query: str) -> list[str]:
        return list(self._analyzer_utils.analyze(self._analyzer, self._prepare(query)))

    def bounded(self, query: str) -> str:
        """`query` as the index was analyzed (Han runs as their unit terms) with at most `max_terms`
        distinct terms, the rarest in the index (ranker.long_query)."""
        query = self._prepare(query)
        if not might_exceed(query, self.max_terms):
            return query

        def terms_of(text: str) -> list[str]:
            return [str(t) for t in self._analyzer_utils.analyze(self._analyzer, text)]

        return bound_terms(query, terms_of, self.doc_freqs, self.max_terms)

    def doc_freqs(self, terms: Sequence[str]) -> list[int]:
        """Document (passage) frequency of each index term, read from the reader opened with the searcher:
        no file is opened after `open`, so a build whose folder was removed while served still answers."""
        term = autoclass("org.apache.lucene.index.Term")
        with INSTANCE_CALLS, unreadable_as_error(self._dir):  # each open index has its own reader
            reader = self._topk.reader
            if reader is None:
                raise IndexClosed(closed_message(self._dir))
            return [int(reader.docFreq(term("contents", t))) for t in terms]

    def search(
        self, queries: Sequence[str], k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[list[Hit]]:
        """Top-k per query. A `Restriction` becomes a Lucene FILTER clause over the indexed host and
        date fields (BM25 scores unchanged); plain source filters are left to the pipeline's post-filter.
        Long queries are bounded to `max_terms` terms."""
        return [self._to_hits(ids, scores) for ids, scores in self.search_raw(queries, k, filters)]

    def search_raw(
        self, queries: Sequence[str], k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[tuple[list[str], list[float]]]:
        """As `search`, each query's top k as (passage ids, scores) best first: no `Hit` per candidate
        (the pipeline's lean hybrid path, `ranker.candidates`)."""
        return self._batch(queries, k, filters, positions=False)

    def search_positions(
        self, queries: Sequence[str], k: int, filters: SourceFilters | Restriction | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """As `search_raw` with each hit's position in the build's columns (int64) instead of its id and
        float32 scores, for the lean hybrid path; None for a build without the doc-position map."""
        if not self._topk.has_positions:
            return None
        return self._batch(queries, k, filters, positions=True)

    def search_positions_later(self, queries: Sequence[str], k: int) -> Later | JavaLater | None:
        """Unfiltered `search_positions` to run on another thread once started (`Later.start`; at the
        latest when its result is asked for). None where it cannot run beside the caller: one
        thread, or no doc-position map."""
        check_k(k)
        if not queries:
            return None
        # Damage that shows only when a query reads the postings: one line, as on the caller's thread.
        return self._topk.positions_later([self.bounded(q) for q in queries], k, guard=functools.partial(unreadable_as_error, self._dir))

    def _batch(self, queries: Sequence[str], k: int, filters: SourceFilters | Restriction | None, *, positions: bool) -> list:
        check_k(k)
        if not queries:
            return []
        queries = [self.bounded(q) for q in queries]
        wrap = None
        if isinstance(filters, Restriction) and self.filter_fields:
            wrap = functools.partial(self._restricted, restrict=filters)
        with unreadable_as_error(self._dir):  # damage that shows only when a query reads the postings
            return self._topk.batch(queries, k, wrap, positions=positions)

    def _restricted(self, query, restrict: Restriction):
        """BooleanQuery: the bag-of-words BM25 `query` (MUST) + non-scoring FILTER clauses."""
        with INSTANCE_CALLS:  # fresh builders and lists, built by several threads at once
            j = self._filter_classes()
            occur = j["Occur"]
            builder = j["Builder"]()
            builder.add(query, occur.MUST)

            def codes_in(name, prefix, codes):
                terms = j["ArrayList"]()
                for c in codes:
                    terms.add(j["BytesRef"](f"{prefix}{c}".encode()))
                return j["TermInSetQuery"](name, terms)

            def hosts(codes):
                return codes_in("host", "h", codes)

            if restrict.include_hosts is not None:
                builder.add(hosts(restrict.include_hosts), occur.FILTER)
            if restrict.exclude_hosts:
                builder.add(hosts(restrict.exclude_hosts), occur.MUST_NOT)
            if restrict.date_range is not None:
                lo, hi = restrict.date_range
                dates = j["Builder"]()
                dates.add(j["TermRangeQuery"].newStringRange("date", lo, hi, True, True), occur.SHOULD)
                dates.add(j["TermQuery"](j["Term"]("date", "x")), occur.SHOULD)  # non-ISO dates: the post-filter decides
                for token in restrict.date_tokens:
                    dates.add(j["TermQuery"](j["Term"]("date", token)), occur.SHOULD)
                builder.add(dates.build(), occur.FILTER)
            if restrict.languages is not None and "language" in self.filter_fields:  # builds before it: post-filter
                builder.add(codes_in("language", "l", restrict.languages), occur.FILTER)
            return builder.build()

    def _filter_classes(self) -> dict:
        if self._java is None:
            names = {
                "Builder": "org.apache.lucene.search.BooleanQuery$Builder",
                "Occur": "org.apache.lucene.search.BooleanClause$Occur",
                "TermInSetQuery": "org.apache.lucene.search.TermInSetQuery",
                "TermRangeQuery": "org.apache.lucene.search.TermRangeQuery",
                "TermQuery": "org.apache.lucene.search.TermQuery",
                "Term": "org.apache.lucene.index.Term",
                "BytesRef": "org.apache.lucene.util.BytesRef",
                "ArrayList": "java.util.ArrayList",
            }
            self._java = {k: autoclass(v) for k, v in names.items()}
        return self._java

    @staticmethod
    def _to_hits(ids: list[str], scores: list[float]) -> list[Hit]:
        # Positional: (passage_id, doc_id, score, rank, bm25, dense, fused, authority, bm25_rank)
        return [Hit(pid, doc_id_of(pid), s, r, s, None, None, None, r) for r, (pid, s) in enumerate(zip(ids, scores), 1)]

    def close(self) -> None:
        with self._lock:
            self._topk.close()


def _unchanged(text: str) -> str:
    return text


# How a query is prepared for the analyzer a build's index was written with (older builds: older ways).
_PREPARE = {ANALYZER: for_lucene, MARKS_IN_RTL_ONLY_ANALYZER: functools.partial(for_lucene, marks_in_rtl_only=True),
            HAN_ONLY_ANALYZER: for_lucene_han_only}  # fmt: skip


# Java exceptions (the exception or one of its causes) that say the index's files cannot be read.
UNREADABLE = frozenset({
    "CorruptIndexException", "EOFException", "IOException", "IndexFormatTooOldException", "IndexFormatTooNewException",
    "NoSuchFileException", "FileNotFoundException", "AccessDeniedException", "IndexNotFoundException",
})  # fmt: skip


def closed_message(lucene_dir: Path) -> str:
    return f"{lucene_dir}: the lexical leg was closed (SearchPipeline.close); open the index again"


class unreadable_as_error:  # noqa: N801 - used as a context manager, like contextlib's
    """A Java exception that says `lucene_dir`'s files are damaged or missing (`UNREADABLE`) becomes one
    line naming the folder and the innermost cause, e.g. `lucene: EOFException: read past EOF: ...`.
    A class, not a generator: a single query enters it right after its encode, on flushed caches."""

    def __init__(self, lucene_dir: Path):
        self._dir = lucene_dir

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> bool:
        # jnius.JavaException, known by its `classname` (importing jnius first would start the JVM)
        if not isinstance(exc, Exception) or not getattr(exc, "classname", None):
            return False
        names = java_exception_names(exc)
        if "AlreadyClosedException" in names:  # a caller held the leg past SearchPipeline.close
            raise IndexClosed(closed_message(self._dir)) from None
        if not names & UNREADABLE:
            return False
        raise LegError("lucene", first_line(exc), str(self._dir)) from None
