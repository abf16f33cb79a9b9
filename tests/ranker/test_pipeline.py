"""SearchPipeline over small real indexes (Lucene + SQLite, BM25 leg): authority tie-breaking,
relevance first, filters that return exactly k, per-document collapse and per-domain caps."""

from __future__ import annotations

import json
import random

import pytest

from indexer.build import build_index
from pydantic import ValidationError

from indexer.errors import IndexFormatError, QueryError
from indexer.settings import BuildSettings, DenseSettings
from ranker.pipeline import SearchOptions, SearchPipeline

WORDS = "market price policy growth labour trade energy climate health survey output credit housing".split()


def build(tmp_path, rows, name="idx", chunk_words=0):
    corpus = tmp_path / f"{name}.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    root = tmp_path / name
    build_index([corpus], root, BuildSettings(chunk_words=chunk_words, quiet=True, dense=DenseSettings(enabled=False)))
    return SearchPipeline.open(root)


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ties")
    text = "Quarterly inflation report: consumer prices rose while core inflation eased."
    rows = [
        {"id": "blog", "url": "https://econ-blog.example.net/inflation", "title": "Inflation", "text": text},
        {"id": "imf", "url": "https://www.imf.org/en/inflation", "title": "Inflation", "text": text},
        {"id": "uni", "url": "https://www.ox.ac.uk/inflation", "title": "Inflation", "text": text},
        {"id": "strong", "url": "https://econ-blog.example.net/deep",
         "title": "Inflation inflation inflation", "text": "Inflation inflation: consumer prices and core inflation " * 3},
    ] + [{"id": f"filler{i}", "text": " ".join(random.Random(i).choices(WORDS, k=40))} for i in range(40)]  # fmt: skip
    p = build(tmp, rows)
    yield p
    p.close()


def ids(hits):
    return [h.doc_id for h in hits]


def test_authority_breaks_ties_but_not_clear_relevance(ties):
    # Copies of one text are shown here (dedupe_text off) to see how the prior orders them all.
    off = ties.rank(["core inflation consumer prices"], SearchOptions(k=4, authority_weight=0.0, dedupe_text=False))[0]
    on = ties.rank(["core inflation consumer prices"], SearchOptions(k=4, authority_weight=0.05, dedupe_text=False))[0]
    assert off[0].doc_id == on[0].doc_id == "strong"  # clearly more relevant, unlisted: stays first
    assert ids(on)[1:] == ["imf", "uni", "blog"]  # equal text: tier 1 official, tier 1 .ac.uk, then unlisted
    assert [h.bm25 for h in on[1:]] == pytest.approx([on[1].bm25] * 3, rel=1e-5)  # a three-way tie in BM25
    assert on[1].authority == pytest.approx(0.05) and on[3].authority == 0.0
    assert [h.authority for h in off] == [0.0] * 4
    assert ids(off) == ids(ties.rank(["core inflation consumer prices"],
                                     SearchOptions(k=4, authority_weight=0.0, dedupe_text=False))[0])  # fmt: skip
    shown_once = ties.rank(["core inflation consumer prices"], SearchOptions(k=4, authority_weight=0.05))[0]
    assert ids(shown_once)[:2] == ["strong", "imf"] and not {"uni", "blog"} & set(ids(shown_once))


def test_authority_breaks_ties_in_a_pool_of_two(tmp_path):
    """Two equal copies are the only candidates: min-max over two scores would make any rounding gap
    a full point of relevance; the listed copy must still come first, and a clearly more relevant
    unlisted passage must still win its own pool of two."""
    same = "Zorblat habitat survey across several regions."
    rows = [{"id": "a-blog", "url": "https://zorblat.example.net/p", "text": same},
            {"id": "z-nature", "url": "https://www.nature.com/zorblat", "text": same},
            {"id": "a-strong", "url": "https://quibbix.example.net/p", "text": "Quibbix quibbix quibbix: all about quibbix."},
            {"id": "z-weak", "url": "https://www.nature.com/quibbix", "text": "A long survey of regional habitats that "
             "mentions quibbix once, among many other words about birds, rivers, forests and the people who count them."},
            ] + [{"id": f"filler{i}", "text": " ".join(random.Random(i).choices(WORDS, k=40))} for i in range(10)]  # fmt: skip
    p = build(tmp_path, rows)
    try:
        both = p.rank(["zorblat"], SearchOptions(k=2, authority_weight=0.05, dedupe_text=False))[0]
        assert ids(both) == ["z-nature", "a-blog"]
        assert ids(p.rank(["zorblat"], SearchOptions(k=2, authority_weight=0.05))[0]) == ["z-nature"]  # one copy shown
        assert ids(p.rank(["quibbix"], SearchOptions(k=2, authority_weight=0.05))[0]) == ["a-strong", "z-weak"]
    finally:
        p.close()


