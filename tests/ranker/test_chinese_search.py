"""Chinese and mixed-language search over a small real library (rgb_zh questions' documents + SciFact)."""

from __future__ import annotations

import shutil

import pytest

from indexer import layout
from indexer.analysis import decode_term
from indexer.errors import QueryError
from ranker.options import SearchOptions
from ranker.pipeline import SearchPipeline


@pytest.fixture(scope="module")
def pipeline(mixed_zh):
    p = SearchPipeline.open(mixed_zh["build"])
    yield p
    p.close()


def docs(hits) -> list[str]:
    return list(dict.fromkeys(h.doc_id for h in hits))


def test_languages_are_stored_and_counted(mixed_zh, pipeline):
    mix, written = layout.read_manifest(mixed_zh["build"])["languages"], mixed_zh["counts"]
    assert sum(mix.values()) == sum(written.values())
    # A few rgb_zh pages are English boilerplate or mojibake, and are counted as what they are.
    assert mix["zh"] >= 0.95 * written["zh"] and mix["en"] >= written["en"]
    assert pipeline.manifest.dense.languages == ["en"]  # the bundled MiniLM
    doc = next(iter(mixed_zh["qrels"]["1"]))
    assert pipeline.store.document(doc)["language"] == "zh"


def test_chinese_questions_find_their_answer_passages(mixed_zh, pipeline):
    queries, qrels = mixed_zh["queries"], mixed_zh["qrels"]
    ranked = pipeline.rank(list(queries.values()), SearchOptions(k=10, mode="bm25", per_doc=1))
    found = [bool(set(docs(hits)) & qrels[qid]) for qid, hits in zip(queries, ranked)]
    assert sum(found) >= len(found) - 1, found  # hard negatives are in the library too


def test_mixed_query_is_analysed_per_script(pipeline):
    terms = [decode_term(t) for t in pipeline.lexical.terms("RCEP 成员国")]
    assert terms == ["rcep", "成", "成员", "员", "员国", "国"]
    top = pipeline.search("RCEP 成员国", SearchOptions(k=3, mode="bm25"))
    assert top and all("RCEP" in r.passage.text for r in top)
    # Query syntax stays text: operators and fields are just characters here.
    assert pipeline.search("RCEP AND title:成员国 OR (", SearchOptions(k=3, mode="bm25"))


def test_only_function_words_or_punctuation_is_refused(pipeline):
    for query in ("的了吗？", "是什么呢", "，。！"):
        with pytest.raises(QueryError, match="no searchable terms") as err:
            pipeline.rank([query], SearchOptions(mode="bm25"))
        assert "\n" not in str(err.value)
    with pytest.raises(QueryError, match="no searchable terms") as err:
        pipeline.rank(["RCEP", "哪些呢？"], SearchOptions(mode="hybrid"))
    assert err.value.field == "queries[1]"


def test_language_filter(pipeline):
    query = "2021 GDP 增长 growth"
    for lang in ("zh", "en"):
        hits = pipeline.rank([query], SearchOptions(k=5, mode="bm25", languages=(lang,)))[0]
        assert len(hits) == 5 and {pipeline.source_meta(h.passage_id).language for h in hits} == {lang}
    # Dense search gets the language inside the FAISS position mask: every candidate it returns passes.
    en = "ALDH1 expression is associated with poorer prognosis for breast cancer"
    hits = pipeline.rank([en], SearchOptions(k=5, mode="dense", per_doc=0, languages=("zh",)))[0]
    assert len(hits) == 5 and {pipeline.source_meta(h.passage_id).language for h in hits} == {"zh"}
    mask = pipeline.sources.restriction(SearchOptions(languages=("zh",)).filters, positions=True).allowed
    assert int(mask.sum()) == sum(pipeline.sources.meta(i).language == "zh" for i in range(len(mask)))
    # BM25 gets it as a Lucene FILTER clause over the indexed language field.
    only_zh = pipeline.sources.restriction(SearchOptions(languages=("zh",)).filters, positions=False)
    lexical = pipeline.lexical.search([query], 20, only_zh)[0]
    assert len(lexical) == 20 and {pipeline.source_meta(h.passage_id).language for h in lexical} == {"zh"}
    assert SearchOptions(languages=("ZH-cn", "zh")).languages == ("zh",)
    with pytest.raises(QueryError, match="not a language code") as err:
        SearchOptions(languages=("chinese",))
    assert err.value.field == "languages"


