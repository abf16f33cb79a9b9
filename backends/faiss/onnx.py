"""ONNX Runtime encoders for a sentence-transformers model: fp32 and int8 (dynamic quantisation).

The model is exported from its local weights on first use (torch.onnx, no download), with mean
pooling and L2 normalisation inside the graph, and cached as

    $DRSEARCH_CACHE (default ~/.cache/drsearch)/onnx/<model key>/model.onnx, model-int8.onnx

written atomically, so concurrent first uses at worst export twice. `OnnxEncoder` offers the
part of the `SentenceTransformer` interface `backends.faiss.encoder` uses (encode, tokenizer,
max_seq_length, device, dimension), so the embedding cache works as with the torch encoder, and
`encode_each`, with which `backends.faiss.encoder` embeds queries and passages each as a batch of
its own. Nothing heavy is imported at module import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from backends.threads import budget
from indexer.errors import ConfigError
from indexer.settings import Encoder

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()


def cache_root() -> Path:
    return Path(os.environ.get("DRSEARCH_CACHE") or Path.home() / ".cache" / "drsearch")


def _weights_key(model_dir: Path, pooling: str) -> str:
    import onnxruntime
    import torch

    weights = sorted((p.name, p.stat().st_size) for p in model_dir.glob("*") if p.suffix in (".safetensors", ".bin"))
    ident = {"model": str(model_dir.resolve()), "weights": weights, "pooling": pooling,
             "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}  # fmt: skip
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _pooling_mode(st_model: Any) -> str:
    pooling = next((m for m in st_model if type(m).__name__ == "Pooling"), None)
    mode = getattr(pooling, "pooling_mode", None)
    if mode not in ("mean", "cls"):
        raise ConfigError("ONNX encoders support mean or CLS pooling only; use --encoder st", where="encoder")
    return mode


def exported_model(st_model: Any, model_dir: Path, *, int8: bool) -> Path:
    """Path of the model's ONNX export (int8: dynamically quantised), exporting it on first use."""
    pooling = _pooling_mode(st_model)
    folder = cache_root() / "onnx" / f"{model_dir.name}-{_weights_key(model_dir, pooling)}"
    fp32, q8 = folder / "model.onnx", folder / "model-int8.onnx"
    target = q8 if int8 else fp32
    if target.is_file():
        return target
    with _export_lock:
        folder.mkdir(parents=True, exist_ok=True)
        if not fp32.is_file():
            _export(st_model, pooling, fp32)
        if int8 and not q8.is_file():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            tmp = q8.with_name(f".{q8.name}.tmp-{os.getpid()}")
            with _without_quantizer_advice():
                quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
            os.replace(tmp, q8)
    return target


_QUANTIZER_ADVICE = "Please consider to run pre-processing before quantization"


class _DropQuantizerAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_QUANTIZER_ADVICE)


