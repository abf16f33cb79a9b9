"""What the Elasticsearch writer would send, from a real store and the real authority list: the
source fields it indexes for pre-filtering agree with what the pipeline's own filters see, so a
filter gives the same passages whether it runs in the cluster or in the pipeline. No cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.elastic import bodies
from backends.elastic.writer import passage_sources
from indexer import layout
from indexer.store import Store
from ranker.authority import AuthorityList
from ranker.pipeline import SearchPipeline
from service.cli_backends import source_fields
from tests.service.conftest import build_tiny_index

DOCS = [
    {"id": "wb", "title": "Open data", "text": "Indicators of poverty.", "url": "https://data.worldbank.org/indicator",
     "published": "2021-06-01"},
    {"id": "nbs", "title": "Statistics", "text": "Consumer prices in China.", "url": "https://www.stats.gov.cn/sj/"},
    {"id": "blog", "title": "A blog", "text": "Thoughts on prices.", "url": "http://Blog.Example.COM:8080/p?q=1"},
    {"id": "plain", "title": "", "text": "No source at all. " * 60},  # chunked into several passages
]  # fmt: skip


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_tiny_index(tmp_path_factory.mktemp("eswriter"), DOCS, dense=False, chunk_words=50)
    return layout.resolve_build(root)


def test_indexed_source_fields_agree_with_the_pipeline_filters(build: Path) -> None:
    authority = AuthorityList.load()
    store = Store(build / layout.STORE)
    pipeline = SearchPipeline.open(build, authority=authority)
    try:
        sources = list(passage_sources(store, "en", source_fields(authority)))
        assert [s["passage_id"] for s in sources] == [pid for _, pid, _, _ in store.iter_passages()]
        assert len({s["doc_id"] for s in sources}) == len(DOCS) < len(sources)
        for s in sources:
            meta = pipeline.source_meta(s["passage_id"])
            assert (s.get("host"), s.get("site"), s.get("tier"), s.get("category"), s.get("published")) == (
                meta.host, meta.site, meta.tier, meta.category, meta.published)
            assert (s["domain"] == bodies.domain_suffixes(meta.host)) if meta.host else ("domain" not in s)
            assert s["language"] == "en" and bodies.VECTOR not in s
    finally:
        pipeline.close()
        store.close()
    wb = next(s for s in sources if s["doc_id"] == "wb")
    assert (wb["host"], wb["tier"], wb["category"]) == ("data.worldbank.org", 1, "statistics")
    assert wb["domain"] == ["data.worldbank.org", "worldbank.org", "org"] and wb[bodies.TEXT].startswith("Open data\n")


def test_vectors_follow_passage_idx(build: Path) -> None:
    store = Store(build / layout.STORE)
    try:
        n = store.counts()[1]
        vectors = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
        sources = list(passage_sources(store, "zh", vectors=vectors))
    finally:
        store.close()
    assert [s[bodies.VECTOR] for s in sources] == vectors.tolist()
    assert all("host" not in s and s["language"] == "zh" for s in sources)
