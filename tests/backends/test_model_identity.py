"""What identifies a model: the contents of its files (weights, pooling and other module configs,
tokenizer), not their names and sizes, keys the embedding cache and the ONNX export; a build
records it and its absolute path, and a search refuses a model changed since the build. Real tiny
models built here (tests/model_fixtures.py), real ONNX export, Lucene and FAISS."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from backends.faiss.encoder import encoder_info, load_encoder, model_key
from backends.faiss.onnx import exported_model
from indexer.build import build_index
from indexer.errors import ConfigError
from indexer.settings import BuildSettings, DenseSettings
from ranker.pipeline import SearchOptions, SearchPipeline
from tests.model_fixtures import perturb_weights
from tests.text_fixtures import DOCS


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRSEARCH_CACHE", str(tmp_path / "drsearch-cache"))


def _corpus(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    return path


def _settings(model: Path | str, encoder: str = "auto") -> BuildSettings:
    return BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(model=str(model), device="cpu", encoder=encoder))


def _set_cls_pooling(model: Path) -> None:
    config = model / "1_Pooling" / "config.json"
    fields = json.loads(config.read_text())
    fields.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    config.write_text(json.dumps(fields))


def _retokenize(model: Path) -> None:
    """Another tokenizer of the same size: two vocabulary entries swap their ids."""
    path = model / "tokenizer.json"
    tokenizer = json.loads(path.read_text())
    vocab = tokenizer["model"]["vocab"]
    a, b = sorted(vocab, key=vocab.get)[-2:]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    path.write_text(json.dumps(tokenizer))


CHANGES = {
    "weights, same size": lambda m: perturb_weights(m / "model.safetensors"),
    "pooling mean -> CLS": _set_cls_pooling,
    "tokenizer": _retokenize,
    "Dense module's weights": lambda m: perturb_weights(m / "2_Dense" / "model.safetensors"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_model_file_is_a_new_cache_key_and_onnx_export(tiny_dense_model: Path, tmp_path: Path, change: str) -> None:
    """A fine-tune saved into the same folder, another pooling, tokenizer or Dense module: each is
    another embedding-cache key and another ONNX export. The same files elsewhere are the same key."""
    torch_model = load_encoder(DenseSettings(model=str(tiny_dense_model), device="cpu", encoder="st"))
    model = shutil.copytree(tiny_dense_model, tmp_path / "model")
    settings = DenseSettings(model=str(model), encoder="st")
    before = model_key(encoder_info(torch_model, settings)), exported_model(torch_model, model, int8=False)
    moved = shutil.copytree(model, tmp_path / "elsewhere" / "model")
    CHANGES[change](model)
    after = model_key(encoder_info(torch_model, settings)), exported_model(torch_model, model, int8=False)
    assert after[0] != before[0] and after[1] != before[1] and after[1].is_file()
    assert model_key(encoder_info(torch_model, settings.model_copy(update={"model": str(moved)}))) == before[0]


def test_a_fine_tune_saved_over_the_model_is_encoded_afresh_and_old_builds_refuse_it(tiny_model: Path, tmp_path: Path) -> None:
    """The second build encodes every passage with the new weights (nothing reused from the cache,
    a new ONNX export); the first build, whose vectors came from the old weights, refuses to encode
    queries with the new ones, in one line naming the model."""
    model = shutil.copytree(tiny_model, tmp_path / "model")
    corpus = _corpus(tmp_path / "docs.jsonl")
    first = build_index([corpus], tmp_path / "idx", _settings(model)).build_dir
    perturb_weights(model / "model.safetensors")
    second = build_index([corpus], tmp_path / "idx", _settings(model)).manifest.section("dense")
    assert (second.encoded, second.reused) == (len(DOCS), 0)
    assert len(list((tmp_path / "drsearch-cache" / "onnx").iterdir())) == 2
    pipeline = SearchPipeline.open(first)
    try:
        with pytest.raises(ConfigError, match="model's files changed since this index was built") as err:
            pipeline.rank(["lava from a volcanic vent"], SearchOptions(k=3, mode="dense"))
        assert err.value.where == str(model) and "\n" not in str(err.value)
    finally:
        pipeline.close()


def test_a_relative_model_path_is_recorded_absolute(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--model models/x` given in one directory: searches from any other directory load that model."""
    (tmp_path / "work" / "models").mkdir(parents=True)
    shutil.copytree(tiny_model, tmp_path / "work" / "models" / "x")
    monkeypatch.chdir(tmp_path / "work")
    build = build_index([_corpus(tmp_path / "docs.jsonl")], tmp_path / "idx", _settings(os.path.join("models", "x"))).build_dir
    assert json.loads((build / "manifest.json").read_text())["dense"]["model"] == str(tmp_path / "work" / "models" / "x")
    monkeypatch.chdir(tmp_path)
    pipeline = SearchPipeline.open(build)
    try:
        assert len(pipeline.rank(["lava from a volcanic vent"], SearchOptions(k=3, mode="dense"))[0]) == 3
    finally:
        pipeline.close()
