"""Deterministic synthetic corpus of N passages, FOR COST MEASUREMENTS ONLY (never quality figures).

    python bench/scale_corpus.py N OUT [--seed 13] [--shard-docs 20000]

Documents of 2-8 paragraphs of 101-200 words each (so the default chunker, ~200 words, makes one
passage per paragraph and the corpus has exactly N passages), with titles, dates (10% missing) and
URLs on listed (authority list) and unlisted domains. Two domains are planted for filter figures:
`RARE_DOMAIN` holds one document in 1,000 (~0.1% of passages) and `FIVE_DOC_DOMAIN` exactly 5 documents. Text is
sampled from the real sentences of ../shared/data (SciFact, Cranfield) with a fixed seed. Written
as gzipped documents-JSONL shards, streamed: memory does not grow with N.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA  # noqa: E402

RARE_DOMAIN = "rare-archive.example.org"
FIVE_DOC_DOMAIN = "five-docs.example.org"
RARE_EVERY = 1000  # one document in this many: ~0.1% of passages
LISTED_SHARE = 0.6
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_EPOCH = dt.date(1995, 1, 1)
_DAYS = (dt.date(2026, 10, 31) - _EPOCH).days


def real_sentences(data: Path = DATA) -> list[str]:
    """Sentences of 6-50 words from the English collections under `data`, in file order."""
    out: list[str] = []
    for name in ("scifact/corpus.jsonl.gz", "cranfield/corpus.jsonl"):
        path = data / name
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                text = " ".join(json.loads(line).get("text", "").split())
                out.extend(s for s in _SENTENCE.split(text) if 6 <= len(s.split()) <= 50)
    if not out:
        raise SystemExit(f"no sentences found under {data} (set DRSEARCH_DATA)")
    return out


def listed_hosts() -> list[str]:
    """Hosts on the authority list's explicit domains (some with a subdomain)."""
    from ranker.authority import AuthorityList

    return list(AuthorityList.load().explicit_domains)


def _paragraph(rng: random.Random, sentences: list[str]) -> str:
    words, parts = 0, []
    goal = rng.randint(110, 190)
    while words < goal:
        s = sentences[rng.randrange(len(sentences))]
        n = len(s.split())
        if words + n > 200:
            if words > 100:
                break
            continue
        parts.append(s)
        words += n
    return " ".join(parts)


def documents(n_passages: int, seed: int = 13, data: Path = DATA) -> Iterator[dict]:
    """The corpus's documents, in order; their paragraphs add up to exactly `n_passages`."""
    if n_passages < 40:
        raise SystemExit("N must be at least 40 passages (5 planted documents of up to 8 paragraphs)")
    rng = random.Random(seed)
    sentences = real_sentences(data)
    listed = listed_hosts()
    unlisted = [f"site{i:03d}.example.{tld}" for i, tld in zip(range(300), ["com", "net", "info"] * 100)]
    five_at = [n_passages * (2 * j + 1) // 10 for j in range(5)]  # plant one doc at each of these offsets
    done = doc_no = 0
    while done < n_passages:
        n = min(rng.randint(2, 8), n_passages - done)
        if five_at and done >= five_at[0]:
            five_at.pop(0)
            host = FIVE_DOC_DOMAIN
        elif doc_no % RARE_EVERY == RARE_EVERY // 2:
            host = RARE_DOMAIN
        elif rng.random() < LISTED_SHARE:
            host = rng.choice(listed)
            host = rng.choice(["", "", "www.", "data.", "news."]) + host
        else:
            host = rng.choice(unlisted)
        paragraphs = [_paragraph(rng, sentences) for _ in range(n)]
        published = None if rng.random() < 0.1 else (_EPOCH + dt.timedelta(days=rng.randrange(_DAYS))).isoformat()
        yield {
            "id": f"s{doc_no:08d}",
            "title": " ".join(paragraphs[0].split()[:8]).rstrip(".,;:"),
            "text": "\n\n".join(paragraphs),
            "url": f"https://{host}/reports/{doc_no}",
            "published": published,
            "metadata": {"synthetic": "for cost measurements only"},
        }
        done += n
        doc_no += 1


def write(n_passages: int, out: Path, *, seed: int = 13, shard_docs: int = 20_000) -> tuple[int, int]:
    """Write the shards under `out`; returns (documents, passages)."""
    out.mkdir(parents=True, exist_ok=True)
    fh = None
    docs = passages = 0
    try:
        for doc in documents(n_passages, seed):
            if docs % shard_docs == 0:
                if fh:
                    fh.close()
                fh = gzip.open(out / f"docs-{docs // shard_docs:05d}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1)
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
            docs += 1
            passages += doc["text"].count("\n\n") + 1
    finally:
        if fh:
            fh.close()
    return docs, passages


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of passages")
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--shard-docs", type=int, default=20_000)
    args = ap.parse_args(argv)
    docs, passages = write(args.n, args.out, seed=args.seed, shard_docs=args.shard_docs)
    print(f"{docs} documents, {passages} passages -> {args.out} (synthetic: for cost measurements only)")


if __name__ == "__main__":
    main()