def test_strength_is_bounded(ties):
    # Even a large prior cannot lift a passage above one whose relevance is higher by more than the weight.
    from ranker.pipeline import TIER_PRIOR

    hits = ties.rank(["core inflation consumer prices"], SearchOptions(k=4, authority_weight=0.2))[0]
    relevance = [h.score - h.authority for h in hits]
    for h in hits:  # each hit's contribution is the weight times its source's tier prior (0 unlisted)
        tier = ties.source_meta(h.passage_id).tier
        assert h.authority == pytest.approx(0.2 * TIER_PRIOR.get(tier, 0.0))
    for a, b in zip(hits, hits[1:]):
        assert not (b.score - b.authority) - (a.score - a.authority) > 0.2
    assert max(relevance) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """1,000 documents, 1% on nber.org (listed: tier 2 research institute), the rest on unlisted hosts."""
    tmp = tmp_path_factory.mktemp("filters")
    rng = random.Random(7)
    rows = []
    for i in range(1000):
        host = "www.nber.org" if i % 100 == 0 else ("a.blog.example.com" if i % 50 == 1 else "b.example.org")
        published = f"20{10 + i % 15:02d}-0{1 + i % 9}-15"
        text = "labour market " + " ".join(rng.choices(WORDS, k=60))
        rows.append({"id": f"d{i}", "url": f"https://{host}/p/{i}", "title": f"Paper {i}", "text": text,
                     "published": published})  # fmt: skip
    p = build(tmp, rows)
    yield p
    p.close()


@pytest.mark.parametrize(
    "flt, expected",
    [
        ({"include_domains": ("nber.org",)}, 10),  # 1% of the corpus, subdomain www. matches
        ({"min_tier": 2}, 10),
        ({"categories": ("research_institute",)}, 10),
        ({"include_domains": ("blog.example.com",)}, 10),
        ({"exclude_domains": ("example.org", "example.com")}, 10),
    ],
)
def test_rare_filters_return_exactly_k(big, flt, expected):
    options = SearchOptions(k=expected, authority_weight=0.0, **flt)
    hits = big.rank(["labour market"], options)[0]
    flt = options.filters
    assert len(hits) == expected
    metas = [big.source_meta(h.passage_id) for h in hits]
    assert all(flt.accepts(h.passage_id, m) for h, m in zip(hits, metas))
    assert [h.rank for h in hits] == list(range(1, expected + 1))


def test_filter_with_fewer_matches_than_k_returns_all_matches(big):
    hits = big.rank(["labour market"], SearchOptions(k=50, include_domains=("nber.org",)))[0]
    assert len(hits) == 10


def test_date_range(big):
    hits = big.rank(["labour market"], SearchOptions(k=20, published_after="2020-01", published_before="2021-12-31"))[0]
    assert len(hits) == 20
    assert all("2020-01" <= big.source_meta(h.passage_id).published[:7] <= "2021-12" for h in hits)


def test_max_per_domain_and_caps_still_fill_k(big):
    hits = big.rank(["labour market"], SearchOptions(k=3, max_per_domain=1, authority_weight=0.0))[0]
    sites = [big.source_meta(h.passage_id).site for h in hits]
    assert len(hits) == 3 and len(set(sites)) == 3  # nber.org, example.com, example.org


