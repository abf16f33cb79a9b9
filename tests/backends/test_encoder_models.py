"""The encoders that pool outside the model (onnx, onnx-int8, st-bf16) on models unlike the bundled
one: a RoBERTa whose tokenizer gives no token_type_ids runs on them with the model's own vectors; a
model with a module after pooling (Dense) is refused in one line, and `auto` runs it on torch.
Real tiny models built here (tests/model_fixtures.py), real ONNX Runtime, Lucene and FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backends.faiss.bf16 import cpu_capability, native_bf16
from backends.faiss.encoder import encode_passages, encoder_info, load_encoder
from indexer.build import build_index
from indexer.errors import ConfigError
from indexer.settings import BuildSettings, DenseSettings
from ranker.pipeline import SearchOptions, SearchPipeline
from tests.conftest import drsearch
from tests.text_fixtures import DOCS

needs_bf16 = pytest.mark.skipif(not native_bf16(cpu_capability()), reason="this CPU has no native bfloat16 (AMX or AVX512-BF16)")
TEXTS = [f"{title}\n{text}" for _, title, text in DOCS]


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "encoder-models-cache"))


def _corpus(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    return path


def _build_and_search(model: Path, tmp_path: Path, encoder: str):
    settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(model=str(model), device="cpu", encoder=encoder))
    build = build_index([_corpus(tmp_path / "docs.jsonl")], tmp_path / encoder, settings).build_dir
    pipeline = SearchPipeline.open(build)
    try:
        hits = pipeline.rank(["lava from a volcanic vent", "jazz"], SearchOptions(k=3, mode="dense"))
    finally:
        pipeline.close()
    return json.loads((build / "manifest.json").read_text())["dense"], hits


@pytest.mark.parametrize("encoder", ["onnx", "onnx-int8", "st-bf16"])
def test_a_module_after_pooling_is_refused_in_one_line(tiny_dense_model: Path, encoder: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_encoder(DenseSettings(model=str(tiny_dense_model), device="cpu", encoder=encoder))
    message = str(err.value)
    assert f"--encoder {encoder} cannot run this model" in message and "Dense module after pooling" in message
    assert "use --encoder st" in message and "\n" not in message


def test_auto_runs_a_model_with_a_module_after_pooling_on_torch(tiny_dense_model: Path, tmp_path: Path) -> None:
    """`auto` (ONNX on the CPU) falls back to torch for such a model, and the manifest says so:
    the index holds the model's own 16-dimensional vectors, and queries use torch too."""
    import faiss
    from sentence_transformers import SentenceTransformer

    dense, hits = _build_and_search(tiny_dense_model, tmp_path, "auto")
    assert dense["encoder"] == "st" and dense["dimension"] == 16
    assert all(len(run) == 3 for run in hits)
    build = next((tmp_path / "auto" / "builds").iterdir())
    stored = faiss.read_index(str(build / "dense" / "index.faiss")).reconstruct_n(0, len(DOCS))
    own = SentenceTransformer(str(tiny_dense_model), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(stored, own, atol=1e-5)


@pytest.mark.parametrize(("encoder", "min_cosine"), [("onnx", 0.99999), ("onnx-int8", 0.95)])
def test_a_model_without_token_type_ids_runs_on_onnx(tiny_model: Path, encoder: str, min_cosine: float) -> None:
    """XLM-R / RoBERTa tokenizers give no token_type_ids: the export takes the inputs the tokenizer gives."""
    settings = DenseSettings(model=str(tiny_model), device="cpu", encoder=encoder)
    ours = load_encoder(settings)
    assert [i.name for i in ours._session.get_inputs()] == ["input_ids", "attention_mask"]
    assert encoder_info(ours, settings)["encoder"] == encoder
    ref = encode_passages(load_encoder(settings.model_copy(update={"encoder": "st"})), TEXTS, settings)
    assert ((encode_passages(ours, TEXTS, settings) * ref).sum(axis=1)).min() > min_cosine
    assert np.array_equal(ours.encode_each(TEXTS[:3])[1], ours.encode([TEXTS[1]])[0])


def test_a_default_build_of_a_model_without_token_type_ids_is_searchable(tiny_model: Path, tmp_path: Path) -> None:
    """The default encoder (ONNX on the CPU) and the default --pq-m on a 32-dimensional model."""
    dense, hits = _build_and_search(tiny_model, tmp_path, "auto")
    assert dense["encoder"] == "onnx" and dense["dimension"] == 32
    assert all(len(run) == 3 for run in hits)


@needs_bf16
def test_a_bf16_build_of_a_model_without_token_type_ids_is_searchable(tiny_model: Path, tmp_path: Path) -> None:
    """Its queries are encoded by ONNX Runtime (fp32), which crashed on the missing token_type_ids."""
    dense, hits = _build_and_search(tiny_model, tmp_path, "st-bf16")
    assert dense["encoder"] == "st-bf16" and all(len(run) == 3 for run in hits)


def test_an_unusable_onnx_cache_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DRSEARCH_CACHE naming a regular file: loading the ONNX encoder (a build's, or a search's
    on an ONNX index) names the folder it cannot make; the CLI says it in one line, exit 2."""
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("DRSEARCH_CACHE", str(tmp_path / "afile"))
    with pytest.raises(ConfigError, match="cannot write the ONNX export cache") as err:
        load_encoder(DenseSettings(device="cpu", encoder="onnx"))
    assert err.value.where.startswith(str(tmp_path / "afile" / "onnx"))
    proc = drsearch("index", "build", "--corpus", _corpus(tmp_path / "docs.jsonl"), "--out", tmp_path / "idx", "-q")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path / "afile" / "onnx") in lines[0] and "DRSEARCH_CACHE" in lines[0]


def test_no_home_directory_exports_to_a_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A user id with no passwd entry and HOME unset, as containers often run: Path.home() raised
    RuntimeError, a traceback from the CLI. The export goes to a folder of this process under TMPDIR,
    with a warning that asks for DRSEARCH_CACHE; only where that fails too is it a one-line error."""
    import pwd
    import tempfile

    from backends.faiss import onnx

    def no_entry(uid: int):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("DRSEARCH_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)  # what the passwd lookup answers for such a user id
    monkeypatch.delenv("HOME", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    onnx._process_folder.cache_clear()
    encoder = load_encoder(DenseSettings(device="cpu", encoder="onnx"))
    assert encoder.path.is_relative_to(tmp_path / "tmp") and encoder.encode(["a query"]).shape[0] == 1
    assert "no home directory for the ONNX export cache" in caplog.text and "DRSEARCH_CACHE" in caplog.text
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "a-file"))  # no folder can be made there
    onnx._process_folder.cache_clear()
    try:
        with pytest.raises(ConfigError, match="no home directory for the ONNX export cache.*set DRSEARCH_CACHE"):
            load_encoder(DenseSettings(device="cpu", encoder="onnx"))
    finally:
        onnx._process_folder.cache_clear()


def test_the_export_cache_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from backends.faiss.onnx import cache_root

    monkeypatch.delenv("DRSEARCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "drsearch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the spec: a relative path is ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "drsearch"
    monkeypatch.setenv("DRSEARCH_CACHE", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"
