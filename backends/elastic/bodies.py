"""Elasticsearch request bodies as pure functions (no client, no I/O), so each one can be checked
against the documented DSL in unit tests and the writer and searcher only send them.

Field names are the module constants below; the mapping, the bulk actions and the queries all use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from backends.base import SourceFilters

TEXT = "contents"  # title + "\n" + passage text, exactly what the Lucene leg indexes
VECTOR = "vector"
SIMILARITY = "drsearch_bm25"
KEYWORDS = ("passage_id", "doc_id", "host", "domain", "site", "category", "language")
PUBLISHED_FORMATS = "strict_date_optional_time||yyyy-MM||yyyy"
MAX_WINDOW = 10_000  # ES default index.max_result_window, and the kNN k / num_candidates ceiling
ANALYZERS = {"en": "english"}  # language -> built-in analyzer; Chinese takes `chinese_analyzer`


def analyzer_for(language: str, chinese_analyzer: str = "cjk") -> str:
    """The analyzer of the passage text: `english`, or for Chinese the built-in `cjk` (bigrams) or
    `smartcn` when the analysis-smartcn plugin is installed on every node."""
    if language.startswith("zh"):
        return chinese_analyzer
    if language not in ANALYZERS:
        raise ValueError(f"no Elasticsearch analyzer for language {language!r} (known: en, zh)")
    return ANALYZERS[language]


def index_body(*, k1: float, b: float, analyzer: str, dims: int | None, shards: int = 1, replicas: int = 0,
               hnsw_m: int = 16, hnsw_ef_construction: int = 100, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """`PUT /<index>` body: a BM25 similarity with the build's k1/b on the text field, keyword source
    fields for filters, and (when `dims`) an int8-quantised HNSW `dense_vector` with cosine similarity.
    `meta` goes to the mapping's `_meta` (application data ES stores and returns, never interprets)."""
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in KEYWORDS}
    properties[TEXT] = {"type": "text", "analyzer": analyzer, "similarity": SIMILARITY}
    properties["tier"] = {"type": "byte"}
    properties["published"] = {"type": "date", "format": PUBLISHED_FORMATS, "ignore_malformed": True}
    mappings: dict[str, Any] = {"dynamic": "strict", "properties": properties}
    if meta:
        mappings["_meta"] = meta
    if dims:
        properties[VECTOR] = {
            "type": "dense_vector", "dims": int(dims), "element_type": "float", "index": True,
            "similarity": "cosine",
            "index_options": {"type": "int8_hnsw", "m": hnsw_m, "ef_construction": hnsw_ef_construction},
        }  # fmt: skip
        mappings["_source"] = {"excludes": [VECTOR]}  # the vectors live in the HNSW graph; the store keeps the text
    settings = {
        "number_of_shards": shards, "number_of_replicas": replicas,
        "similarity": {SIMILARITY: {"type": "BM25", "k1": float(k1), "b": float(b)}},
    }  # fmt: skip
    return {"settings": {"index": settings}, "mappings": mappings}


def domain_suffixes(host: str | None) -> list[str]:
    """`data.worldbank.org` -> [`data.worldbank.org`, `worldbank.org`, `org`]: a term filter on any
    listed domain then matches its subdomains too, as the embedded filters do."""
    if not host:
        return []
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def passage_source(*, passage_id: str, doc_id: str, title: str, text: str, host: str | None = None,
                   site: str | None = None, tier: int | None = None, category: str | None = None,
                   language: str | None = None, published: str | None = None,
                   vector: Sequence[float] | None = None) -> dict[str, Any]:
    """One passage's `_source`; fields without a value are left out (missing, not null-as-value). Of
    `published` only its date goes (YYYY[-MM[-DD]], as written): filters read a document's date as written,
    and Elasticsearch would move a time with an offset to its day in UTC (`2026-02-28T23:30:00-08:00` was
    inside `published_after: 2026-03-01`)."""
    doc: dict[str, Any] = {
        "passage_id": passage_id, "doc_id": doc_id, TEXT: f"{title}\n{text}" if title else text,
        "host": host, "domain": domain_suffixes(host) or None, "site": site, "tier": tier,
        "category": category, "language": language, "published": published[:10] if published else None,
    }  # fmt: skip
    if vector is not None:
        doc[VECTOR] = [float(x) for x in vector]
    return {k: v for k, v in doc.items() if v is not None}