def test_max_per_domain_caps_a_site_addressed_by_ip(tmp_path):
    """An IP host is no registrable domain, but it is one site: the cap holds for it too."""
    rows = [{"id": f"ip{i}", "url": f"http://10.1.2.3/p/{i}", "text": f"labour market report {i}"} for i in range(3)]
    rows += [{"id": f"v6-{i}", "url": f"http://[2001:db8::1]/p/{i}", "text": f"labour market note {i}"} for i in range(3)]
    rows += [{"id": "named", "url": "https://b.example.org/p", "text": "labour market review"}]
    p = build(tmp_path, rows)
    try:
        hits = p.rank(["labour market"], SearchOptions(k=7, max_per_domain=1, authority_weight=0.0))[0]
        assert sorted(p.source_meta(h.passage_id).site for h in hits) == ["10.1.2.3", "2001:db8::1", "example.org"]
    finally:
        p.close()


def test_max_per_domain_is_not_applied_to_named_domains(big):
    hits = big.rank(["labour market"], SearchOptions(k=5, include_domains=("nber.org",), max_per_domain=1))[0]
    assert len(hits) == 5 and {big.source_meta(h.passage_id).site for h in hits} == {"nber.org"}
    capped = big.rank(["labour market"], SearchOptions(k=5, max_per_domain=1))[0]
    sites = [big.source_meta(h.passage_id).site for h in capped]
    assert len(sites) == len(set(sites))  # without include_domains the cap holds


def test_domain_filters_match_like_the_authority_matcher(big):
    for given in ("https://WWW.NBER.org:443/papers", "user@nber.org", "nber.org."):
        options = SearchOptions(k=3, include_domains=(given,))
        assert options.include_domains == ("nber.org",)  # normalised once, when the options are made
        hits = big.rank(["labour market"], options)[0]
        assert len(hits) == 3 and all(big.source_meta(h.passage_id).site == "nber.org" for h in hits), given
    for bad in ("*.nber.org", "10.0.0.1", "two words.org", ""):
        with pytest.raises(QueryError, match="not a domain name") as err:
            SearchOptions(include_domains=(bad,))
        assert err.value.field == "include_domains"


def test_per_doc_collapse(tmp_path):
    paragraphs = "\n\n".join(f"Section {i}: energy prices and energy policy." for i in range(6))
    p = build(tmp_path, [{"id": "long", "text": paragraphs},
                         {"id": "other", "text": "energy policy note"}], chunk_words=5)  # fmt: skip
    collapsed = p.rank(["energy policy"], SearchOptions(k=10))[0]
    assert ids(collapsed).count("long") == 1 and len(collapsed) == 2
    expanded = p.rank(["energy policy"], SearchOptions(k=10, per_doc=0))[0]
    assert ids(expanded).count("long") == 6
    two = p.rank(["energy policy"], SearchOptions(k=10, per_doc=2))[0]
    assert ids(two).count("long") == 2
    p.close()


def test_bad_options_are_errors_naming_the_field_when_made(big):
    """Options are checked once, when constructed; the pipeline refuses only what needs the index."""
    for values, field in [
        ({"categories": ("blogs",)}, "categories"),
        ({"min_tier": 0}, "min_tier"),
        ({"published_after": "last week"}, "published_after"),
        ({"mode": "semantic"}, "mode"),
        ({"max_per_domain": 0}, "max_per_domain"),
        ({"k": 0}, "k"),
    ]:
        with pytest.raises((QueryError, ValidationError)) as err:
            SearchOptions(**values)
        named = err.value.field if isinstance(err.value, QueryError) else err.value.errors()[0]["loc"][0]
        assert named == field, (values, err.value)
    with pytest.raises(IndexFormatError) as err:
        big.rank(["labour"], SearchOptions(mode="dense"))  # a BM25-only index
    assert err.value.field == "mode"
    with pytest.raises(QueryError):
        big.rank(["   "])


def test_results_carry_passage_and_authority(big):
    (res,) = big.search("labour market", SearchOptions(k=1, include_domains=("nber.org",)))
    assert res.passage.url.startswith("https://www.nber.org/") and res.passage.domain == "www.nber.org"
    assert res.authority == big.authority.lookup("nber.org")
    assert (res.authority.category, res.authority.tier) == ("research_institute", 2)


