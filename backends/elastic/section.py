"""The Elasticsearch legs' manifest sections: written by the writers, read by the searchers.

Both legs of a build live in one versioned index. `index` is the build's own index, which the
searchers read, so a build's results never change when a later build moves the alias.
`url` never carries credentials.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from backends.base import Section
from backends.faiss.section import EncoderSection


class ElasticSection(Section):
    """BM25 leg: where the passages are, their text's analyzer and the BM25 parameters."""

    backend: Literal["elasticsearch"] = "elasticsearch"
    summary_fields: ClassVar[tuple[str, ...]] = ("url", "index", "analyzer", "k1", "b")
    url: str
    index: str
    alias: str
    documents: int = Field(ge=0)
    analyzer: str
    language: str
    k1: float = Field(gt=0)
    b: float = Field(ge=0, le=1)
    source_fields: bool = False  # tier/category were indexed from the authority list (else not pre-filtered)
    cluster_version: str | None = None  # Elasticsearch version that built the index


class ElasticVectorSection(EncoderSection):
    """kNN leg: the `dense_vector` field (`dimension`, `count`) and the encoder its vectors came from."""

    backend: Literal["elasticsearch-knn"] = "elasticsearch-knn"
    summary_fields: ClassVar[tuple[str, ...]] = ("index", "model", "dimension")
    url: str
    index: str
    alias: str
    similarity: str = "cosine"
    index_options: dict[str, Any]
    source_fields: bool = False
