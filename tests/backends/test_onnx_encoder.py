"""ONNX Runtime encoders (fp32, int8) of the bundled model: exported from the local weights,
close to the torch encoder, batch-invariant for queries, recorded in the manifest and used again
for queries. Real export, real ONNX Runtime, real FAISS on a tiny build."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from indexer.build import build_index  # noqa: E402
from backends.faiss.encoder import encode_passages, encode_queries, encoder_info, load_encoder, model_key, model_path  # noqa: E402
from indexer.settings import BuildSettings, DenseSettings  # noqa: E402
from ranker.pipeline import SearchOptions, SearchPipeline  # noqa: E402
from tests.conftest import data_dir, drsearch  # noqa: E402
from tests.text_fixtures import DOCS  # noqa: E402

QUERIES = ["lava from a volcanic vent", "jazz", "how do tides depend on the moon and the sun over a month",
           "blockchain ledger miners", "matcha"]  # fmt: skip
LONG_QUERY = " ".join(["counterclaim about public policy, weak"] * 45)  # ArguAna-style: > 256 tokens, < 2,000 chars


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """Exports go to a fresh cache: each test module exports from the weights itself."""
    old = os.environ.get("DRSEARCH_CACHE")
    os.environ["DRSEARCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("DRSEARCH_CACHE", None)
    else:
        os.environ["DRSEARCH_CACHE"] = old


@pytest.fixture(scope="module")
def torch_model():
    return load_encoder(DenseSettings(device="cpu", encoder="st"))


@pytest.fixture(scope="module", params=["onnx", "onnx-int8"])
def onnx_model(request: pytest.FixtureRequest):
    return load_encoder(DenseSettings(device="cpu", encoder=request.param))


def test_export_is_cached_and_close_to_torch(onnx_model, torch_model) -> None:
    assert onnx_model.path.is_file() and str(onnx_model.path).startswith(os.environ["DRSEARCH_CACHE"])
    settings = DenseSettings()
    texts = [f"{t}\n{x}" for _, t, x in DOCS]
    ours, ref = encode_passages(onnx_model, texts, settings), encode_passages(torch_model, texts, settings)
    cosine = (ours * ref).sum(axis=1)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosine.min() > (0.9999 if onnx_model.kind == "onnx" else 0.97)


def test_passages_are_encoded_each_as_if_alone(onnx_model) -> None:
    """ONNX passages run side by side in small runs: a passage's vector does not depend on the passages
    encoded with it, int8 included (it runs each alone: a padded int8 batch shares its activation scales)."""
    settings = DenseSettings()
    texts = [f"{t}\n{x}" for _, t, x in DOCS]
    together = encode_passages(onnx_model, texts, settings)
    for i, text in enumerate(texts[:4]):
        assert np.array_equal(encode_passages(onnx_model, [text], settings)[0], together[i]), text[:40]
    assert np.array_equal(encode_passages(onnx_model, texts[::-1], settings), together[::-1])


def test_queries_are_batch_invariant(onnx_model) -> None:
    settings = DenseSettings()
    together = encode_queries(onnx_model, QUERIES + [LONG_QUERY], settings)
    for i, q in enumerate(QUERIES + [LONG_QUERY]):
        assert np.array_equal(encode_queries(onnx_model, [q], settings)[0], together[i]), q
    assert np.array_equal(encode_queries(onnx_model, QUERIES[::-1], settings), together[: len(QUERIES)][::-1])


def test_queries_side_by_side_match_queries_alone(onnx_model, torch_model) -> None:
    """`encode_each` spreads queries over single-threaded runs (fp32: several short ones a run, padded):
    each row is what a two-thread session gives for that text alone, bit for bit."""
    from backends.faiss.onnx import OnnxEncoder

    texts = QUERIES + [LONG_QUERY, "  matcha  "]
    two = OnnxEncoder(torch_model, model_path(DenseSettings()), int8=onnx_model.kind == "onnx-int8", threads=2)
    assert two.path == onnx_model.path and two._session.get_session_options().intra_op_num_threads == 2
    together = two.encode_each(texts)
    assert two._single_threaded is not None and two._single_threaded.get_session_options().intra_op_num_threads == 1
    for i, text in enumerate(texts):
        assert np.array_equal(two.encode([text], batch_size=1)[0], together[i]), text
    assert np.array_equal(together[-1], together[QUERIES.index("matcha")])  # stripped like `encode`
    assert two.encode_each([]).shape == (0, two.get_sentence_embedding_dimension())


def test_real_queries_packed_into_padded_runs_match_each_alone(onnx_model, torch_model) -> None:
    """fp32 packs SciFact queries of similar length into padded runs; int8 runs each alone. Either way
    a query's vector is the one it gets alone (pooling runs per text over its own tokens), with a
    budget of one thread too (the runs one after another)."""
    from backends.faiss.onnx import RUN_TOKENS, OnnxEncoder, _runs

    with open(data_dir("scifact") / "queries.jsonl") as fh:
        texts = [json.loads(line)["text"] for line, _ in zip(fh, range(64))]
    lengths = [len(ids) for ids in onnx_model.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    runs = _runs(lengths, onnx_model._run_tokens)
    if onnx_model.kind == "onnx":
        assert onnx_model._run_tokens == RUN_TOKENS and max(len(r) for r in runs) >= 4
        assert len({lengths[i] for r in runs for i in r if len(r) > 1}) > 1  # runs are padded, not just equal lengths
    else:
        assert all(len(r) == 1 for r in runs)
    together = onnx_model.encode_each(texts, normalize_embeddings=True)
    for i, text in enumerate(texts):
        assert np.array_equal(onnx_model.encode([text], batch_size=1, normalize_embeddings=True)[0], together[i]), text
    one = OnnxEncoder(torch_model, model_path(DenseSettings()), int8=onnx_model.kind == "onnx-int8", threads=1)
    assert np.array_equal(one.encode_each(texts, normalize_embeddings=True), together)
    assert one._single_threaded is None  # one thread: no side-by-side session was needed


def test_on_idle_is_called_once_when_a_core_frees_up(onnx_model, torch_model) -> None:
    """`encode_each(on_idle=)`: with two threads it is called once, by the first thread to find no
    run left (every run already taken, the last ones maybe still running); for one text, or a
    budget of one thread, at once, before anything runs. The vectors stay those of each text alone."""
    from backends.faiss.onnx import OnnxEncoder

    texts = QUERIES + [LONG_QUERY]
    int8 = onnx_model.kind == "onnx-int8"
    for threads, batch in ((2, texts), (2, texts[:1]), (1, texts)):
        encoder = OnnxEncoder(torch_model, model_path(DenseSettings()), int8=int8, threads=threads)
        events: list[str] = []
        run = encoder._run
        encoder._run = lambda *args: events.append("run") or run(*args)  # type: ignore[method-assign]
        vectors = encoder.encode_each(batch, on_idle=lambda: events.append("idle"))
        assert events.count("idle") == 1 and events.count("run") >= 1, (threads, len(batch), events)
        first_free = threads > 1 and len(batch) > 1
        assert events.index("idle") == (len(events) - 1 if first_free else 0), (threads, len(batch), events)
        for i, text in enumerate(batch):
            assert np.array_equal(vectors[i], onnx_model.encode([text], batch_size=1)[0]), text


def test_runs_pack_sorted_texts_up_to_the_token_budget() -> None:
    from backends.faiss.onnx import _runs

    lengths = [10, 40, 12, 11, 300, 30]
    runs = _runs(lengths, 64)
    assert sorted(i for r in runs for i in r) == list(range(len(lengths)))
    assert all(len(r) * max(lengths[i] for i in r) <= 64 for r in runs if len(r) > 1)
    # 10, 11, 12 share a run (3 x 12 <= 64 padded tokens), 30 does not fit with them (4 x 30); largest run first
    assert runs == [[4], [1], [0, 3, 2], [5]]
    assert _runs(lengths, 1) == [[4], [1], [5], [2], [3], [0]]  # every text alone, largest first
    # Three 10-token texts are not padded to 40 to save a run: 2 runs cost 2 x 8 + 30 + 40 < 8 + 4 x 40.
    assert _runs([10, 10, 10, 40], 160) == [[3], [0, 1, 2]]
    # At most `max_texts` a run: four texts on two threads make two runs, not one.
    assert _runs([10, 10, 10, 10], 128) == [[0, 1, 2, 3]]
    assert _runs([10, 10, 10, 10], 128, 2) == [[2, 3], [0, 1]]
    assert _runs([], 64) == []


def test_encoder_is_part_of_the_cache_key(onnx_model, torch_model) -> None:
    settings = DenseSettings(encoder=onnx_model.kind)
    info = encoder_info(onnx_model, settings)
    assert info["encoder"] == onnx_model.kind
    assert model_key(info) != model_key(encoder_info(torch_model, DenseSettings(encoder="st")))


def test_build_records_the_encoder_and_queries_use_it(tmp_path: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(device="cpu", encoder="onnx-int8"))
    build = build_index([corpus], tmp_path / "idx", settings).build_dir
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["dense"]["encoder"] == "onnx-int8"
    pipeline = SearchPipeline.open(build)
    try:
        hits = pipeline.rank(["lava from a volcanic vent", LONG_QUERY], SearchOptions(k=3, mode="dense"))
        assert pipeline.dense._ensure_model().kind == "onnx-int8"
        assert hits[0][0].doc_id == "volcano" and len(hits[1]) == 3
    finally:
        pipeline.close()


def test_unknown_encoder_is_a_one_line_cli_error(tmp_path: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"id": "a", "title": "", "text": "some text"}) + "\n")
    proc = drsearch("index", "build", "--corpus", corpus, "--out", tmp_path / "idx", "--encoder", "tensorrt", "-q")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "encoder" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_thread_budget_sizes_every_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --workers N` gives each worker cores // N threads for torch, FAISS, ONNX Runtime, Lucene."""
    import faiss
    import torch

    from backends import threads

    monkeypatch.delenv("DRSEARCH_THREADS", raising=False)
    assert threads.worker_budget(1) == threads.cores() and threads.worker_budget(64) == 1
    monkeypatch.setenv("DRSEARCH_THREADS", "3")
    assert threads.worker_budget(64) == 3
    before = torch.get_num_threads(), threads._budget
    try:
        threads.set_budget(1)
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1 and threads.budget() == 1
        encoder = load_encoder(DenseSettings(device="cpu", encoder="onnx"))
        assert encoder._session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before[0])
        faiss.omp_set_num_threads(threads.cores())
        threads._budget = before[1]


