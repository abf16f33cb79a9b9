"""The lean hybrid path (`ranker.candidates`) ranks exactly as `fusion.convex` over a `Hit` per
candidate: on synthetic runs with every edge case, and through `SearchPipeline.rank` on SciFact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.hit import Hit
from indexer.schema import doc_id_of
from ranker import fusion
from ranker.candidates import convex_arrays


def _hits(ids, scores, leg):
    if leg == "bm25":
        return [Hit(p, doc_id_of(p), s, r, s, None, None, None, r) for r, (p, s) in enumerate(zip(ids, scores), 1)]
    return [Hit(p, doc_id_of(p), s, r, None, s, None, None, None, r) for r, (p, s) in enumerate(zip(ids, scores), 1)]


def _run(rng, n, pool, ties):
    ids = [f"d{int(i)}#0" for i in rng.choice(pool, n)]  # repeats within a run on purpose
    raw = rng.integers(0, 4, n).astype(float) if ties else rng.standard_normal(n).astype(np.float32)
    return ids, sorted(raw.tolist(), reverse=True)


@pytest.mark.parametrize("seed", range(40))
def test_convex_arrays_equals_convex_hit_for_hit(seed):
    rng = np.random.default_rng(seed)
    n_lex, n_dense = [(0, 0), (1, 0), (0, 1), (1, 1)][seed] if seed < 4 else rng.integers(0, 30, 2).tolist()
    ties = seed % 3 == 0
    lexical = _run(rng, n_lex, 25, ties)
    dense = _run(rng, n_dense, 25, ties)
    w = float(rng.uniform(0, 1))
    expected = fusion.convex([_hits(*lexical, "bm25"), _hits(*dense, "dense")], weights=[1 - w, w])
    got = convex_arrays(lexical, dense, [1 - w, w])
    assert len(got) == len(expected)
    assert list(got) == expected
    assert got.has_lexical == any(h.bm25 for h in expected)


@pytest.fixture(scope="module")
def scifact(scifact_flat_index):
    from ranker.pipeline import SearchPipeline
    from tests.conftest import DATA

    pipeline = SearchPipeline.open(scifact_flat_index)
    with open(DATA / "scifact" / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh][:200]
    yield pipeline, queries, pipeline.dense.encode(queries)
    pipeline.close()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"k": 3, "k0": 7},
        {"per_doc": 0, "authority_weight": 0.0},
        {"exclude_domains": ("example.org",), "max_per_domain": 2},
    ],
    ids=["defaults", "shallow", "no-prior", "filtered"],
)
def test_pipeline_ranks_the_same_with_and_without_the_lean_path(scifact, options):
    from ranker.pipeline import SearchOptions

    pipeline, queries, vectors = scifact
    opts = SearchOptions(mode="hybrid", **{"k": 10, **options})
    lean = pipeline.rank(queries, opts, vectors)
    try:
        pipeline.lean_fusion = False
        plain = pipeline.rank(queries, opts, vectors)
    finally:
        pipeline.lean_fusion = True
    assert [list(h) for h in lean] == [list(h) for h in plain]
    assert sum(len(h) for h in lean) >= len(queries)
