"""Query-focused reading: a document's passages ranked by relevance to a query.

BM25 (the index's analyzer, its document frequencies and k1/b) and, when the index has a dense leg,
the dense model's cosine, each min-max normalised over the document's passages and combined with
the pipeline's dense weight. Indexed passages use their stored vectors; passages of a page fetched
live are embedded here.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A passage of a document: character offsets into the document text, and its id when indexed."""

    ordinal: int
    start: int
    end: int
    text: str
    passage_id: str | None = None


def _minmax(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]


def bm25_scores(lexical, query: str, texts: list[str]) -> list[float]:
    """BM25 of `query` against each text with the lexical leg's analyzer, IDF and k1/b (lengths local to
    the texts). A leg without document frequencies (`doc_freqs`) gives every term the same IDF."""
    bounded = getattr(lexical, "bounded", None)
    q_terms = list(dict.fromkeys(lexical.terms(bounded(query) if bounded else query)))
    if not q_terms or not texts:
        return [0.0] * len(texts)
    n = max(1, lexical.size)
    dfs = lexical.doc_freqs(q_terms) if hasattr(lexical, "doc_freqs") else [1] * len(q_terms)
    idf = {t: math.log(1.0 + (n - df + 0.5) / (df + 0.5)) for t, df in zip(q_terms, dfs)}
    tfs = [Counter(lexical.terms(t)) for t in texts]
    lengths = [sum(tf.values()) for tf in tfs]
    avg = (sum(lengths) / len(lengths)) or 1.0
    k1, b = getattr(lexical, "k1", 0.9), getattr(lexical, "b", 0.4)
    out = []
    for tf, dl in zip(tfs, lengths):
        norm = k1 * (1.0 - b + b * dl / avg)
        out.append(sum(idf[t] * tf[t] * (k1 + 1.0) / (tf[t] + norm) for t in q_terms if tf[t]))
    return out


def dense_scores(pipeline, query: str, title: str, spans: list[Span]) -> list[float]:
    dense = pipeline.dense
    qv = dense.encode([query])
    if all(s.passage_id for s in spans):  # indexed: the stored vectors
        return [float(x) for x in dense.scores_for(qv, [[s.passage_id for s in spans]])[0]]
    vectors = dense.encode_passages([(title, s.text) for s in spans])
    return [float(x) for x in vectors @ qv[0]]


def rank_spans(pipeline, query: str, title: str, spans: list[Span]) -> tuple[list[tuple[Span, float]], frozenset[int]]:
    """`spans` best first for `query` (ties: document order), each with its combined score in [0, 1];
    and the ordinals of those the query reaches: a query word in it, or with a dense leg a combined
    score above 0 (the least similar passage without a query word scores 0). A normalised 0 alone says
    nothing: the least matching of passages that all hold query words scores 0 too."""
    if not spans:
        return [], frozenset()
    query = str(query)  # a plain str: the Lucene analyzer (pyjnius) refuses str subclasses
    raw = bm25_scores(pipeline.lexical, query, [s.text for s in spans])
    lexical = _minmax(raw)
    if pipeline.has_dense:
        w = pipeline.settings.dense_weight
        semantic = _minmax(dense_scores(pipeline, query, title, spans))
        combined = [(1.0 - w) * a + w * c for a, c in zip(lexical, semantic)]
    else:
        combined = lexical
    order = sorted(range(len(spans)), key=lambda i: (-combined[i], spans[i].ordinal))
    reached = frozenset(s.ordinal for s, r, c in zip(spans, raw, combined) if r > 0 or (pipeline.has_dense and c > 0))
    return [(spans[i], round(combined[i], 6)) for i in order], reached