def test_the_quantizers_advice_is_dropped_and_other_records_pass(caplog: pytest.LogCaptureFixture) -> None:
    """`index build -q --encoder onnx-int8` printed ONNX Runtime's advice to pre-process the model."""
    import logging

    from backends.faiss.onnx import _QUANTIZER_ADVICE, _without_quantizer_advice

    with caplog.at_level(logging.WARNING), _without_quantizer_advice():
        logging.warning(f"{_QUANTIZER_ADVICE}. Refer to example: ...")
        logging.warning("something else")
    logging.warning(f"{_QUANTIZER_ADVICE} (outside)")
    assert [r.getMessage() for r in caplog.records] == ["something else", f"{_QUANTIZER_ADVICE} (outside)"]


_LIGHT_LOAD = """
import json, sys
import numpy as np
from backends.faiss import encoder
from indexer.settings import DenseSettings
encoder.GPU_DEVICE_FILES = tuple(json.loads(sys.argv[4]) or encoder.GPU_DEVICE_FILES)
texts = json.loads(sys.argv[1])
settings = DenseSettings(**json.loads(sys.argv[2]))
model = encoder.load_encoder(settings)
np.savez(sys.argv[3], queries=encoder.encode_queries(model, texts, settings),
         alone=encoder.encode_queries(model, texts[:1], settings), passages=encoder.encode_passages(model, texts, settings))
print(json.dumps(sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)))
print(json.dumps([model.kind, model.max_seq_length]))
"""
AS_A_BUILD_RECORDS_IT = {"max_length": 256}