def test_hybrid_runs_bm25_alone_for_languages_the_dense_model_lacks(mixed_zh, pipeline):
    zh, en = mixed_zh["queries"]["1"], "ALDH1 expression is associated with poorer prognosis for breast cancer"
    assert [pipeline.mode_used(q, "hybrid") for q in (zh, "RCEP 成员国", en)] == ["bm25", "bm25", "hybrid"]
    assert pipeline.mode_used(zh, "dense") == "dense"  # an explicit dense request is honoured
    opts = SearchOptions(k=10, per_doc=0, authority_weight=0.0)
    hybrid = pipeline.rank([zh, en], opts.model_copy(update={"mode": "hybrid"}))
    bm25 = pipeline.rank([zh], opts.model_copy(update={"mode": "bm25"}))[0]
    assert [h.passage_id for h in hybrid[0]] == [h.passage_id for h in bm25]
    assert all(h.dense is None for h in hybrid[0]) and all(h.dense is not None or h.bm25 for h in hybrid[1])
    assert any(h.dense is not None for h in hybrid[1])


def test_a_single_ascii_query_is_checked_after_its_encode_with_the_same_outcome(pipeline, monkeypatch):
    """A single ASCII query's language is checked once it is encoded, after its BM25 leg (searched on
    the Lucene helper's Java thread beside the encode), not before: a French one still runs BM25
    alone, an English one ranks exactly as when checked first."""
    import ranker.pipeline as module
    from indexer.language import query_languages

    monkeypatch.setattr(module, "budget", lambda: 2)  # a thread beside the encode, as on 2+ cores
    events = []
    mode_used, encode = pipeline.mode_used, pipeline.dense.encode

    def recorded(query, mode):
        events.append("check")
        return mode_used(query, mode)

    def encoded(*args, **kwargs):
        events.append("encode")
        return encode(*args, **kwargs)

    monkeypatch.setattr(pipeline, "mode_used", recorded)
    monkeypatch.setattr(pipeline.dense, "encode", encoded)
    fr = "Les banques centrales augmentent les taux pour lutter contre l inflation en Europe"
    en = "ALDH1 expression is associated with poorer prognosis for breast cancer"
    opts = SearchOptions(k=10, per_doc=0, mode="hybrid")

    def ranked(query: str, speculate: bool, mode: str = "hybrid") -> list[tuple]:
        query_languages.cache_clear()  # as for a query new to the pipeline
        monkeypatch.setattr(pipeline, "speculate_language", speculate)
        events.clear()
        hits = pipeline.rank([query], opts.model_copy(update={"mode": mode}))[0]
        return [(h.passage_id, h.score, h.bm25, h.dense) for h in hits]

    assert mode_used(fr, "hybrid") == "bm25"
    speculated = ranked(fr, True)
    assert events[:2] == ["encode", "check"]  # encoded in vain, then ranked by BM25 alone
    checked_first = ranked(fr, False)
    assert events == ["check"]
    assert speculated == checked_first == ranked(fr, False, "bm25")
    speculated = ranked(en, True)
    assert events == ["encode", "check"]
    assert speculated == ranked(en, False) and any(dense is not None for *_, dense in speculated)


def test_a_model_declared_multilingual_keeps_dense_for_chinese(mixed_zh):
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from tests.conftest import _share_embedding_cache

    root = mixed_zh["root"].parent / "multilingual"  # its own ROOT: the shared one's `current` stays put
    root.mkdir()
    _share_embedding_cache(root)
    if not (root / layout.EMBEDDING_CACHE_DIR).exists():  # same model and passages: the shared build's vectors serve
        shutil.copytree(mixed_zh["root"] / layout.EMBEDDING_CACHE_DIR, root / layout.EMBEDDING_CACHE_DIR)
    build = build_index([mixed_zh["corpus"]], root, BuildSettings(
        quiet=True, dense=DenseSettings(languages=["en", "zh"]))).build_dir  # fmt: skip
    p = SearchPipeline.open(build)
    try:
        assert p.dense_languages == ("en", "zh")
        hits = p.rank([mixed_zh["queries"]["1"]], SearchOptions(k=5, mode="hybrid"))[0]
        assert p.mode_used(mixed_zh["queries"]["1"], "hybrid") == "hybrid" and any(h.dense is not None for h in hits)
    finally:
        p.close()
