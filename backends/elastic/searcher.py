"""The Elasticsearch legs: BM25 and kNN run in the cluster with source filters pushed down as ES
filters; fusion, authority and caps stay in the pipeline, so results compare with the embedded backend.

Both searchers read the build's own versioned index (not the alias) and batch with `_msearch`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import LEXICAL, VECTOR, Leg, SourceFilters, check_k, query_matrix
from backends.elastic import bodies, responses
from backends.elastic.config import ElasticSettings, cluster_errors, load_settings, make_client
from backends.elastic.section import ElasticSection, ElasticVectorSection
from backends.hit import Hit
from indexer.errors import ConfigError


class _ElasticLeg:
    """Shared by both legs: the client, `_msearch` with per-search error checks, the passage count."""

    def __init__(self, section: ElasticSection | ElasticVectorSection, es: ElasticSettings | None = None,
                 client: Any = None):  # fmt: skip
        self.section = section
        self.es = es or load_settings()
        self.url = self.es.url or section.url  # env/CLI may carry credentials or another route to the cluster
        self.client = client or make_client(self.es.model_copy(update={"url": self.url}))
        self._size: int | None = None

    @property
    def size(self) -> int:
        if self._size is None:
            with cluster_errors(self.url, f"counting passages in {self.section.index}"):
                self._size = int(self.client.count(index=self.section.index)["count"])
        return self._size

    def _msearch(self, searches: list[dict[str, Any]], what: str) -> list[list[dict[str, Any]]]:
        """Hits per search body, in order; a failed search fails the call with the cluster's reason."""
        if not searches:
            return []
        with cluster_errors(self.url, what):
            response = self.client.msearch(searches=bodies.msearch_body(self.section.index, searches))
        return responses.msearch_hits(response, what, self.section.url)

    def _filters(self, filters: SourceFilters | None) -> SourceFilters | None:
        """Tier and category are only pushed down when the build indexed them."""
        if filters is None or self.section.source_fields:
            return filters
        return _WithoutAuthority(filters)

    def close(self) -> None:
        self.client.close()


class _WithoutAuthority:
    """A filter view without tier/category (left to the pipeline's post-filter)."""

    min_tier = None
    categories: tuple[str, ...] = ()

    def __init__(self, inner: SourceFilters):
        self.include_domains, self.exclude_domains = inner.include_domains, inner.exclude_domains
        self.published_after, self.published_before = inner.published_after, inner.published_before


class ElasticSearcher(_ElasticLeg):
    """BM25 in Elasticsearch (a `backends.base.LexicalRetriever`)."""

    name: ClassVar[Leg] = LEXICAL

    @classmethod
    def open(cls, build_dir: Path, section: ElasticSection, **_: Any) -> "ElasticSearcher":
        return cls(section)

    def terms(self, query: str) -> list[str]:
        with cluster_errors(self.url, "analyzing a query"):
            tokens = self.client.indices.analyze(index=self.section.index, field=bodies.TEXT, text=query)["tokens"]
        return [t["token"] for t in tokens]

    def search(self, queries: Sequence[str], k: int, filters: SourceFilters | None = None) -> list[list[Hit]]:
        check_k(k)
        k = min(k, bodies.MAX_WINDOW)
        pushed = self._filters(filters)
        runs = self._msearch([bodies.bm25_query(q, k, pushed) for q in queries], "BM25 search")
        return [responses.bm25_hits(hits) for hits in runs]


class ElasticVectorSearcher(_ElasticLeg):
    """kNN over the `dense_vector` field (a `backends.base.VectorRetriever`); queries are encoded
    here with the encoder the passages were embedded with."""

    name: ClassVar[Leg] = VECTOR

    def __init__(self, section: ElasticVectorSection, es: ElasticSettings | None = None, client: Any = None, *,
                 model: Any = None, device: str | None = None):  # fmt: skip
        super().__init__(section, es, client)
        self.dimension = int(section.dimension)
        self._model = model
        self._device = device
        self._lock = threading.Lock()

    @classmethod
    def open(cls, build_dir: Path, section: ElasticVectorSection, **_: Any) -> "ElasticVectorSearcher":
        return cls(section)

    def encode(self, queries: Sequence[str], on_idle: Callable[[], None] | None = None) -> np.ndarray:
        from backends.faiss.encoder import check_model_unchanged, dimension_of, encode_queries, load_query_encoder

        settings = self.section.encoder_settings(self._device)
        with self._lock:
            if self._model is None:
                model = load_query_encoder(settings)
                if int(dimension_of(model)) != self.dimension:
                    raise ConfigError(f"encoder produces {dimension_of(model)}-dimensional vectors, the index "
                                      f"holds {self.dimension}", where=str(settings.model or "bundled model"))  # fmt: skip
                check_model_unchanged(self.section.model_digest, settings)
                self._model = model
        return encode_queries(self._model, list(queries), settings, on_idle)

    def search_vectors(self, vectors: np.ndarray, k: int, filters: SourceFilters | None = None) -> list[list[Hit]]:
        check_k(k)
        k = min(k, bodies.MAX_WINDOW)
        q = self._as_queries(vectors)
        pushed = self._filters(filters)
        runs = self._msearch([bodies.knn_query(v, k, pushed) for v in q.tolist()], "kNN search")
        return [responses.knn_hits(hits) for hits in runs]

    def scores_for(self, vectors: np.ndarray, passage_ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        q = self._as_queries(vectors)
        if len(q) != len(passage_ids):
            raise ValueError(f"{len(q)} query vectors but {len(passage_ids)} candidate lists")
        runs = self._msearch([bodies.vector_scores_query(v, ids) for v, ids in zip(q.tolist(), passage_ids)],
                             "vector rescoring")  # fmt: skip
        return [responses.script_cosines(hits, ids) for ids, hits in zip(passage_ids, runs)]

    def _as_queries(self, vectors: np.ndarray) -> np.ndarray:
        return query_matrix(vectors, self.dimension)
