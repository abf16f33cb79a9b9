"""Passage embeddings for a build: a resumable, reusable cache shared by every build of one index root.

    ROOT/embeddings/<model_key>/
        model.json            what the key stands for (for humans)
        shard-00000-<rand>.npz  `keys` (sha1 of the exact embedded text, S20) + `vectors` (float32)

`model_key` hashes everything that changes a vector (model path + weight sizes, dimension, prefixes,
normalize, max_length). Shards are written atomically (tmp + rename) every `shard_size` newly encoded
passages, so a build killed mid-encode keeps its finished shards; the next build loads them, reuses
every vector whose text hash matches and encodes only the rest. Any vector backend (FAISS here, a
`dense_vector` field elsewhere) gets its passage vectors from `embed_store`.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.faiss.encoder import _encode, dimension_of, encoder_info, model_key, passage_text, text_key
from indexer import layout
from indexer.errors import IndexFormatError
from indexer.settings import DenseSettings

_ENCODE_WINDOW_BATCHES = 16  # one model.encode call covers up to batch_size * this many texts (progress granularity)


class EmbeddingCache:
    """Append-only shards of (text sha1 -> vector) for one model key. Not shared across processes' writes."""

    def __init__(self, directory: Path, dimension: int, info: dict[str, Any] | None = None):
        self.dir = directory
        self.dimension = dimension
        self.dir.mkdir(parents=True, exist_ok=True)
        if info is not None and not (self.dir / "model.json").exists():
            layout.atomic_write_bytes(self.dir / "model.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
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
        for row, k in enumerate(keys.tolist()):  # numpy's S20 drops trailing NUL bytes: restore the 20-byte sha1
            self._lookup.setdefault(bytes(k).ljust(20, b"\0"), (b, row))

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
        buf = io.BytesIO()
        np.savez(buf, keys=karr, vectors=vectors)
        layout.atomic_write_bytes(final, buf.getvalue(), durable=True)
        self._add_block(karr, vectors)
        return final


def _length_windows(texts: list[str], size: int) -> Iterator[list[int]]:
    """Positions of `texts` sorted longest first, cut into windows of `size` (similar lengths pad less)."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for i in range(0, len(order), size):
        yield order[i : i + size]


def encode_shard(
    model: Any, texts: list[str], settings: DenseSettings, *, on_window: Callable[[list[int]], None] | None = None
) -> np.ndarray:
    """Vectors of one shard's embedded texts (prefix included), row i = texts[i].

    Encoded in windows of similar length; `on_window` gets each finished window's positions (progress).
    The build, `index encode` and every Ray encoder actor call this, so their vectors agree."""
    out = np.empty((len(texts), int(dimension_of(model))), dtype=np.float32)
    window = max(1, settings.batch_size * _ENCODE_WINDOW_BATCHES)
    for positions in _length_windows(texts, window):
        out[positions] = _encode(model, [texts[i] for i in positions], settings)
        if on_window is not None:
            on_window(positions)
    return out


@dataclass(frozen=True)
class Embedded:
    """Every passage's vector in passage idx order, with what the manifest records about them."""

    vectors: np.ndarray  # (n, d) float32, row i = passage idx i
    passage_ids: list[str]
    info: dict[str, Any]  # encoder_info
    model_key: str
    encoded: int  # texts run through the model
    reused: int  # passages served from the cache (or a repeat of a text encoded earlier in this build)


def embed_store(store: Any, cache_dir: Path, settings: DenseSettings, model: Any, *, quiet: bool) -> Embedded:
    """Embed every passage of `store`, reusing cached vectors; encoded + reused == passage count."""
    from tqdm import tqdm

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
            out = encode_shard(model, pending_texts, settings,
                               on_window=lambda pos: bar.update(sum(len(pending[keys[i]]) for i in pos)))  # fmt: skip
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

    return Embedded(vectors, passage_ids, info, key, encoded, reused)
