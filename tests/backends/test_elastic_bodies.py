"""Elasticsearch request bodies against the documented DSL (mapping parameters, similarity settings,
`match`/`bool.filter`, top-level `knn` with `filter`, bulk and `_aliases` formats). Always run: pure
functions, no cluster."""

from __future__ import annotations

import json

import pytest

from backends.elastic import bodies
from ranker.filters import SourceFilter, _under


def test_index_body_sets_bm25_similarity_analyzer_and_source_fields() -> None:
    body = bodies.index_body(k1=0.9, b=0.4, analyzer="english", dims=None)
    sim = body["settings"]["index"]["similarity"]
    assert sim == {bodies.SIMILARITY: {"type": "BM25", "k1": 0.9, "b": 0.4}}
    props = body["mappings"]["properties"]
    assert props[bodies.TEXT] == {"type": "text", "analyzer": "english", "similarity": bodies.SIMILARITY}
    for name in ("passage_id", "doc_id", "site", "domain", "category", "language"):
        assert props[name] == {"type": "keyword"}
    assert props["tier"]["type"] in {"byte", "short", "integer"}
    assert props["published"]["type"] == "date" and "yyyy" in props["published"]["format"].split("||")
    assert props["published"]["ignore_malformed"] is True  # a bad date in one document cannot fail the bulk
    assert bodies.VECTOR not in props and "_source" not in body["mappings"] and "_meta" not in body["mappings"]
    json.dumps(body)  # the client sends it as JSON


def test_index_body_with_dense_leg_maps_an_int8_hnsw_cosine_vector() -> None:
    body = bodies.index_body(k1=1.2, b=0.75, analyzer="cjk", dims=384, hnsw_m=32, hnsw_ef_construction=80,
                             meta={"encoder": {"dimension": 384}})
    vec = body["mappings"]["properties"][bodies.VECTOR]
    assert vec["type"] == "dense_vector" and vec["dims"] == 384 and vec["element_type"] == "float"
    assert vec["index"] is True and vec["similarity"] == "cosine"
    # Explicit: ES 9.1+ defaults float vectors of >= 384 dims to bbq_hnsw.
    assert vec["index_options"] == {"type": "int8_hnsw", "m": 32, "ef_construction": 80}
    assert body["mappings"]["_source"] == {"excludes": [bodies.VECTOR]}
    assert body["settings"]["index"]["similarity"][bodies.SIMILARITY]["k1"] == 1.2
    assert body["mappings"]["_meta"] == {"encoder": {"dimension": 384}}


@pytest.mark.parametrize("language, chinese, expected", [("en", "cjk", "english"), ("zh", "cjk", "cjk"),
                                                         ("zh", "smartcn", "smartcn"), ("zh-Hans", "cjk", "cjk")])
def test_analyzer_for_language(language: str, chinese: str, expected: str) -> None:
    assert bodies.analyzer_for(language, chinese) == expected


def test_analyzer_for_unknown_language_names_it() -> None:
    with pytest.raises(ValueError, match="'tlh'"):
        bodies.analyzer_for("tlh")


@pytest.mark.parametrize("host", ["data.worldbank.org", "worldbank.org", "www.stats.gov.cn", "localhost"])
@pytest.mark.parametrize("domain", ["worldbank.org", "org", "bank.org", "stats.gov.cn", "gov.cn", "data.worldbank.org"])
def test_domain_terms_match_exactly_when_the_embedded_filter_does(host: str, domain: str) -> None:
    assert (domain in bodies.domain_suffixes(host)) == _under(host, domain)


def test_passage_source_sends_the_date_as_written_without_its_time() -> None:
    """Elasticsearch moves a time with an offset to its UTC day; the embedded filters read the date as written."""
    for published, sent in [("2026-02-28T23:30:00-08:00", "2026-02-28"), ("2026-03-01T00:30:00+14:00", "2026-03-01"),
                            ("2020-05", "2020-05"), ("2020", "2020")]:  # fmt: skip
        assert bodies.passage_source(passage_id="d#0", doc_id="d", title="", text="t", published=published)["published"] == sent


