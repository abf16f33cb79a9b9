"""`drsearch index encode`: corpus -> passage vectors in an index root's embedding cache, nothing else.

It reads and chunks the corpus exactly as `index build` does and keys each vector by the same
(model key, sha1 of the embedded text) as the build's cache, so a later `index build --out ROOT`
with the same chunking and model finds every vector and encodes nothing. The encoding runs here
(the build's own code) or on a Ray cluster (`backends.faiss.ray_pool`), for a corpus too large for
one machine's encoder; either way the driver writes the cache shards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from backends.faiss.cache import EmbeddingCache, encode_shard
from backends.faiss.encoder import encoder_info, load_encoder, model_key, passage_text, text_key
from indexer import layout
from indexer.build import _host_of, _write_error, check_out_root, checked_corpora
from indexer.chunker import ChunkSettings, chunk_document
from indexer.readers import ReadReport, read_documents
from indexer.settings import BuildSettings


@dataclass(frozen=True)
class EncodeReport:
    cache_dir: Path
    passages: int  # passages the corpus chunks into
    cached: int  # passages whose vector was already in the cache (or repeated a text of this run)
    encoded: int  # texts run through the model now
    shards: int  # cache shards written now
    retried: int  # shards redone because their Ray actor died
    workers: int  # encoder processes (1 without Ray)
    device: str
    seconds: float


def embedded_texts(paths: list[Path], settings: BuildSettings, report: ReadReport | None = None) -> Iterator[str]:
    """Every passage's embedded text (prefix included) in build order: the reader, host fill and chunker of the build."""
    chunking = ChunkSettings(settings.chunk_words, settings.overlap_words)
    prefix = settings.dense.passage_prefix
    for doc in read_documents(paths, skip_bad=settings.skip_bad, report=report):
        for p in chunk_document(_host_of(doc), chunking):
            yield prefix + passage_text(doc.title, p.text)  # the store joins the document's title


class _Counter:
    """Splits texts into shards of uncached, not yet seen texts, counting what it skipped."""

    def __init__(self, cache: EmbeddingCache, shard_size: int):
        self.cache, self.shard_size = cache, shard_size
        self.passages = self.cached = 0
        self._seen: set[bytes] = set()

    def shards(self, texts: Iterable[str]) -> Iterator[tuple[list[bytes], list[str]]]:
        keys: list[bytes] = []
        batch: list[str] = []
        for text in texts:
            self.passages += 1
            key = text_key(text)
            if key in self._seen or key in self.cache:
                self.cached += 1
                continue
            self._seen.add(key)
            keys.append(key)
            batch.append(text)
            if len(keys) >= self.shard_size:
                yield keys, batch
                keys, batch = [], []
        if keys:
            yield keys, batch


def encode_corpus(
    corpora: list[str | Path], out_root: str | Path, settings: BuildSettings = BuildSettings(), *,
    ray_address: str | None = None, workers: int | None = None, pool: object | None = None,
    on_submit: Callable[[int, int], None] | None = None,
) -> EncodeReport:  # fmt: skip
    """Encode every passage of `corpora` not yet cached under `out_root`/embeddings.

    `ray_address` ('auto', 'host:port' or 'local') spreads the shards over a Ray cluster; `pool` passes
    a `RayEncoderPool` the caller started (and closes) itself."""
    paths = checked_corpora(corpora, settings)  # a bad path fails before any model is loaded
    root = Path(out_root)
    check_out_root(root)
    started = time.monotonic()
    dense = settings.dense
    own_pool = pool is None and ray_address is not None
    if own_pool:
        from backends.faiss.ray_pool import RayEncoderPool, connect

        ray = connect(ray_address)
        try:
            pool = RayEncoderPool(dense, workers=workers)
        except BaseException:
            ray.shutdown()
            raise
    try:
        if pool is not None:
            info, model = pool.encoder_info, None  # type: ignore[attr-defined]
        else:
            model = load_encoder(dense)
            info = encoder_info(model, dense)
        try:
            cache = EmbeddingCache(root / layout.EMBEDDING_CACHE_DIR / model_key(info), info["dimension"], info)
        except OSError as exc:  # --out under a regular file, read-only, ...: one line, as `index build` says it
            raise _write_error(exc, root) from None
        counter = _Counter(cache, dense.shard_size)
        shards = counter.shards(embedded_texts(paths, settings))
        with tqdm(desc="encode", unit="psg", disable=settings.quiet, dynamic_ncols=True) as bar:

            def write(keys: list[bytes], vectors) -> None:
                try:
                    cache.put(keys, vectors)  # atomic per shard: the shards written before stay usable
                except OSError as exc:  # the disk filled up, say: one line, as `index build` says it
                    raise _write_error(exc, root) from None
                bar.update(len(keys))

            if pool is None:
                written = 0
                for keys, texts in shards:
                    write(keys, encode_shard(model, texts, dense))
                    written += 1
                retried, n_workers = 0, 1
            else:
                stats = pool.run(shards, write, on_submit=on_submit)  # type: ignore[attr-defined]
                written, retried, n_workers = stats.shards, stats.retried, len(pool.actors)  # type: ignore[attr-defined]
    finally:
        if own_pool:
            pool.close()  # type: ignore[union-attr]
            ray.shutdown()
    return EncodeReport(
        cache_dir=cache.dir, passages=counter.passages, cached=counter.cached, encoded=counter.passages - counter.cached,
        shards=written, retried=retried, workers=n_workers, device=str(info["device"]), seconds=round(time.monotonic() - started, 2),
    )  # fmt: skip