def test_termless_queries_refused_in_every_mode(tmp_path):
    from tests.text_fixtures import DOCS

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    build_index([corpus], tmp_path / "idx", BuildSettings(chunk_words=0, quiet=True))
    p = SearchPipeline.open(tmp_path / "idx")
    for mode in ("bm25", "dense", "hybrid"):
        for query in ("AND OR", "the of (and) * :"):
            with pytest.raises(QueryError, match="no searchable terms"):
                p.rank([query], SearchOptions(mode=mode))
        for bad in ("", "   ", None, 42):  # checked once, in the pipeline, before any leg runs
            with pytest.raises(QueryError) as err:
                p.rank(["jazz", bad, "lava"], SearchOptions(mode=mode))  # type: ignore[list-item]
            assert err.value.field == "queries[1]"
    # A real word absent from the corpus is not an error: the dense leg still answers.
    (hits,) = p.rank(["photosynthesizing xyzzy"], SearchOptions(mode="hybrid", k=3))
    assert hits and hits[0].doc_id == "photo" and hits[0].bm25 is None
    p.close()


def test_changing_the_authority_list_needs_no_reindex(tmp_path):
    from ranker.settings import SearchSettings

    rows = [{"id": "a", "url": "https://data.example-agency.org/a", "text": "wage growth and labour market survey"},
            {"id": "b", "url": "https://blog.example.net/b", "text": "wage growth and labour market survey"}]  # fmt: skip
    build(tmp_path, rows).close()
    header = "domain,name,category,country,tier,note\n"
    lists = {}
    for name, tier in (("tier1", 1), ("tier3", 3)):
        d = tmp_path / name
        d.mkdir()
        (d / "agencies.csv").write_text(header + f"example-agency.org,Example Agency,statistics,us,{tier},\n")
        lists[name] = d
    seen = {}
    for name, d in lists.items():
        p = SearchPipeline.open(tmp_path / "idx", SearchSettings(authority_list=str(d), authority_weight=0.05))
        top, other = p.search("wage growth labour survey", SearchOptions(k=2, dedupe_text=False))  # both copies
        seen[name] = (top.hit.doc_id, top.authority.tier, top.hit.authority, other.authority)
        p.close()
    assert seen["tier1"] == ("a", 1, pytest.approx(0.05), None)
    assert seen["tier3"] == ("a", 3, pytest.approx(0.05 * 0.25), None)


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Press releases sharing their last paragraph, a report stored on a tier-1 site and a mirror."""
    from tests.text_fixtures import press_release_docs

    p = build(tmp_path_factory.mktemp("copies"), press_release_docs(), chunk_words=40)
    yield p
    p.close()


def texts(pipeline, hits):
    """Each hit's passage text as copies compare (casefolded, whitespace collapsed)."""
    rows = pipeline.store.passages_by_id([h.passage_id for h in hits])
    return [" ".join(rows[h.passage_id].text.casefold().split()) for h in hits]


def test_copies_of_a_text_are_shown_once_and_the_list_refilled(copies):
    from tests.text_fixtures import FUND_QUERY

    shown = texts(copies, copies.rank([FUND_QUERY], SearchOptions(k=5, dedupe_text=False))[0])
    about = shown[0]  # a passage of the paragraph every press release ends with
    assert "190 member countries" in about and shown == [about] * 5  # five documents, one text
    for options in (SearchOptions(k=8), SearchOptions(k=8, per_doc=0), SearchOptions(k=3, k0=4, per_doc=0)):
        hits = copies.rank([FUND_QUERY], options)[0]
        shown = texts(copies, hits)
        assert shown[0] == about and len(shown) == options.k and len(set(shown)) == options.k, options
        assert [h.rank for h in hits] == list(range(1, options.k + 1))
    # The first 9 candidates (3k) hold fewer than 3 texts: the list was deepened to fill k, as for the caps.
    assert copies.rank([FUND_QUERY], SearchOptions(k=3, k0=4, per_doc=0))[0].examined > 9


def test_the_authoritative_copy_is_the_one_kept(copies):
    from tests.text_fixtures import REPORT_QUERY

    hits = copies.rank([REPORT_QUERY], SearchOptions(k=3))[0]
    assert ids(hits)[0] == "oecd" and "a-mirror" not in ids(hits)  # tier 1 beats the unlisted mirror's equal text
    assert len(hits) == 2 and len(set(texts(copies, hits))) == 2  # the report, and the "About" paragraph's end once
    no_prior = copies.rank([REPORT_QUERY], SearchOptions(k=3, authority_weight=0.0))[0]
    assert ids(no_prior)[0] == "a-mirror" and "oecd" not in ids(no_prior)  # the tie goes by id: still one copy
    both = copies.rank([REPORT_QUERY], SearchOptions(k=3, dedupe_text=False))[0]
    assert ids(both)[:2] == ["oecd", "a-mirror"]


