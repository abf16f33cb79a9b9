"""The Elasticsearch backend against a real cluster: conformance of both legs, pre-filtering, the
alias contract, and SciFact end to end compared with the embedded backend.

Runs only when DRSEARCH_ES_URL names a cluster (see docs/OPERATIONS.md for a local single-node one);
otherwise every test here is skipped with that reason (`pytest -rs` prints it). Indices and aliases
made here are named `drsearch-test-<random>` and deleted afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drsearch
from tests.text_fixtures import DOCS

ES_URL = os.environ.get("DRSEARCH_ES_URL")
pytestmark = pytest.mark.skipif(
    not ES_URL, reason="DRSEARCH_ES_URL is not set: no Elasticsearch cluster to test against "
    "(no server can be installed on the project's machines; request bodies are unit-tested without one)",
)  # fmt: skip

SITES = {"volcano": "https://data.volcano.gov/v", "tides": "https://www.noaa.gov/tides", "jazz": "https://blog.example.com/j"}


@pytest.fixture(scope="module")
def es_alias() -> Iterator[str]:
    from backends.elastic.config import ElasticSettings, make_client

    alias = f"drsearch-test-{secrets.token_hex(4)}"
    yield alias
    client = make_client(ElasticSettings(url=ES_URL))
    try:  # by name: wildcard deletes are refused by default (action.destructive_requires_name)
        names = list(client.indices.get(index=f"{alias}-*", allow_no_indices=True))
        if names:
            client.indices.delete(index=",".join(names))
    finally:
        client.close()


@pytest.fixture(scope="module")
def es_root(tmp_path_factory: pytest.TempPathFactory, es_alias: str) -> Path:
    """A tiny corpus (with URLs and dates on some documents) built into the cluster, BM25 + dense."""
    tmp = tmp_path_factory.mktemp("es")
    corpus = tmp / "docs.jsonl"
    rows = [{"id": i, "title": t, "text": x, "url": SITES.get(i), "published": "2021-06-01" if i in SITES else None}
            for i, t, x in DOCS]  # fmt: skip
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    drsearch("index", "build", "--backend", "elasticsearch", "--es-url", ES_URL, "--es-index", es_alias,
             "--corpus", corpus, "--out", tmp / "idx", "--chunk-words", "0", "-q", check=True)  # fmt: skip
    return tmp / "idx"


@pytest.fixture(scope="module")
def legs(es_root: Path):
    from backends import registry
    from backends.manifest import Manifest
    from indexer import layout

    build = layout.resolve_build(es_root)
    opened = registry.open_legs(build, Manifest.read(build))
    yield opened
    for leg in opened.values():
        leg.close()


def test_manifest_names_the_versioned_index_and_no_credentials(es_root: Path, es_alias: str) -> None:
    from backends.manifest import Manifest
    from indexer import layout

    build = layout.resolve_build(es_root)
    m = Manifest.read(build)
    assert m.bm25.backend == "elasticsearch" and m.dense is not None and m.dense.backend == "elasticsearch-knn"
    assert m.bm25.index == f"{es_alias}-{build.name}".lower() == m.dense.index and m.bm25.alias == es_alias
    assert "@" not in m.bm25.url and m.bm25.documents == len(DOCS) and m.dense.count == len(DOCS)
    assert m.dense.index_options["type"] == "int8_hnsw" and m.dense.similarity == "cosine"
    assert m.bm25.cluster_version and m.bm25.source_fields and m.dense.source_fields


def test_alias_points_at_the_build(es_root: Path, es_alias: str) -> None:
    from backends.elastic.config import ElasticSettings, make_client
    from backends.manifest import Manifest
    from indexer import layout

    client = make_client(ElasticSettings(url=ES_URL))
    try:
        assert list(client.indices.get_alias(name=es_alias)) == [Manifest.read(layout.resolve_build(es_root)).bm25.index]
    finally:
        client.close()


def test_a_second_build_moves_the_alias_and_the_first_keeps_its_index(es_root: Path, es_alias: str, legs) -> None:
    from backends.elastic.config import ElasticSettings, make_client
    from backends.manifest import Manifest
    from indexer import layout

    first = layout.resolve_build(es_root)
    corpus = es_root.parent / "docs.jsonl"
    drsearch("index", "build", "--backend", "elasticsearch", "--es-url", ES_URL, "--es-index", es_alias, "--corpus",
             corpus, "--out", es_root, "--chunk-words", "0", "--no-dense", "-q", check=True)  # fmt: skip
    second = layout.resolve_build(es_root)
    assert second != first
    client = make_client(ElasticSettings(url=ES_URL))
    try:
        assert list(client.indices.get_alias(name=es_alias)) == [Manifest.read(second).bm25.index]
        assert client.indices.exists(index=Manifest.read(first).bm25.index)
    finally:
        client.close()
    assert legs["bm25"].search(["lava from a volcanic vent"], 1)[0][0].doc_id == "volcano"  # the first build's legs


def test_bm25_leg_conformance(legs) -> None:
    bm25 = legs["bm25"]
    assert bm25.size == len(DOCS)
    queries = ["lava from a volcanic vent", "jazz improvisation in New Orleans", "lava from a volcanic vent"]
    runs = bm25.search(queries, 3)
    assert [r[0].doc_id for r in runs] == ["volcano", "jazz", "volcano"] and runs[0] == runs[2]
    for hits in runs:
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
        assert all(h.bm25 == h.score and h.bm25_rank == h.rank and h.dense is None for h in hits)
    assert runs == [bm25.search([q], 3)[0] for q in queries]
    assert bm25.search([], 5) == []
    assert bm25.search(['title:Jazz AND (blues OR "ragtime~2) -swing*'], 3)[0][0].doc_id == "jazz"
    assert bm25.terms("the of and") == [] and bm25.terms("Volcanoes")


def test_vector_leg_conformance(legs) -> None:
    dense = legs["dense"]
    vectors = dense.encode(["magma and lava eruptions", "blockchain ledger miners"])
    assert vectors.shape == (2, dense.dimension)
    runs = dense.search_vectors(vectors, 3)
    assert [r[0].doc_id for r in runs] == ["volcano", "bitcoin"]
    assert all(-1.0 <= h.dense <= 1.0 and h.dense_rank == h.rank and h.bm25 is None for r in runs for h in r)
    scores = dense.scores_for(vectors[:1], [[runs[0][0].passage_id, runs[0][1].passage_id]])[0]
    assert scores[0] == pytest.approx(runs[0][0].dense, abs=0.02) and scores[0] >= scores[1]


def test_filters_are_applied_inside_the_cluster(legs) -> None:
    from ranker.filters import SourceFilter

    only_gov = SourceFilter(include_domains=("volcano.gov", "noaa.gov"))
    hits = legs["bm25"].search(["jazz music and volcanic lava and tides"], 10, only_gov)[0]
    assert {h.doc_id for h in hits} == {"volcano", "tides"}
    vec = legs["dense"].encode(["jazz music"])
    assert {h.doc_id for h in legs["dense"].search_vectors(vec, 3, only_gov)[0]} <= {"volcano", "tides"}
    dated = SourceFilter(published_after="2021-06", published_before="2021")
    assert {h.doc_id for h in legs["bm25"].search(["jazz volcanic tides"], 10, dated)[0]} == set(SITES)
    assert legs["bm25"].search(["jazz volcanic tides"], 10, SourceFilter(published_before="2020"))[0] == []


def test_search_cli_over_the_cluster(es_root: Path) -> None:
    out = drsearch("search", "lava from a volcanic vent", "--index", es_root, "-k", "2", "--json", check=True)
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["doc_id"] == "volcano"


@pytest.mark.slow
def test_scifact_in_elasticsearch_matches_the_embedded_backend(tmp_path: Path, es_alias: str,
                                                                scifact_flat_index: Path, scifact_subset: Path) -> None:  # fmt: skip
    """Same corpus (the SciFact subset), same k1/b, same encoder: nDCG@10 within a small tolerance of Lucene
    + FAISS (the analyzers differ: ES `english` vs Anserini's Porter analyzer; int8 HNSW vs exact search)."""
    scifact = scifact_subset
    root = tmp_path / "es"
    from tests.conftest import _share_embedding_cache

    root.mkdir()
    _share_embedding_cache(root)
    drsearch("index", "build", "--backend", "elasticsearch", "--es-url", ES_URL, "--es-index", es_alias + "-scifact",
             "--corpus", scifact, "--out", root, "--chunk-words", "0", "-q", check=True, timeout=3600)  # fmt: skip
    ours = json.loads(drsearch("eval", "--index", root, "--beir", scifact, "--mode", "all", "--json", check=True).stdout)
    embedded = json.loads(drsearch("eval", "--index", scifact_flat_index, "--beir", scifact, "--mode", "all", "--json",
                                   check=True).stdout)  # fmt: skip
    for mode, tolerance in (("bm25", 0.03), ("dense", 0.01), ("hybrid", 0.02)):
        assert abs(ours[mode]["ndcg@10"] - embedded[mode]["ndcg@10"]) <= tolerance, (mode, ours[mode], embedded[mode])
