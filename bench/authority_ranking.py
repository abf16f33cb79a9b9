"""Authority-aware ranking on SciFact: the twin test and the random-assignment test.

    python bench/authority_ranking.py --root /tmp/authority-bench [--split test] [--weights 0,0.02,0.05,0.1]

Twin test: every document is indexed twice with the same text, once under a listed
(authoritative) domain and once under an unlisted one; both copies are relevant.
Random test: each document gets a listed or an unlisted domain at random (50/50, seed 13).
Both corpora are built into ROOT (the dense leg reuses the embedding cache across them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
from pathlib import Path

from common import DATA, table

from indexer.build import build_index
from indexer.settings import BuildSettings
from ranker.authority import AuthorityList
from ranker.eval import evaluate_run, load_qrels, load_queries, max_passage
from ranker.pipeline import SearchOptions, SearchPipeline
from ranker.settings import SearchSettings

SEED = 13


def scifact_docs():
    with gzip.open(DATA / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def listed_domains(authority: AuthorityList, rng: random.Random) -> list[str]:
    domains = sorted(d for d in authority.explicit_domains if authority.lookup(d) and authority.lookup(d).tier == 1)
    rng.shuffle(domains)
    return domains[:200]


def write_corpus(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def twin_corpus(listed: list[str], rng: random.Random):
    for i, d in enumerate(scifact_docs()):
        base = {"title": d["title"], "text": d["text"]}
        # Ids chosen so that the unlisted copy wins ties broken by id: any lead of the
        # listed copy is then the authority prior's doing.
        yield {"id": f"{d['_id']}@listed", "url": f"https://{rng.choice(listed)}/papers/{d['_id']}", **base}
        yield {"id": f"{d['_id']}@a-web", "url": f"https://site{i % 500}.example-blog.net/p/{d['_id']}", **base}


def random_corpus(listed: list[str], rng: random.Random):
    for i, d in enumerate(scifact_docs()):
        host = rng.choice(listed) if rng.random() < 0.5 else f"site{i % 500}.example-blog.net"
        yield {"id": d["_id"], "url": f"https://{host}/papers/{d['_id']}", "title": d["title"], "text": d["text"]}


def run(pipeline: SearchPipeline, queries: dict[str, str], qids: list[str], weight: float, k: int = 100):
    options = SearchOptions(k=k, per_doc=0, dedupe_text=False, authority_weight=weight)
    out = {}
    for i in range(0, len(qids), 100):
        chunk = qids[i : i + 100]
        for qid, hits in zip(chunk, pipeline.rank([queries[q] for q in chunk], options)):
            out[qid] = hits
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--weights", default="0,0.02,0.05,0.1,0.2")
    ap.add_argument("--reuse-embeddings", type=Path, help="an index ROOT's embeddings/ cache to start from")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    rng = random.Random(SEED)
    authority = AuthorityList.load()
    listed = listed_domains(authority, rng)
    qrels = load_qrels(DATA / "scifact", args.split)
    queries = load_queries(DATA / "scifact")
    qids = [q for q in qrels if q in queries]
    settings = BuildSettings(chunk_words=0, quiet=True)

    twin_root, random_root = args.root / "twin", args.root / "random"
    if args.reuse_embeddings:  # same texts, same model: the cache makes the dense leg nearly free
        for root in (twin_root, random_root):
            if not (root / "embeddings").exists():
                shutil.copytree(args.reuse_embeddings, root / "embeddings")
    if not (twin_root / "current").exists():
        build_index([write_corpus(args.root / "corpora" / "twin.jsonl", twin_corpus(listed, rng))], twin_root, settings)
    if not (random_root / "current").exists():
        build_index([write_corpus(args.root / "corpora" / "random.jsonl", random_corpus(listed, rng))], random_root, settings)

    # Twin test: both copies relevant.
    twin_qrels = {q: {f"{d}@{s}": r for d, r in docs.items() for s in ("listed", "a-web")} for q, docs in qrels.items()}
    pipeline = SearchPipeline.open(twin_root, SearchSettings())
    rows = []
    for w in weights:
        runs = run(pipeline, queries, qids, w)
        metrics = evaluate_run({q: max_passage(h) for q, h in runs.items()}, twin_qrels)
        pairs = wins = 0
        for hits in runs.values():
            top = [h.doc_id for h in hits[:10]]
            for doc in {d.rsplit("@", 1)[0] for d in top}:
                a, b = f"{doc}@listed", f"{doc}@a-web"
                if a in top and b in top:
                    pairs += 1
                    wins += top.index(a) < top.index(b)
        rows.append([w, metrics["ndcg@10"], pairs, f"{wins / pairs:.4f}" if pairs else "-"])
    pipeline.close()
    print(f"Twin test, SciFact {args.split} ({len(qids)} queries), hybrid, both copies relevant\n")
    print(table(["authority_weight", "nDCG@10", "twin pairs in top 10", "listed copy above twin"], rows))

    # Random 50/50 assignment.
    pipeline = SearchPipeline.open(random_root, SearchSettings())
    rows = []
    for w in weights:
        runs = run(pipeline, queries, qids, w)
        metrics = evaluate_run({q: max_passage(h) for q, h in runs.items()}, qrels)
        top10 = [h for hits in runs.values() for h in hits[:10]]
        share = sum(1 for h in top10 if pipeline.authority_of(h.passage_id) is not None) / len(top10)
        rows.append([w, metrics["ndcg@10"], metrics["recall@100"], f"{share:.3f}"])
    pipeline.close()
    print(f"\nRandom 50/50 listed/unlisted domains (seed {SEED}), SciFact {args.split}, hybrid\n")
    print(table(["authority_weight", "nDCG@10", "R@100", "listed share of top 10"], rows))


if __name__ == "__main__":
    main()