def test_passage_source_leaves_out_missing_fields_and_joins_title_like_lucene() -> None:
    src = bodies.passage_source(passage_id="d1#0", doc_id="d1", title="T", text="body", host="a.b.org", tier=1,
                                published="2020-05-07", vector=[0.5, -0.5])
    assert src == {"passage_id": "d1#0", "doc_id": "d1", bodies.TEXT: "T\nbody", "host": "a.b.org",
                   "domain": ["a.b.org", "b.org", "org"], "tier": 1, "published": "2020-05-07",
                   bodies.VECTOR: [0.5, -0.5]}
    bare = bodies.passage_source(passage_id="d2#3", doc_id="d2", title="", text="only text")
    assert bare == {"passage_id": "d2#3", "doc_id": "d2", bodies.TEXT: "only text"}


def test_bulk_actions_expand_to_the_documented_ndjson_pairs() -> None:
    from elasticsearch.helpers.actions import expand_action  # the client's own bulk serialisation

    sources = [bodies.passage_source(passage_id=f"d{i}#0", doc_id=f"d{i}", title="", text=f"t{i}") for i in range(2)]
    actions = list(bodies.bulk_actions("drsearch-v1", sources))
    lines = [expand_action(a) for a in actions]
    assert lines[0] == ({"index": {"_index": "drsearch-v1", "_id": "d0#0"}}, sources[0])
    assert lines[1][0] == {"index": {"_index": "drsearch-v1", "_id": "d1#0"}}


def test_bm25_query_is_a_match_query_that_never_parses_syntax() -> None:
    text = 'title:Jazz AND (blues OR "ragtime~2) -swing*'
    body = bodies.bm25_query(text, 100)
    assert body["query"] == {"match": {bodies.TEXT: {"query": text, "operator": "or"}}}
    assert "query_string" not in json.dumps(body) and "simple_query_string" not in json.dumps(body)
    assert body["size"] == 100 and body["_source"] is False and body["track_scores"] is True
    assert body["sort"] == [{"_score": "desc"}, {"passage_id": "asc"}]  # ties by id, as Anserini breaks them


def test_bm25_query_puts_source_filters_in_non_scoring_filter_clauses() -> None:
    f = SourceFilter(include_domains=("worldbank.org",), exclude_domains=("blog.worldbank.org",), min_tier=2,
                     categories=("statistics", "central_bank"), published_after="2019", published_before="2020-05")
    body = bodies.bm25_query("inflation", 10, f)
    assert body["query"]["bool"]["must"] == [{"match": {bodies.TEXT: {"query": "inflation", "operator": "or"}}}]
    assert body["query"]["bool"]["filter"] == [
        {"terms": {"domain": ["worldbank.org"]}},
        {"bool": {"must_not": [{"terms": {"domain": ["blog.worldbank.org"]}}]}},
        {"range": {"tier": {"lte": 2}}},
        {"terms": {"category": ["statistics", "central_bank"]}},
        {"range": {"published": {"gte": "2019-01-01||/y", "lte": "2020-05-01||/M"}}},
    ]


@pytest.mark.parametrize("prefix, expected", [("2020", "2020-01-01||/y"), ("2020-05", "2020-05-01||/M"),
                                              ("2020-05-07", "2020-05-07||/d")])
def test_published_bounds_cover_the_whole_period_the_prefix_names(prefix: str, expected: str) -> None:
    # `lte` with date-math rounding rounds up to the period's last millisecond: inclusive, as prefix comparison is.
    assert bodies.filter_clauses(SourceFilter(published_before=prefix)) == [{"range": {"published": {"lte": expected}}}]


def test_no_filters_no_clauses() -> None:
    assert bodies.filter_clauses(None) == [] and bodies.filter_clauses(SourceFilter()) == []
    assert "bool" not in bodies.bm25_query("x", 5, SourceFilter())["query"]


