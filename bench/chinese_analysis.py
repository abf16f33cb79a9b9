"""Chinese analysis choices on rgb_zh (document level), side by side with Pyserini's two analyzers.

    python bench/chinese_analysis.py [--corpus DIR]

Every variant indexes the same documents (one Lucene document each, k1=0.9 b=0.4) and is searched
for all queries in this one run:
- Pyserini: Anserini's IndexCollection on the raw text, default analyzer and `-language zh`
  (CJK bigrams), searched with Pyserini's LuceneSearcher (`set_language('zh')` for the latter);
- drsearch units: Han runs rewritten by `indexer.analysis.for_lucene` with a given segmentation
  (characters, bigrams, both, jieba words, jieba search mode, Lucene's SmartChineseAnalyzer when the
  Anserini jar ships it), then Lucene's default analyzer, as drsearch builds and searches;
- the drsearch pipeline itself: `index build` defaults (passages of ~200 units) and `--chunk-words 0`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from common import DATA, table

from backends.lucene.jvm import anserini_jar, autoclass, java_binary, start_jvm
from backends.lucene.writer import build_lucene_index
from indexer.analysis import for_lucene, units
from indexer.build import build_index
from indexer.settings import BuildSettings, DenseSettings
from ranker.eval import evaluate as run_eval
from ranker.eval import evaluate_run, load_qrels, load_queries
from ranker.pipeline import SearchOptions, SearchPipeline


def write_input(corpus: Path, directory: Path, rewrite: Callable[[str], str]) -> int:
    directory.mkdir(parents=True)
    n = 0
    files = [open(directory / f"part-{i}.json", "w", encoding="utf-8") for i in range(2)]
    with open(corpus / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            text = f"{doc['title']}\n{doc['text']}" if doc.get("title") else doc["text"]
            files[n % 2].write(json.dumps({"id": doc["_id"], "contents": rewrite(text)}, ensure_ascii=False) + "\n")
            n += 1
    for f in files:
        f.close()
    return n


def pyserini_index(input_dir: Path, index_dir: Path, language: str | None) -> None:
    import subprocess

    cmd = [str(java_binary()), "-Xmx2g", "-cp", str(anserini_jar()), "io.anserini.index.IndexCollection",
           "-collection", "JsonCollection", "-input", str(input_dir), "-index", str(index_dir),
           "-generator", "DefaultLuceneDocumentGenerator", "-threads", "2", "-storePositions", "-storeDocvectors"]
    subprocess.run(cmd + (["-language", language] if language else []), check=True, capture_output=True)


def run_of(results: dict, qids: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for qid in qids:
        hits = results.get(qid) or []
        out[qid] = {h.docid: float(-i) for i, h in enumerate(hits)}
    return out


def smartcn_units() -> Callable[[str], Iterable[str]] | None:
    """Lucene's SmartChineseAnalyzer word segmentation, if the Anserini jar ships it."""
    start_jvm()
    try:
        analyzer = autoclass("org.apache.lucene.analysis.cn.smart.SmartChineseAnalyzer")()
    except Exception:  # noqa: BLE001 - the class is simply not in the jar
        return None
    utils = autoclass("io.anserini.analysis.AnalyzerUtils")
    return lambda run: list(utils.analyze(analyzer, run))


def jieba_variants() -> dict[str, Callable[[str], Iterable[str]] | None]:
    """Word segmentation by jieba (`pip install -e '.[bench]'`); None where it is not installed."""
    try:
        import jieba
    except ImportError:
        return dict.fromkeys(("jieba words", "jieba search mode", "jieba words + bigrams"))
    jieba.setLogLevel(60)
    return {
        "jieba words": jieba.lcut,
        "jieba search mode (words + their sub-words)": jieba.lcut_for_search,
        "jieba words + bigrams": lambda r: [*jieba.lcut(r), *units(r, "bigram", frozenset())],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DATA / "rgb_zh")
    args = ap.parse_args()
    qrels = load_qrels(args.corpus)
    queries = load_queries(args.corpus)
    qids = [q for q in qrels if q in queries]
    start_jvm()
    variants: dict[str, Callable[[str], Iterable[str]] | None] = {
        "characters (unigrams)": lambda r: units(r, "unigram", frozenset()),
        "bigrams": lambda r: units(r, "bigram", frozenset()),
        "unigrams + bigrams": lambda r: units(r, "unigram+bigram", frozenset()),
        "unigrams + bigrams, function words dropped (drsearch default)": units,
        **jieba_variants(),
        "SmartChineseAnalyzer words": smartcn_units(),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from pyserini.search.lucene import LuceneSearcher

        for name, language in (("Pyserini, default analyzer", None), ("Pyserini, -language zh (CJK bigrams)", "zh")):
            inp, idx = work / f"in-{language}", work / f"idx-{language}"
            write_input(args.corpus, inp, lambda t: t)
            pyserini_index(inp, idx, language)
            searcher = LuceneSearcher(str(idx))
            searcher.set_bm25(0.9, 0.4)
            if language:
                searcher.set_language(language)
            results = searcher.batch_search([queries[q] for q in qids], qids, k=100, threads=2)
            rows.append([name, *metrics(evaluate_run(run_of(results, qids), qrels))])
        searcher_class = autoclass("io.anserini.search.SimpleSearcher")
        arrays = autoclass("java.util.Arrays")
        for i, (name, fn) in enumerate(variants.items()):
            if fn is None:
                rows.append([name + ": not available (jieba not installed / class not in the Anserini jar)", "", "", ""])
                continue
            inp, idx = work / f"in{i}", work / f"idx{i}"
            t = time.perf_counter()
            n = write_input(args.corpus, inp, lambda text, f=fn: for_lucene(text, f))
            build_lucene_index(inp, idx, threads=2, total=n, quiet=True)
            searcher = searcher_class(str(idx))
            searcher.set_bm25(0.9, 0.4)
            texts = arrays.asList(*[for_lucene(queries[q], fn) for q in qids])
            found = searcher.batch_search(texts, arrays.asList(*qids), 100, 2)
            results = {e.getKey(): list(e.getValue()) for e in found.entrySet().toArray()}
            rows.append([name, *metrics(evaluate_run(run_of(results, qids), qrels))])
            print(f"{name}: {time.perf_counter() - t:.1f}s", flush=True)
        for chunk in (200, 0):
            result = build_index([args.corpus], work / f"drsearch{chunk}", BuildSettings(
                chunk_words=chunk, quiet=True, dense=DenseSettings(enabled=False)))
            pipeline = SearchPipeline.open(result.build_dir)
            options = SearchOptions(k=1000, k0=1000, mode="bm25", per_doc=0, dedupe_text=False, authority_weight=0.0)
            report = run_eval(lambda qs: pipeline.rank(qs, options), args.corpus, quiet=True)
            rows.append([f"drsearch pipeline, `index build --no-dense --chunk-words {chunk}`", *metrics(report)])
            pipeline.close()
    print(f"\n{args.corpus.name}: {len(qids)} queries, document level, BM25 k1=0.9 b=0.4\n")
    print(table(["analysis", "nDCG@10", "R@100", "MRR@10"], rows))


def metrics(report: dict) -> list[str]:
    return [f"{report['ndcg@10']:.4f}", f"{report['recall@100']:.4f}", f"{report['mrr@10']:.4f}"]


if __name__ == "__main__":
    main()
