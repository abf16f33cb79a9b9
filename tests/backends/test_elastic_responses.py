"""Elasticsearch responses (shaped as the `_msearch` and search API docs show them) -> `Hit`s.
Pure functions; no cluster."""

from __future__ import annotations

import numpy as np
import pytest

from backends.elastic import responses
from indexer.errors import BackendUnavailable


def _hit(pid: str, score: float | None, sort: list | None = None) -> dict:
    h = {"_index": "drsearch-v1", "_id": pid, "_score": score}
    if sort is not None:
        h["sort"] = sort
    return h


MSEARCH = {
    "took": 3,
    "responses": [
        {"took": 1, "timed_out": False, "status": 200,
         "hits": {"max_score": None, "hits": [_hit("a#0", 7.5, [7.5, "a#0"]), _hit("doc#x#1", 7.5, [7.5, "doc#x#1"])]}},
        {"took": 1, "timed_out": False, "status": 200, "hits": {"max_score": None, "hits": []}},
    ],
}  # fmt: skip


def test_msearch_hits_keep_the_order_of_the_searches() -> None:
    runs = responses.msearch_hits(MSEARCH, "BM25 search", "http://es:9200")
    assert [[h["_id"] for h in r] for r in runs] == [["a#0", "doc#x#1"], []]


def test_a_failed_search_inside_msearch_fails_the_call_in_one_line() -> None:
    failed = {"responses": [MSEARCH["responses"][0], {"status": 404, "error": {
        "type": "index_not_found_exception", "reason": "no such index [drsearch-v1]"}}]}  # fmt: skip
    with pytest.raises(BackendUnavailable) as info:
        responses.msearch_hits(failed, "BM25 search", "http://es:9200")
    assert str(info.value) == ("http://es:9200: BM25 search: HTTP 404 index_not_found_exception: "
                               "no such index [drsearch-v1]")  # fmt: skip


def test_bm25_hits_rank_and_score_with_document_ids() -> None:
    hits = responses.bm25_hits(MSEARCH["responses"][0]["hits"]["hits"])
    assert [(h.passage_id, h.doc_id, h.rank, h.score, h.bm25, h.bm25_rank) for h in hits] == [
        ("a#0", "a", 1, 7.5, 7.5, 1), ("doc#x#1", "doc#x", 2, 7.5, 7.5, 2)]
    assert all(h.dense is None and h.dense_rank is None and h.fused is None for h in hits)
    # Without track_scores ES leaves `_score` null when sorting; the score is then the first sort value.
    assert responses.bm25_hits([_hit("b#0", None, [3.25, "b#0"])])[0].score == 3.25


def test_knn_hits_score_the_cosine() -> None:
    hits = responses.knn_hits([_hit("a#0", 0.9), _hit("b#0", 0.5)])  # cosine similarity: _score = (1 + cos) / 2
    assert [(h.passage_id, h.rank, h.dense_rank) for h in hits] == [("a#0", 1, 1), ("b#0", 2, 2)]
    assert [h.score for h in hits] == pytest.approx([0.8, 0.0]) and [h.dense for h in hits] == pytest.approx([0.8, 0.0])
    assert all(h.bm25 is None and h.bm25_rank is None for h in hits)


def test_script_cosines_follow_the_requested_order() -> None:
    got = responses.script_cosines([_hit("b#0", 1.5), _hit("a#0", 0.75)], ["a#0", "b#0", "gone#0"])
    assert got[:2] == pytest.approx([-0.25, 0.5]) and np.isnan(got[2]) and got.dtype == np.float32