def test_knn_query_uses_the_top_level_knn_option_with_filter() -> None:
    f = SourceFilter(include_domains=("imf.org",))
    body = bodies.knn_query([0.1, 0.2, 0.3], 10, f)
    knn = body["knn"]
    assert knn["field"] == bodies.VECTOR and knn["query_vector"] == [0.1, 0.2, 0.3] and knn["k"] == 10
    assert knn["k"] <= knn["num_candidates"] <= bodies.MAX_WINDOW
    assert knn["rescore_vector"] == {"oversample": 2.0}  # exact float cosines for the top k, not int8 ones
    assert knn["filter"] == [{"terms": {"domain": ["imf.org"]}}]
    assert body["size"] == 10 and "query" not in body
    assert "filter" not in bodies.knn_query([1.0], 5)["knn"]
    assert bodies.knn_query([1.0], 10_000)["knn"]["num_candidates"] == 10_000


@pytest.mark.parametrize("k", [0, 10_001])
def test_k_outside_the_result_window_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match="k must be between 1 and 10000"):
        bodies.bm25_query("x", k)


def test_vector_scores_query_scores_named_passages_with_a_non_negative_script() -> None:
    body = bodies.vector_scores_query([0.6, 0.8], ["a#0", "b#1"])
    ss = body["query"]["script_score"]
    assert ss["query"] == {"ids": {"values": ["a#0", "b#1"]}} and body["size"] == 2
    assert ss["script"]["source"] == f"cosineSimilarity(params.query_vector, '{bodies.VECTOR}') + 1.0"
    assert ss["script"]["params"] == {"query_vector": [0.6, 0.8]}


def test_msearch_pairs_a_header_with_each_body() -> None:
    b1, b2 = bodies.bm25_query("a", 1), bodies.bm25_query("b", 2)
    assert bodies.msearch_body("idx", [b1, b2]) == [{"index": "idx"}, b1, {"index": "idx"}, b2]


def test_alias_switch_removes_and_adds_in_one_atomic_request() -> None:
    body = bodies.alias_actions("drsearch", "drsearch-v2", ["drsearch-v1", "drsearch-v2"])
    assert body == {"actions": [{"remove": {"index": "drsearch-v1", "alias": "drsearch"}},
                                {"add": {"index": "drsearch-v2", "alias": "drsearch"}}]}
    assert bodies.alias_actions("a", "a-1") == {"actions": [{"add": {"index": "a-1", "alias": "a"}}]}


def test_cosine_is_recovered_from_the_knn_score() -> None:
    for cos in (-1.0, 0.0, 0.25, 1.0):
        assert bodies.cosine_from_score((1 + cos) / 2) == pytest.approx(cos)


def test_versioned_index_is_lower_case() -> None:
    assert bodies.versioned_index("drsearch", "20261130T120000-AbC123") == "drsearch-20261130t120000-abc123"


@pytest.mark.parametrize(("prefix", "starts"), [("2020", []), ("2020-05", ["2020-01-01"]),
                                                ("2020-05-07", ["2020-01-01", "2020-05-01"])])  # fmt: skip
def test_a_lower_bound_lets_dates_of_a_year_or_month_alone_inside_it_through(prefix: str, starts: list[str]) -> None:
    """A document dated `2020` (indexed as 2020-01-01) is inside `published_after=2020-05-07` (it may be
    from May or later): the first days of the bound's year and month pass too, and the pipeline's
    post-filter is exact. (From the bound's year on, a day's window took in a year of documents.)"""
    bound = {"range": {"published": {"gte": bodies._date_math(prefix)}}}
    expected = {"bool": {"should": [bound, {"terms": {"published": starts}}], "minimum_should_match": 1}} if starts else bound
    assert bodies.filter_clauses(SourceFilter(published_after=prefix)) == [expected]