def test_pages_never_repeat_a_text_nor_skip_a_hit(copies):
    """Pages as the API and CLI ask for them (k = offset + page, page_size = page): page 2 is what
    the 10-long list holds after page 1, and no text shows on both."""
    from tests.text_fixtures import FUND_QUERY

    for options in ({}, {"per_doc": 0}, {"k0": 4}):
        first = copies.rank([FUND_QUERY], SearchOptions(k=5, page_size=5, **options))[0]
        second = copies.rank([FUND_QUERY], SearchOptions(k=10, page_size=5, **options))[0][5:]
        whole = copies.rank([FUND_QUERY], SearchOptions(k=10, page_size=5, **options))[0]
        assert [h.passage_id for h in first + second] == [h.passage_id for h in whole]
        assert len(set(texts(copies, first + second))) == 10, options


def test_a_build_without_the_text_hash_column_searches_without_collapsing(copies, tmp_path):
    """Builds made before columns/text_hash.npy open and search as before: copies are shown."""
    import shutil

    from tests.text_fixtures import FUND_QUERY

    old = tmp_path / "old"
    shutil.copytree(copies.build_dir, old)
    (old / "columns" / "text_hash.npy").unlink()
    p = SearchPipeline.open(old)
    try:
        assert p.text_hashes is None
        hits = p.rank([FUND_QUERY], SearchOptions(k=4))[0]
        assert len(hits) == 4 and len(set(texts(p, hits))) == 1
        copies_shown = copies.rank([FUND_QUERY], SearchOptions(k=4, dedupe_text=False))[0]
        assert [h.passage_id for h in hits] == [h.passage_id for h in copies_shown]
    finally:
        p.close()


def test_a_copy_the_filters_drop_does_not_hide_one_they_keep(tmp_path):
    """With `include_undated` a date bound is the post-filter's alone (the legs return dated passages out
    of range): the better-ranked copy, out of range, must not stand for the copy in range."""
    text = "Quarterly inflation report: consumer prices rose while core inflation eased."
    p = build(tmp_path, [
        {"id": "old", "url": "https://www.imf.org/inflation", "published": "2010-05-01", "text": text},  # tier 1: first
        {"id": "new", "url": "https://econ-blog.example.net/inflation", "published": "2024-05-01", "text": text},
        {"id": "undated", "url": "https://econ-blog.example.net/other", "text": "Core inflation eased in the quarter."},
    ])  # fmt: skip
    try:
        assert ids(p.rank(["inflation report"], SearchOptions(k=5))[0]) == ["old", "undated"]
        recent = p.rank(["inflation report"], SearchOptions(k=5, published_after="2020", include_undated=True))[0]
        assert ids(recent) == ["new", "undated"]
    finally:
        p.close()


def test_lists_whose_undated_documents_the_deadline_left_uncounted_are_partial(tmp_path, monkeypatch):
    """With allow_partial, ranked in time but the deadline passed before the undated documents a date
    bound drops were counted: the count is missing, so the lists are partial (the service does not
    cache them). They were complete lists counting 0."""
    import time

    from ranker import budget

    p = build(tmp_path, [
        {"id": "new", "url": "https://www.imf.org/a", "published": "2024-05-01", "text": "Inflation eased in 2024."},
        {"id": "undated", "url": "https://www.imf.org/b", "text": "Inflation eased again."},
    ])  # fmt: skip
    try:
        retrieve = p._retrieve

        def retrieve_then_run_out(*args, **kwargs):  # the legs answer; the deadline passes as they do
            runs = retrieve(*args, **kwargs)
            monkeypatch.setattr(budget, "passed", lambda deadline: deadline is not None)
            return runs

        monkeypatch.setattr(p, "_retrieve", retrieve_then_run_out)
        deadline = time.monotonic() + 60
        options = SearchOptions(k=5, published_after="2020", deadline=deadline, partial=True)
        undated: list[int] = []
        ranked = p.rank(["inflation"], options, undated=undated)[0]
        assert ids(ranked) == ["new"] and ranked.partial and undated == [0]
    finally:
        p.close()
