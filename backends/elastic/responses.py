"""Elasticsearch responses -> the project's types, as pure functions (the counterpart of `bodies`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backends.elastic.bodies import cosine_from_score
from backends.hit import Hit
from indexer.errors import BackendUnavailable
from indexer.schema import doc_id_of


def msearch_hits(response: Mapping[str, Any], what: str, where: str) -> list[list[dict[str, Any]]]:
    """The `hits.hits` of each `_msearch` response in order; a failed search (an item carrying
    `error` instead of `hits`) fails the whole call with the cluster's reason."""
    out = []
    for item in response["responses"]:
        if "error" in item:
            err = item["error"]
            reason = f"{err.get('type', 'error')}: {err.get('reason', '')}" if isinstance(err, dict) else str(err)
            raise BackendUnavailable(f"{what}: HTTP {item.get('status', '?')} {reason}", where=where)
        out.append(item["hits"]["hits"])
    return out


def bm25_hits(hits: Sequence[Mapping[str, Any]]) -> list[Hit]:
    """BM25 hits, ranks 1..n; the score is `_score` (tracked while sorting) or the first sort value."""
    out = []
    for rank, h in enumerate(hits, 1):
        pid = h["_id"]
        score = float(h["_score"] if h.get("_score") is not None else h["sort"][0])
        out.append(Hit(pid, doc_id_of(pid), score, rank, score, None, None, None, rank))
    return out


def knn_hits(hits: Sequence[Mapping[str, Any]]) -> list[Hit]:
    """kNN hits with the cosine similarity as their score (comparable with FAISS inner products)."""
    out = []
    for rank, h in enumerate(hits, 1):
        pid = h["_id"]
        score = cosine_from_score(float(h["_score"]))
        out.append(Hit(pid, doc_id_of(pid), score, rank, None, score, None, None, None, rank))
    return out


def script_cosines(hits: Sequence[Mapping[str, Any]], passage_ids: Sequence[str]) -> np.ndarray:
    """Cosines from a `vector_scores_query` response, in the order of `passage_ids` (NaN: not in the index)."""
    got = {h["_id"]: float(h["_score"]) - 1.0 for h in hits}
    return np.array([got.get(pid, np.nan) for pid in passage_ids], dtype=np.float32)
