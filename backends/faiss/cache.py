"""Passage embeddings for a build: a resumable, reusable cache shared by every build of one index root.

    ROOT/embeddings/<model_key>/
        model.json            what the key stands for (for humans)
        shard-00000-<rand>.npz  `keys` (sha1 of the exact embedded text, S20) + `vectors` (float32)

`model_key` hashes everything that changes a vector (the contents of the model's files, dimension,
prefixes, normalize, max_length, encoder). Shards are written atomically (tmp + rename) every `shard_size` newly encoded
passages, so a build killed mid-encode keeps its finished shards; the next build reads their keys, reuses
every vector whose text hash matches and encodes only the rest (and removes the temporary file of a shard
whose writer was killed). Any vector backend (FAISS here, a
`dense_vector` field elsewhere) gets its passage vectors from `embed_store`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.faiss.encoder import _encode, dimension_of, encoder_info, model_key, passage_text, text_key
from backends.faiss.rows import RowFile, RowWriter
from indexer import layout
from indexer.errors import IndexFormatError
from indexer.settings import DenseSettings

log = logging.getLogger(__name__)

_ENCODE_WINDOW_BATCHES = 16  # one model.encode call covers up to batch_size * this many texts (progress granularity)


class EmbeddingCache:
    """Append-only shards of (text sha1 -> vector) for one model key. Not shared across processes' writes.

    Only the keys are held in memory, as one sorted S20 array with each key's (shard, row): 28 bytes
    per cached vector. Vectors are read from the shard files when asked for (`RowFile.in_npz`), so
    a build's memory does not hold the cache's vectors (1.5 KB each at 384 dimensions).
    """

    _OPEN_SHARDS = 64  # shard files kept open at once (least recently used closed first)

    def __init__(self, directory: Path, dimension: int, info: dict[str, Any] | None = None):
        self.dir = directory
        self.dimension = dimension
        self.dir.mkdir(parents=True, exist_ok=True)
        layout.remove_stale_temporaries(self.dir)  # shards of runs killed while writing them
        if info is not None and not (self.dir / "model.json").exists():
            layout.atomic_write_bytes(self.dir / "model.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        self._shards: list[Path] = []
        self._open: OrderedDict[int, RowFile] = OrderedDict()
        self._keys = np.empty(0, dtype="S20")  # sorted
        self._locs = np.empty(0, dtype=np.int64)  # shard << 32 | row, aligned with _keys
        self.skipped_shards: list[str] = []
        self._unchecked: set[int] = set()  # shards whose data has not been checked against its CRCs yet
        blocks = [block for shard in sorted(self.dir.glob("shard-*.npz")) if (block := self._load_shard(shard))]
        if blocks:
            self._merge(np.concatenate([k for k, _ in blocks]), np.concatenate([loc for _, loc in blocks]))

    def _load_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = data["keys"]
            vectors = RowFile.in_npz(path, "vectors")
        except Exception:  # unreadable shard (should not happen with atomic writes): ignore, re-encode
            self.skipped_shards.append(path.name)
            return None
        vectors.close()
        if vectors.shape[1] != self.dimension or len(keys) != len(vectors) or keys.dtype != np.dtype("S20"):
            self.skipped_shards.append(path.name)
            return None
        shard = len(self._shards)
        self._shards.append(path)
        self._unchecked.add(shard)
        return keys, (shard << 32) | np.arange(len(keys), dtype=np.int64)

    def _merge(self, keys: np.ndarray, locs: np.ndarray) -> None:
        """Add keys not cached yet (the first shard holding a key wins), keeping `_keys` sorted."""
        order = np.argsort(keys, kind="stable")
        keys, locs = keys[order], locs[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        keys, locs = keys[first], locs[first]
        new = self._locate(keys) < 0
        keys, locs = keys[new], locs[new]
        at = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, at, keys)
        self._locs = np.insert(self._locs, at, locs)

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[bytes]:
        # numpy's S20 drops trailing NUL bytes: restore the 20-byte sha1
        return [bytes(k).ljust(20, b"\0") for k in self._keys.tolist()]

    def locate_array(self, keys: np.ndarray) -> np.ndarray:
        """Each key's (shard << 32 | row), or -1 where it is not cached. A shard is first checked against
        the CRCs its .npz keeps when a key is found in it: rows are read in place, past zipfile's check,
        and one flipped bit in a cached vector went into every later build (whose own digests then
        vouched for it). A damaged shard is left out, its passages encoded again."""
        locs = self._locate(keys)
        used = self._unchecked.intersection(np.unique(locs[locs >= 0] >> 32).tolist()) if self._unchecked else ()
        if used:
            self._unchecked -= used
            if damaged := [shard for shard in used if not _intact(self._shards[shard])]:
                self._drop(damaged)
                locs = self._locate(keys)
        return locs

    def _drop(self, shards: list[int]) -> None:
        for shard in shards:
            if (rows := self._open.pop(shard, None)) is not None:
                rows.close()
            self.skipped_shards.append(self._shards[shard].name)
            log.warning("drsearch: warning: embedding cache shard %s is damaged (its CRC does not match): its "
                        "passages are encoded again; remove it to stop this message", self._shards[shard])  # fmt: skip
        keep = ~np.isin(self._locs >> 32, shards)
        self._keys, self._locs = self._keys[keep], self._locs[keep]

    def _locate(self, keys: np.ndarray) -> np.ndarray:
        if not len(self._keys) or not len(keys):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[at] == keys, self._locs[at], -1)

    def locate(self, keys: Sequence[bytes]) -> np.ndarray:
        return self.locate_array(np.array(keys, dtype="S20"))

    def read(self, locs: np.ndarray) -> np.ndarray:
        """The vectors at `locs` (from `locate`, all >= 0), in that order."""
        out = np.empty((len(locs), self.dimension), dtype=np.float32)
        shards, rows = locs >> 32, locs & 0xFFFFFFFF
        for shard in np.unique(shards).tolist():
            sel = np.flatnonzero(shards == shard)
            sel = sel[np.argsort(rows[sel], kind="stable")]  # ascending rows: neighbours in one read
            out[sel] = self._rows(shard).rows(rows[sel])
        return out

    def _rows(self, shard: int) -> RowFile:
        rows = self._open.get(shard)
        if rows is None:
            rows = self._open[shard] = RowFile.in_npz(self._shards[shard], "vectors")
            if len(self._open) > self._OPEN_SHARDS:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(shard)
        return rows

    def get(self, key: bytes) -> np.ndarray | None:
        loc = self.locate([key])
        return None if loc[0] < 0 else self.read(loc)[0]

    def __contains__(self, key: bytes) -> bool:
        return bool(self.locate([key])[0] >= 0)

    def put(self, keys: list[bytes], vectors: np.ndarray) -> Path:
        """Write one shard atomically, then make it visible to `get`."""
        karr = np.array(keys, dtype="S20")
        existing = [int(p.name.split("-")[1]) for p in self.dir.glob("shard-*.npz") if p.name.split("-")[1].isdigit()]
        n = max(existing, default=-1) + 1
        final = self.dir / f"shard-{n:05d}-{secrets.token_hex(3)}.npz"
        buf = io.BytesIO()
        np.savez(buf, keys=karr, vectors=np.asarray(vectors, dtype=np.float32))
        layout.atomic_write_bytes(final, buf.getvalue(), durable=True)
        shard = len(self._shards)
        self._shards.append(final)
        self._merge(karr, (shard << 32) | np.arange(len(karr), dtype=np.int64))
        return final

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


def _intact(path: Path) -> bool:
    """Whether every member of the .npz at `path` reads back with its CRC (zipfile checks it at the end)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as member:
                    while member.read(1 << 20):
                        pass
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
    return True


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
    """Every passage's vector in passage idx order, in an .npy file, with what the manifest records."""

    path: Path  # (count, dimension) float32 .npy, row i = passage idx i
    count: int
    info: dict[str, Any]  # encoder_info
    model_key: str
    encoded: int  # texts run through the model
    reused: int  # passages served from the cache (or a repeat of a text encoded earlier in this build)

    @property
    def dimension(self) -> int:
        return int(self.info["dimension"])