def bulk_actions(index: str, sources: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Actions for `elasticsearch.helpers.streaming_bulk`: one `index` op per passage, `_id` = passage id
    (so a retried chunk overwrites instead of duplicating)."""
    for source in sources:
        yield {"_op_type": "index", "_index": index, "_id": source["passage_id"], "_source": source}


def filter_clauses(filters: SourceFilters | None) -> list[dict[str, Any]]:
    """Source filters as non-scoring `filter` clauses (pre-filtering: the top k are taken among the
    passages that pass). Same semantics as ranker.filters.SourceFilter.accepts."""
    if filters is None:
        return []
    out: list[dict[str, Any]] = []
    if filters.include_domains:
        out.append({"terms": {"domain": list(filters.include_domains)}})
    if filters.exclude_domains:
        out.append({"bool": {"must_not": [{"terms": {"domain": list(filters.exclude_domains)}}]}})
    if filters.min_tier is not None:
        out.append({"range": {"tier": {"lte": int(filters.min_tier)}}})
    if filters.categories:
        out.append({"terms": {"category": list(filters.categories)}})
    published: dict[str, str] = {}
    if filters.published_after:
        published["gte"] = _date_math(filters.published_after)
    if filters.published_before:
        published["lte"] = _date_math(filters.published_before)  # `lte` rounds up to the period's end
    if published:
        clause: dict[str, Any] = {"range": {"published": published}}
        if starts := _period_starts(filters.published_after):
            # A year or month alone is indexed as its first day, before a finer lower bound inside it, yet
            # inside the bound (ranker.filters.on_or_after): those first days pass too (the post-filter is
            # exact; a document of exactly that day is the only other one let through).
            clause = {"bool": {"should": [clause, {"terms": {"published": starts}}], "minimum_should_match": 1}}
        out.append(clause)
    return out


def _period_starts(after: str | None) -> list[str]:
    """`2020-05-07` -> the first days of 2020 and of May 2020; `2020-05` -> of 2020; `2020` -> none."""
    if not after or len(after) <= 4:
        return []
    starts = [f"{after[:4]}-01-01"]
    if len(after) > 7:
        starts.append(f"{after[:7]}-01")
    return starts


def _date_math(prefix: str) -> str:
    """`2020` -> `2020-01-01||/y`, `2020-05` -> `2020-05-01||/M`, `2020-05-07` -> `2020-05-07||/d`:
    the whole year/month/day the prefix names, as prefix comparison means."""
    parts = prefix.split("-")
    unit = {1: "y", 2: "M", 3: "d"}[len(parts)]
    return "-".join(parts + ["01"] * (3 - len(parts))) + "||/" + unit


def _size(k: int) -> int:
    if not 1 <= k <= MAX_WINDOW:
        raise ValueError(f"k must be between 1 and {MAX_WINDOW} for Elasticsearch, got {k}")
    return k


def bm25_query(text: str, k: int, filters: SourceFilters | None = None) -> dict[str, Any]:
    """BM25 top-k for plain query text: a `match` query (analysed, OR of terms; never query syntax),
    source filters in `filter`; ties broken by passage id as Anserini does; ids only, no `_source`."""
    query: dict[str, Any] = {"match": {TEXT: {"query": text, "operator": "or"}}}
    clauses = filter_clauses(filters)
    if clauses:
        query = {"bool": {"must": [query], "filter": clauses}}
    return {
        "size": _size(k), "query": query, "_source": False, "track_total_hits": False, "track_scores": True,
        "sort": [{"_score": "desc"}, {"passage_id": "asc"}],
    }  # fmt: skip


def knn_query(vector: Sequence[float], k: int, filters: SourceFilters | None = None, *,
              num_candidates: int | None = None, oversample: float = 2.0) -> dict[str, Any]:
    """Approximate kNN top-k with the source filters in `knn.filter` (applied during the HNSW search,
    so k hits come back whenever k passages pass). `rescore_vector` re-scores the top k x `oversample`
    int8 candidates with the float vectors (ES 8.18+/9.x), so scores are exact cosines, as FAISS gives."""
    k = _size(k)
    candidates = min(MAX_WINDOW, max(k, num_candidates or 2 * k, 100))
    knn: dict[str, Any] = {"field": VECTOR, "query_vector": [float(x) for x in vector], "k": k,
                           "num_candidates": candidates, "rescore_vector": {"oversample": float(oversample)}}  # fmt: skip
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = clauses
    return {"size": k, "knn": knn, "_source": False, "track_total_hits": False}


def vector_scores_query(vector: Sequence[float], passage_ids: Sequence[str]) -> dict[str, Any]:
    """Exact cosine of the query vector with given passages (by id), for rescoring BM25 candidates.
    `script_score` needs non-negative scores, hence the +1 that `cosine_from_score`-style callers undo."""
    return {
        "size": len(passage_ids), "_source": False, "track_total_hits": False,
        "query": {"script_score": {
            "query": {"ids": {"values": list(passage_ids)}},
            "script": {"source": f"cosineSimilarity(params.query_vector, '{VECTOR}') + 1.0",
                       "params": {"query_vector": [float(x) for x in vector]}},
        }},
    }  # fmt: skip


def msearch_body(index: str, bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`_msearch` NDJSON lines as a list: a header naming the index, then the body, per search."""
    out: list[dict[str, Any]] = []
    for body in bodies:
        out += [{"index": index}, body]
    return out


def cosine_from_score(score: float) -> float:
    """Cosine similarity from a kNN `_score`; for `cosine` ES scores (1 + cosine) / 2."""
    return 2.0 * score - 1.0


def alias_actions(alias: str, new_index: str, old_indices: Iterable[str] = ()) -> dict[str, Any]:
    """`POST /_aliases` body moving `alias` to `new_index` in one atomic cluster-state update."""
    actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": alias}} for old in old_indices if old != new_index]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return {"actions": actions}


def versioned_index(name: str, version: str) -> str:
    """`<name>-<version>` in the lower case ES requires for index names."""
    return f"{name}-{version}".lower()
