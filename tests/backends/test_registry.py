"""The registry and the typed manifest: legs open from what a manifest names; bad names are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends import registry
from backends.base import LEXICAL, VECTOR
from backends.faiss.section import FaissSection
from backends.lucene.section import LuceneSection
from backends.manifest import Manifest
from indexer import layout
from indexer.build import build_index
from indexer.errors import ConfigError, IndexFormatError
from indexer.settings import BuildSettings, DenseSettings

DOC = {"id": "a", "title": "Heat", "text": "heat transfer in boundary layers"}


@pytest.fixture(scope="module")
def bm25_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("registry")
    corpus = tmp / "docs.jsonl"
    corpus.write_text(json.dumps(DOC) + "\n")
    return build_index([corpus], tmp / "idx", BuildSettings(quiet=True, dense=DenseSettings(enabled=False))).build_dir


def test_every_backend_has_one_leg_and_a_section_naming_it() -> None:
    for name, backend in registry.BACKENDS.items():
        assert backend.leg in (LEXICAL, VECTOR)
        assert backend.section.model_fields["backend"].default == name
    for legs in registry.BUILDS.values():
        assert set(legs) == {LEXICAL, VECTOR} and all(registry.BACKENDS[b].leg == leg for leg, b in legs.items())


def test_manifest_round_trips_and_opens_only_the_legs_it_names(bm25_build: Path) -> None:
    manifest = Manifest.read(bm25_build)
    assert isinstance(manifest.bm25, LuceneSection) and manifest.dense is None and manifest.legs == (LEXICAL,)
    assert Manifest.model_validate(manifest.as_json()) == manifest
    legs = registry.open_legs(bm25_build, manifest)
    try:
        assert set(legs) == {LEXICAL} and legs[LEXICAL].size == 1
    finally:
        for leg in legs.values():
            leg.close()


def test_vector_section_is_parsed_into_its_backend_model() -> None:
    section = {"backend": "faiss", "model": "/m", "bundled": True, "model_name": "m", "dimension": 8, "model_key": "k",
               "count": 1, "encoded": 1, "reused": 0, "ann": "exact"}  # fmt: skip
    assert isinstance(Manifest.model_validate({**_minimal(), "dense": section}).dense, FaissSection)


def _minimal() -> dict:
    return {"drsearch_version": "0", "version": "v", "built_at": "t", "build_seconds": 0,
            "corpus": {"paths": [], "sha256": ""}, "counts": {}, "chunking": {},
            "bm25": {"backend": "lucene", "k1": 0.9, "b": 0.4, "documents": 1}}  # fmt: skip


def test_unknown_backend_in_a_manifest_is_a_one_line_error(bm25_build: Path, tmp_path: Path) -> None:
    raw = layout.read_manifest(bm25_build)
    raw["bm25"]["backend"] = "nosuch"
    layout.write_manifest(tmp_path, raw)
    with pytest.raises(IndexFormatError) as err:
        Manifest.read(tmp_path)
    assert "manifest field bm25" in str(err.value) and "\n" not in str(err.value)
    assert err.value.where == str(tmp_path / layout.MANIFEST)


def test_unknown_build_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'nosuch'"):
        registry.writers(BuildSettings(backend="nosuch"))