_LOOKUP_BATCH = 4096  # passages whose keys are looked up in the cache at once


def embed_store(store: Any, cache_dir: Path, settings: DenseSettings, model: Any, *, quiet: bool, out: Path,
                ids_out: Path | None = None) -> Embedded:  # fmt: skip
    """Embed every passage of `store` into the .npy file `out`, reusing cached vectors; encoded +
    reused == passage count. `ids_out`, when given, receives the passage ids as a JSON list.

    Memory stays flat in the corpus size: vectors go to `out` as they are found or encoded, cached
    ones are read from their shard files, and the cache holds only its keys (`EmbeddingCache`)."""
    from tqdm import tqdm

    info = encoder_info(model, settings)
    dim = info["dimension"]
    key = model_key(info)
    cache = EmbeddingCache(Path(cache_dir) / key, dim, info)
    n = int(store.counts()[1])
    writer = RowWriter(Path(out), n, dim)
    ids_tmp = None if ids_out is None else Path(ids_out).with_name(f".{Path(ids_out).name}.tmp")
    ids_file = None if ids_tmp is None else open(ids_tmp, "w", encoding="utf-8")
    pending: dict[bytes, list[int]] = {}  # text hash -> passage idx waiting for it
    pending_texts: list[str] = []  # embedded texts (prefix included), one per pending key
    encoded = reused = count = 0

    try:
        with tqdm(total=n, desc="encode", unit="psg", disable=quiet, dynamic_ncols=True, smoothing=0.1) as bar:

            def flush() -> None:
                nonlocal encoded
                if not pending:
                    return
                keys = list(pending)
                out_rows = encode_shard(model, pending_texts, settings,
                                        on_window=lambda pos: bar.update(sum(len(pending[keys[i]]) for i in pos)))  # fmt: skip
                cache.put(keys, out_rows)
                waiting = [pending[k] for k in keys]
                writer.write(np.fromiter((i for idxs in waiting for i in idxs), dtype=np.int64),
                             out_rows[np.repeat(np.arange(len(keys)), [len(idxs) for idxs in waiting])])  # fmt: skip
                encoded += len(keys)
                pending.clear()
                pending_texts.clear()

            def lookup(batch: list[tuple[int, bytes, str]]) -> None:
                nonlocal reused
                locs = cache.locate([h for _, h, _ in batch])
                found = np.flatnonzero(locs >= 0)
                if len(found):
                    writer.write(np.array([batch[i][0] for i in found.tolist()], dtype=np.int64), cache.read(locs[found]))
                    reused += len(found)
                    bar.update(len(found))
                for i in np.flatnonzero(locs < 0).tolist():
                    idx, h, embedded = batch[i]
                    if h in pending:
                        pending[h].append(idx)
                        reused += 1
                    elif (loc := cache.locate([h]))[0] >= 0:  # encoded by a flush earlier in this batch
                        writer.write(np.array([idx]), cache.read(loc))
                        reused += 1
                        bar.update(1)
                    else:
                        pending[h] = [idx]
                        pending_texts.append(embedded)
                        if len(pending) >= settings.shard_size:
                            flush()
                bar.set_postfix(reused=reused, encoded=encoded, refresh=False)

            prefix = settings.passage_prefix
            batch: list[tuple[int, bytes, str]] = []
            for expected, (idx, pid, title, text) in enumerate(store.iter_passages()):
                if idx != expected or idx >= n:
                    raise IndexFormatError(f"store passage idx {idx} is not dense (expected {expected} of {n})")
                if ids_file is not None:
                    ids_file.write(("[" if idx == 0 else ",") + json.dumps(pid, ensure_ascii=False))
                count += 1
                embedded = prefix + passage_text(title, text)
                batch.append((idx, text_key(embedded), embedded))
                if len(batch) >= _LOOKUP_BATCH:
                    lookup(batch)
                    batch = []
            lookup(batch)
            flush()
            bar.set_postfix(reused=reused, encoded=encoded, refresh=True)
        if count != n or writer.written != n:
            raise IndexFormatError(f"store yielded {count} passages ({writer.written} vectors), counts say {n}")
        if ids_file is not None:
            ids_file.write("]" if count else "[]")
            ids_file.close()
            os.replace(ids_tmp, ids_out)
    finally:
        writer.close()
        cache.close()
        if ids_file is not None and not ids_file.closed:
            ids_file.close()
        if ids_tmp is not None:
            ids_tmp.unlink(missing_ok=True)
    return Embedded(Path(out), n, info, key, encoded, reused)