@contextmanager
def _without_quantizer_advice() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice to pre-process the model (shape inference for static
    quantisation) on the root logger, which reached a user's `index build -q`; dynamic quantisation
    of this model needs none. Other log records pass."""
    root, advice = logging.getLogger(), _DropQuantizerAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _export(st_model: Any, pooling: str, out: Path) -> None:
    import torch

    class Embedder(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state  # fmt: skip
            if pooling == "cls":
                return hidden[:, 0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    module = Embedder(st_model[0].auto_model.to("cpu")).eval()
    sample = st_model.tokenizer(["an example text", "two"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about the model's Python branches: not the user's concern
        torch.onnx.export(module, tuple(sample[n] for n in _INPUTS), str(tmp), input_names=list(_INPUTS),
                          output_names=["embedding"], dynamic_axes={**axes, "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)  # fmt: skip
    os.replace(tmp, out)


class OnnxEncoder:
    """A sentence-transformers model run by ONNX Runtime on the CPU (one session, `threads` intra-op)."""

    def __init__(self, st_model: Any, model_dir: Path, *, int8: bool, threads: int | None = None):
        self.kind: Encoder = "onnx-int8" if int8 else "onnx"
        self.path = exported_model(st_model, model_dir, int8=int8)
        self.tokenizer = st_model.tokenizer
        self.max_seq_length = int(st_model.max_seq_length)
        self.device = "cpu"
        self._dimension = int(st_model.get_embedding_dimension())
        self._normalize = any(type(m).__name__ == "Normalize" for m in st_model)  # part of the model itself
        self._threads = int(threads or budget())
        self._session = self._new_session(self._threads)
        self._single_threaded: Any = None  # made on first `encode_each` of many texts
        self._session_lock = threading.Lock()

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Intra-op threads spin while a run is in progress (a batch of one is many short parallel
        # steps) but stop when it ends: spinning on, they took the cores the BM25 and FAISS legs need
        # right after the query is encoded (hybrid single-query p50 1.9 -> 1.8 ms, int8 on 2 cores).
        options.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64, convert_to_numpy: bool = True,
               normalize_embeddings: bool = False, show_progress_bar: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings of `texts` in order; each batch is padded to its own longest text, like
        sentence-transformers (callers sort by length so that batches pad little)."""
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), max(1, batch_size)):
            batch = [t.strip() for t in texts[start : start + batch_size]]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
            feed = {n: enc[n].astype(np.int64) for n in _INPUTS}
            out[start : start + len(batch)] = self._session.run(None, feed)[0]
        return self._normalized(out, normalize_embeddings)

    def _normalized(self, out: np.ndarray, normalize: bool) -> np.ndarray:
        if normalize or self._normalize:  # row by row: a row's result does not depend on the others
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def encode_each(self, texts: Sequence[str], normalize_embeddings: bool = False) -> np.ndarray:
        """Each text encoded as a batch of its own, bit for bit what `encode([text])` gives, with the
        texts spread over the thread budget: one thread per core, each running a single-threaded
        session on whole texts. For one short text, intra-op threads are the faster way to use the
        cores (int8 on 2 cores: 1.0 ms with two, 1.4 ms with one); for many, side-by-side texts use
        them better (1,250-1,330 vs 740-890 queries/s), since a batch of one parallelises poorly.
        Passages too: no padding, and one text's activations stay in cache (`encoder._encode`).
        Threads are started per call, so they run at the caller's priority (`service.priority`)."""
        texts = [t.strip() for t in texts]
        workers = min(self._threads, len(texts))
        if workers <= 1:
            return self.encode(texts, batch_size=1, normalize_embeddings=normalize_embeddings)
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)  # unpadded: each row as alone
        inputs = [enc[n] for n in _INPUTS]
        session = self._single_threaded_session()
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        failures: list[BaseException] = []
        # Longest first, each thread taking the next text when it is free: the threads finish
        # within about one text of each other (a fixed share each left one idle for several).
        todo = iter(sorted(range(len(texts)), key=lambda i: -len(inputs[0][i])))

        def run_share() -> None:
            try:
                for i in todo:  # next() on a shared iterator hands each index to one thread (the GIL)
                    feed = {n: np.asarray([rows[i]], dtype=np.int64) for n, rows in zip(_INPUTS, inputs)}
                    out[i] = session.run(None, feed)[0][0]
            except BaseException as exc:  # re-raised in the calling thread
                failures.append(exc)

        helpers = [threading.Thread(target=run_share, name="drsearch-onnx", daemon=True) for _ in range(1, workers)]
        for thread in helpers:
            thread.start()
        run_share()
        for thread in helpers:
            thread.join()
        if failures:
            raise failures[0]
        return self._normalized(out, normalize_embeddings)

    def _single_threaded_session(self) -> Any:
        with self._session_lock:
            if self._single_threaded is None:
                self._single_threaded = self._new_session(1)
            return self._single_threaded