class Loaded(NamedTuple):
    imported: list[str]  # of torch, transformers, sentence_transformers
    kind: str
    max_seq_length: int


def _load_in_a_new_process(encoder: str, texts: list[str], out: Path, settings: dict = AS_A_BUILD_RECORDS_IT,
                           gpu_device_files: tuple[str, ...] = ()) -> Loaded:  # fmt: skip
    """What a new process that loads `encoder` with `settings` on the CPU imports and loads
    (`gpu_device_files`: in place of `GPU_DEVICE_FILES`); its vectors of `texts` go to `out`."""
    import subprocess
    import sys

    settings = {"device": "cpu", "encoder": encoder, **settings}
    proc = subprocess.run([sys.executable, "-c", _LIGHT_LOAD, json.dumps(texts), json.dumps(settings), str(out),
                           json.dumps(gpu_device_files)],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported, (kind, length) = (json.loads(line) for line in proc.stdout.splitlines()[-2:])
    return Loaded(imported, kind, length)


def test_a_cached_export_runs_without_torch_bit_for_bit(onnx_model, tmp_path: Path) -> None:
    """A process whose model was loaded once through sentence-transformers (here: `onnx_model`) loads it
    again from the cached export alone, with none of torch, transformers or sentence-transformers (~6 s
    of imports for a CLI search), and its vectors are those of the full load, bit for bit."""
    from backends.faiss import onnx_light

    assert (onnx_model.path.parent / onnx_light.DESCRIPTION).is_file()
    texts = QUERIES + [LONG_QUERY, *onnx_light._PROBES]
    assert _load_in_a_new_process(onnx_model.kind, texts, tmp_path / "light.npz").imported == []
    light, settings = np.load(tmp_path / "light.npz"), DenseSettings(max_length=256)
    assert np.array_equal(light["queries"], encode_queries(onnx_model, texts, settings))
    assert np.array_equal(light["alone"], encode_queries(onnx_model, texts[:1], settings))
    assert np.array_equal(light["passages"], encode_passages(onnx_model, texts, settings))


def test_without_its_description_an_export_is_loaded_in_full_and_described(tmp_path: Path) -> None:
    """(One encoder kind: fp32 and int8 exports share the folder's description.)"""
    from backends.faiss import onnx_light

    onnx_model = load_encoder(DenseSettings(device="cpu", encoder="onnx"))
    description = onnx_model.path.parent / onnx_light.DESCRIPTION
    description.unlink()
    assert _load_in_a_new_process(onnx_model.kind, QUERIES, tmp_path / "full.npz").imported == [
        "sentence_transformers", "torch", "transformers"]  # fmt: skip
    assert description.is_file()
    assert _load_in_a_new_process(onnx_model.kind, QUERIES, tmp_path / "light.npz").imported == []
    assert np.array_equal(np.load(tmp_path / "full.npz")["queries"], np.load(tmp_path / "light.npz")["queries"])


def test_a_build_with_the_default_settings_runs_the_described_export_without_torch(torch_model, tmp_path: Path) -> None:
    """`index build` with no --encoder, --device or --max-length (auto, the model's own length): where
    no GPU driver's device file exists, ONNX fp32 at the model's length from the cached export, with
    none of the heavy imports and the vectors of a full load. Where a GPU might be seen, torch is asked."""
    import torch

    from backends.faiss.onnx import OnnxEncoder

    full = OnnxEncoder(torch_model, model_path(DenseSettings()), int8=False, own_length=torch_model.max_seq_length)
    texts, defaults = [*QUERIES, LONG_QUERY], {"device": None}
    no_gpu = _load_in_a_new_process("auto", texts, tmp_path / "light.npz", defaults, (str(tmp_path / "no-device"),))
    assert no_gpu == Loaded([], "onnx", 256)
    light = np.load(tmp_path / "light.npz")
    assert np.array_equal(light["passages"], encode_passages(full, texts, DenseSettings()))
    assert np.array_equal(light["queries"], encode_queries(full, texts, DenseSettings()))
    (tmp_path / "nvidiactl").touch()
    maybe_gpu = _load_in_a_new_process("auto", texts[:1], tmp_path / "full.npz", defaults, (str(tmp_path / "nvidiactl"),))
    assert maybe_gpu == Loaded(["sentence_transformers", "torch", "transformers"],
                               "st" if torch.cuda.is_available() else "onnx", 256)  # fmt: skip


@pytest.mark.parametrize("older", ["no length", "another sentence-transformers"])
def test_the_description_records_the_models_own_length_not_the_one_it_was_loaded_with(torch_model, older) -> None:
    """A first load at --max-length 64 describes the model's own length (256), which a later load
    without a length uses. A description from before the length was recorded, or written under
    another sentence-transformers version (whose loading may give another length), still serves loads
    given one; a load without one runs in full, and records the length anew."""
    from backends.faiss import onnx_light
    from backends.faiss.onnx import OnnxEncoder

    model_dir = model_path(DenseSettings())
    export = OnnxEncoder(torch_model, model_dir, int8=False, own_length=torch_model.max_seq_length).path
    description = export.parent / onnx_light.DESCRIPTION
    recorded = lambda: onnx_light.recorded_length(json.loads(description.read_text(encoding="utf-8")))  # noqa: E731
    description.unlink()
    assert load_encoder(DenseSettings(device="cpu", encoder="onnx", max_length=64)).max_seq_length == 64
    assert recorded() == 256
    assert OnnxEncoder.from_cache(model_dir, int8=False, max_seq_length=None).max_seq_length == 256
    written = json.loads(description.read_text(encoding="utf-8"))
    if older == "no length":
        del written["max_seq_length"], written["sentence_transformers"]
    else:
        written["sentence_transformers"] = "0.0.1"
    description.write_text(json.dumps(written), encoding="utf-8")
    assert OnnxEncoder.from_cache(model_dir, int8=False, max_seq_length=None) is None
    assert OnnxEncoder.from_cache(model_dir, int8=False, max_seq_length=128).max_seq_length == 128
    assert recorded() is None
    assert load_encoder(DenseSettings(device="cpu", encoder="onnx")).max_seq_length == 256
    assert recorded() == 256


def test_a_tokenizer_file_that_tokenizes_otherwise_is_not_run_alone(torch_model, tmp_path: Path) -> None:
    """The tokenizer file is run without transformers only where it gives transformers' ids: a file
    whose normaliser no longer lower-cases fails the check (and the full load is kept)."""
    from backends.faiss.onnx_light import _same_tokens

    original = model_path(DenseSettings()) / "tokenizer.json"
    assert _same_tokens(torch_model.tokenizer, original)
    changed = json.loads(original.read_text(encoding="utf-8"))
    changed["normalizer"]["lowercase"] = False
    (tmp_path / "tokenizer.json").write_text(json.dumps(changed), encoding="utf-8")
    assert not _same_tokens(torch_model.tokenizer, tmp_path / "tokenizer.json")
    assert not _same_tokens(torch_model.tokenizer, tmp_path / "missing.json")
