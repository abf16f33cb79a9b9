"""Writes a build's passages into a fresh versioned index `<alias>-<version>` with the bulk helper,
then moves the alias to it in one atomic `_aliases` call (the cluster's `current`).

One index holds both legs, so `ElasticWriter` (the BM25 leg, which runs first) writes the text and,
when the build has a dense leg, the vectors too; `ElasticVectorWriter` then describes the vector
field from the index's mapping. A build that fails part-way deletes its half-written index and leaves
the alias where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
from tqdm import tqdm

from backends.base import LEXICAL, VECTOR, BuildContext, Leg
from backends.elastic import bodies
from backends.elastic.config import ElasticSettings, cluster_errors, load_settings, make_client, public_url
from backends.elastic.section import ElasticSection, ElasticVectorSection
from indexer import layout
from indexer.errors import BackendUnavailable, IndexFormatError
from indexer.schema import doc_id_of
from indexer.settings import BuildSettings

_VECTORS_FILE = ".vectors.npy"  # the build's passage vectors, in idx order, until they are indexed

#: url or domain of a passage's document -> (host, site, tier, category); given by the caller that
#: owns the authority list (backends do not read it).
SourceFields = Callable[[str | None], tuple[str | None, str | None, int | None, str | None]]


def passage_sources(store: Any, language: str, fields_of: SourceFields | None = None,
                    vectors: Any = None) -> Iterator[dict[str, Any]]:
    """Every passage of a finished store as the `_source` it is indexed with, in passage idx order
    (`vectors` row i belongs to passage idx i)."""
    fields_of = fields_of or (lambda raw: (None, None, None, None))
    rows = zip(store.iter_passages(), store.passage_doc_fields())  # both in passage idx order
    for (idx, passage_id, title, text), (_, _, url, domain, published) in rows:
        host, site, tier, category = fields_of(url or domain)
        yield bodies.passage_source(
            passage_id=passage_id, doc_id=doc_id_of(passage_id), title=title, text=text, host=host, site=site,
            tier=tier, category=category, language=language, published=published,
            vector=vectors[idx].tolist() if vectors is not None else None,
        )  # fmt: skip


class _ElasticBuild:
    def __init__(self, settings: BuildSettings, es: ElasticSettings | None = None):
        self.settings = settings
        self.es = es or load_settings()
        self.url = self.es.require_url()
        self.client = make_client(self.es)
        with cluster_errors(self.url, "cannot reach the cluster"):  # fail before reading the corpus
            self.cluster_version = str(self.client.info()["version"]["number"])

    def index_name(self, ctx: BuildContext) -> str:
        return bodies.versioned_index(self.es.index, ctx.build_dir.name)


class ElasticWriter(_ElasticBuild):
    """The text with the language's analyzer and BM25(k1, b), the source fields for pre-filtering and,
    when the build has a dense leg, the passage vectors (from the shared embedding cache) as int8 HNSW."""

    leg: ClassVar[Leg] = LEXICAL

    def __init__(self, settings: BuildSettings, es: ElasticSettings | None = None, *,
                 sources: SourceFields | None = None, model: Any = None):  # fmt: skip
        super().__init__(settings, es)
        self.analyzer = bodies.analyzer_for(self.es.language, self.es.chinese_analyzer)
        self.sources = sources
        self.model = model
        if settings.dense.enabled and model is None:  # a bad --model fails now, not after reading
            from backends.faiss.encoder import load_encoder

            self.model = load_encoder(settings.dense)

    def write(self, ctx: BuildContext) -> ElasticSection:
        embedded = None
        meta: dict[str, Any] = {"source_fields": self.sources is not None}
        dense = self.settings.dense
        if dense.enabled:
            from backends.faiss.cache import embed_store

            embedded = embed_store(ctx.store, ctx.root / layout.EMBEDDING_CACHE_DIR, dense, self.model, quiet=ctx.quiet,
                                   out=ctx.build_dir / _VECTORS_FILE)  # fmt: skip
            meta["encoder"] = {**embedded.info, "model_key": embedded.model_key, "count": embedded.count,
                                "encoded": embedded.encoded, "reused": embedded.reused}  # fmt: skip
        index = self.index_name(ctx)
        body = bodies.index_body(
            k1=self.settings.bm25_k1, b=self.settings.bm25_b, analyzer=self.analyzer,
            dims=embedded.dimension if embedded is not None else None, shards=self.es.shards,
            replicas=self.es.replicas, hnsw_m=dense.hnsw_m, hnsw_ef_construction=dense.hnsw_ef_construction, meta=meta,
        )  # fmt: skip
        with cluster_errors(self.url, f"creating index {index}"):
            self.client.indices.create(index=index, **body)
        try:
            documents = self._fill(index, ctx, embedded)
            self._switch_alias(index)
        except BaseException:
            self._drop(index)
            raise
        finally:
            (ctx.build_dir / _VECTORS_FILE).unlink(missing_ok=True)  # the vectors now live in the cluster
        return ElasticSection(
            url=public_url(self.url), index=index, alias=self.es.index, documents=documents, analyzer=self.analyzer,
            language=self.es.language, k1=self.settings.bm25_k1, b=self.settings.bm25_b,
            source_fields=self.sources is not None, cluster_version=self.cluster_version,
        )  # fmt: skip

    def _fill(self, index: str, ctx: BuildContext, embedded: Any) -> int:
        from elasticsearch.helpers import streaming_bulk

        vectors = np.load(embedded.path, mmap_mode="r") if embedded is not None else None  # read in idx order
        actions = bodies.bulk_actions(index, passage_sources(ctx.store, self.es.language, self.sources, vectors))
        with cluster_errors(self.url, f"bulk indexing into {index}"), tqdm(
            total=ctx.passages, desc="index elasticsearch", unit="psg", disable=ctx.quiet, dynamic_ncols=True
        ) as bar:  # fmt: skip
            for _ok, _item in streaming_bulk(self.client, actions, chunk_size=self.es.bulk_chunk,
                                             max_retries=self.es.max_retries, raise_on_error=True):  # fmt: skip
                bar.update()
            self.client.indices.refresh(index=index)
            documents = int(self.client.count(index=index)["count"])
        if documents != ctx.passages:
            raise BackendUnavailable(f"index {index} holds {documents} passages, the store {ctx.passages}",
                                     where=public_url(self.url))  # fmt: skip
        return documents

    def _switch_alias(self, index: str) -> None:
        alias = self.es.index
        with cluster_errors(self.url, f"moving alias {alias} to {index}"):
            if self.client.indices.exists_alias(name=alias):
                old = list(self.client.indices.get_alias(name=alias))
            elif self.client.indices.exists(index=alias):
                raise BackendUnavailable(f"{alias} is a concrete index, not an alias; choose another --es-index",
                                         where=public_url(self.url))  # fmt: skip
            else:
                old = []
            self.client.indices.update_aliases(**bodies.alias_actions(alias, index, old))

    def _drop(self, index: str) -> None:
        try:
            self.client.indices.delete(index=index, ignore_unavailable=True)
        except Exception:  # the cluster is why we are here; the original error is what matters
            pass


class ElasticVectorWriter(_ElasticBuild):
    """Describes the vector field `ElasticWriter` filled in the same index (nothing more to send)."""

    leg: ClassVar[Leg] = VECTOR

    def __init__(self, settings: BuildSettings, es: ElasticSettings | None = None, **_: Any):
        super().__init__(settings, es)

    def write(self, ctx: BuildContext) -> ElasticVectorSection:
        index = self.index_name(ctx)
        with cluster_errors(self.url, f"reading the mapping of {index}"):
            mapping = self.client.indices.get_mapping(index=index)[index]["mappings"]
        field = mapping.get("properties", {}).get(bodies.VECTOR)
        meta = mapping.get("_meta", {})
        encoder = meta.get("encoder")
        if not field or not encoder:
            raise IndexFormatError("the index has no vector field (was it written with the dense leg?)", where=index)
        return ElasticVectorSection(**encoder, url=public_url(self.url), index=index, alias=self.es.index,
                                    similarity=field.get("similarity", "cosine"),
                                    source_fields=bool(meta.get("source_fields")),
                                    index_options=field.get("index_options", {}))  # fmt: skip
