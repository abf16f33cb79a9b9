"""Fill an index root's embedding cache for a corpus with stand-in vectors made from real ones.

    python bench/stand_in_vectors.py --real ROOT/embeddings/<model_key> --corpus CORPUS --out ROOT2

For measuring the dense leg's memory and latency at a size that cannot be encoded here (1M passages
on 2 CPU cores): every passage of CORPUS whose text has a real vector in `--real` gets it; every other
passage gets a randomly chosen real vector plus N(0, 0.02) noise, re-normalised. The cache is written
under ROOT2/embeddings/ with the real cache's model key, so `drsearch index build --out ROOT2` (same
encoder and chunking) finds every vector and encodes nothing. Such a build is FOR COST MEASUREMENTS
ONLY: no recall or quality figure may come from it (bench/dense_recall.py measures recall on real
vectors). Chunking is the build's default unless --chunk-words says otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import load_vectors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="embedding cache folder of real vectors")
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="index ROOT whose cache to fill")
    ap.add_argument("--chunk-words", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    from tqdm import tqdm

    from backends.faiss.cache import EmbeddingCache
    from backends.faiss.encoder import text_key
    from indexer import layout
    from indexer.encode import embedded_texts
    from indexer.settings import BuildSettings

    dimension = json.loads((args.real / "model.json").read_text())["dimension"]
    real = EmbeddingCache(args.real, dimension)
    vectors = load_vectors(args.real)  # the same real vectors, stacked, to draw stand-ins from
    out_dir = args.out / layout.EMBEDDING_CACHE_DIR / args.real.name
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.real / "model.json", out_dir / "model.json")
    cache = EmbeddingCache(out_dir, vectors.shape[1])
    rng = np.random.default_rng(args.seed)
    settings = BuildSettings(chunk_words=args.chunk_words)
    shard_size = settings.dense.shard_size
    pending: list[bytes] = []
    seen: set[bytes] = set()
    real_used = stand_ins = 0

    def flush() -> None:
        nonlocal real_used, stand_ins
        found = [real.get(k) for k in pending]
        fake = np.array([v is None for v in found])
        out = vectors[rng.integers(0, len(vectors), len(pending))]  # a copy (fancy indexing)
        for i, v in enumerate(found):
            if v is not None:
                out[i] = v
        out[fake] += rng.normal(0, args.noise, (int(fake.sum()), out.shape[1])).astype(np.float32)
        out[fake] /= np.linalg.norm(out[fake], axis=1, keepdims=True)
        cache.put(pending, out)
        real_used += int((~fake).sum())
        stand_ins += int(fake.sum())
        pending.clear()

    for text in tqdm(embedded_texts([args.corpus], settings), desc="stand-in vectors", unit="psg"):
        key = text_key(text)
        if key in seen:
            continue
        seen.add(key)
        pending.append(key)
        if len(pending) >= shard_size:
            flush()
    if pending:
        flush()
    print(f"{real_used + stand_ins:,} vectors under {out_dir}: {real_used:,} real, {stand_ins:,} stand-ins (noise {args.noise})")


if __name__ == "__main__":
    main()
