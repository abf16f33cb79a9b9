"""The bfloat16 passage encoder (`--encoder st-bf16`) of the bundled model: vectors close to the
fp32 model's, recorded in the manifest, and queries of such a build encoded in fp32. Real torch in
bfloat16 (oneDNN), real ONNX Runtime and FAISS on a tiny build; skipped on a CPU without native
bfloat16, where the encoder refuses to load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from backends.faiss.bf16 import cpu_capability, native_bf16  # noqa: E402
from backends.faiss.encoder import encode_passages, encoder_info, load_encoder, model_key  # noqa: E402
from indexer.build import build_index  # noqa: E402
from indexer.errors import ConfigError  # noqa: E402
from indexer.settings import BuildSettings, DenseSettings  # noqa: E402
from ranker.pipeline import SearchOptions, SearchPipeline  # noqa: E402
from tests.text_fixtures import DOCS  # noqa: E402

needs_bf16 = pytest.mark.skipif(not native_bf16(cpu_capability()), reason="this CPU has no native bfloat16 (AMX or AVX512-BF16)")
TEXTS = [f"{title}\n{text}" for _, title, text in DOCS]


@pytest.fixture(scope="module")
def bf16_model():
    return load_encoder(DenseSettings(device="cpu", encoder="st-bf16"))


@pytest.fixture(scope="module")
def torch_model():
    return load_encoder(DenseSettings(device="cpu", encoder="st"))


def test_native_bf16_needs_a_bf16_feature() -> None:
    assert native_bf16({"amx_bf16": True, "avx512_bf16": False})
    assert native_bf16({"avx512_bf16": True})
    assert not native_bf16({"avx512_bw": True, "avx512_f": True, "amx_int8": True})
    assert not native_bf16({})


@needs_bf16
def test_passages_are_within_1e_4_of_fp32_and_unit_length(bf16_model, torch_model) -> None:
    ours = encode_passages(bf16_model, TEXTS, DenseSettings())
    ref = encode_passages(torch_model, TEXTS, DenseSettings())
    assert ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)  # normalised in float32
    cosine = (ours * ref).sum(axis=1)
    assert cosine.min() > 0.999 and np.abs(ours - ref).max() > 0  # close, and really bfloat16


@needs_bf16
def test_a_passage_does_not_depend_on_its_batch(bf16_model) -> None:
    """Padding in a batch leaves a text's vector as alone: a build that reuses cached vectors gets
    the ones a fresh build would compute (to bfloat16's own rounding)."""
    together = encode_passages(bf16_model, TEXTS, DenseSettings())
    alone = np.vstack([encode_passages(bf16_model, [t], DenseSettings()) for t in TEXTS])
    assert ((together * alone).sum(axis=1)).min() > 0.9999


@needs_bf16
def test_encoder_is_part_of_the_cache_key(bf16_model, torch_model) -> None:
    info = encoder_info(bf16_model, DenseSettings(encoder="st-bf16"))
    assert info["encoder"] == "st-bf16"
    assert model_key(info) != model_key(encoder_info(torch_model, DenseSettings(encoder="st")))


@needs_bf16
def test_build_records_bf16_and_queries_are_encoded_in_fp32(tmp_path: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    results = {}
    for encoder in ("st-bf16", "onnx"):
        settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(device="cpu", encoder=encoder))
        build = build_index([corpus], tmp_path / encoder, settings).build_dir
        assert json.loads((build / "manifest.json").read_text())["dense"]["encoder"] == encoder
        pipeline = SearchPipeline.open(build)
        try:
            results[encoder] = pipeline.rank(["lava from a volcanic vent", "jazz"], SearchOptions(k=3, mode="dense"))
            assert pipeline.dense._ensure_model().kind == "onnx"  # the fp32 query encoder, for both builds
        finally:
            pipeline.close()
    assert results["st-bf16"][0][0].doc_id == "volcano"
    for ours, ref in zip(results["st-bf16"], results["onnx"]):
        assert [h.doc_id for h in ours] == [h.doc_id for h in ref]
        # A passage within cosine 1 - 1e-4 of fp32's moves a query's cosine by at most |p - p'| = sqrt(2e-4) ~ 0.014
        # (0.0011 seen on an AVX512-BF16 CPU without AMX)
        assert np.allclose([h.dense for h in ours], [h.dense for h in ref], atol=0.015)


def test_a_cpu_without_bf16_refuses_the_encoder_in_one_line(torch_model, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user on an older CPU sees (the capability read is replaced: this host may have bfloat16)."""
    import backends.faiss.bf16 as bf16

    monkeypatch.setattr(bf16, "cpu_capability", lambda: {"avx512_f": True})
    with pytest.raises(ConfigError, match="st-bf16 needs a CPU with bfloat16") as err:
        bf16.Bf16Encoder(torch_model)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="no /proc/cpuinfo (not Linux)")
def test_without_torchs_capability_api_linux_flags_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's capability read is private: where a torch lacks it, the CPU's flags still tell."""
    import torch

    import backends.faiss.bf16 as bf16

    flags = set(Path("/proc/cpuinfo").read_text().split())
    monkeypatch.delattr(torch._C._cpu, "_get_cpu_capability", raising=False)
    assert bf16.cpu_capability() == {name: name in flags for name in bf16.BF16_FEATURES}
