"""The source table's filter masks (per host code, per published code) against `SourceFilter.accepts`,
the per-source reference the post-filter applies, on random columns with the edge cases in them:
hosts the authority list does not know, passages without a host, undated and non-ISO dates, and
bounds equal to stored values (inclusive) at every granularity."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from indexer.columns import ColumnWriter, Columns
from ranker.authority import CATEGORIES, AuthorityList
from ranker.filters import SourceFilter, SourceMeta
from ranker.sources import SourceTable

BASE_HOSTS = [
    "www.destatis.de", "cdc.gov", "data.cdc.gov", "notcdc.gov", "who.int", "stats.gov.cn", "ons.gov.uk",
    "arxiv.org", "europa.eu", "ox.ac.uk", "mit.edu", "archive.org", "preprints.org",
    "example.org", "blog.example.org", "example.com", "unknown-host.test",  # unlisted
]  # fmt: skip
DOMAINS = ["cdc.gov", "gov", "example.org", "who.int", "ac.uk", "org", "data.cdc.gov", "nowhere.example", "de"]
COUNTRIES = ["us", "de", "cn", "gb", "int", "eu", "ch", "fr"]
LANGUAGES = ["en", "de", "zh", "fr", "ja"]  # ja: no document has it
NOT_ISO = ["yesterday", "2024-13-45", "01/05/2023", "2023-02-30"]


def _published(rng: random.Random) -> str | None:
    kind = rng.randrange(7)
    y, m, d = rng.randint(2018, 2022), rng.randint(1, 12), rng.randint(1, 28)
    return [None, f"{y}", f"{y}-{m:02d}", f"{y}-{m:02d}-{d:02d}", f"{y}-{m:02d}-{d:02d}T{rng.randrange(24):02d}:00:00Z",
            rng.choice(NOT_ISO), f"{y}-{m:02d}-{d:02d}"][kind]  # fmt: skip


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> SourceTable:
    rng = random.Random(20240501)
    languages = random.Random(5)  # its own stream: the hosts and dates stay those drawn before languages
    w = ColumnWriter(tmp_path_factory.mktemp("columns"))
    for i in range(3000):
        host = rng.choice(BASE_HOSTS)
        if rng.random() < 0.3:
            host = f"s{rng.randrange(50)}.{host}"
        language = languages.choice([None, "en", "de", "zh", "fr"])  # None: unknown
        if rng.random() < 0.05:
            w.add(None, None, _published(rng), [f"d{i}#0"], language)  # no host at all
        else:
            w.add(f"https://{host}/p{i}", None, _published(rng), [f"d{i}#0", f"d{i}#1"], language)
    w.close()
    return SourceTable(Columns(w.dir), AuthorityList.load())


def _random_filter(rng: random.Random, table: SourceTable) -> SourceFilter:
    stored = [p for p in table.columns.published if p]
    def bound() -> str | None:
        if rng.random() < 0.4:
            return None
        return rng.choice(stored)[: rng.choice((4, 7, 10))]  # a stored value's year, month or day: inclusive edges
    return SourceFilter(
        include_domains=tuple(rng.sample(DOMAINS, rng.randrange(3))) if rng.random() < 0.5 else (),
        exclude_domains=tuple(rng.sample(DOMAINS, rng.randrange(3))) if rng.random() < 0.5 else (),
        min_tier=rng.choice((None, None, 1, 2, 3)),
        categories=tuple(rng.sample(sorted(CATEGORIES), rng.randrange(4))) if rng.random() < 0.4 else (),
        countries=tuple(rng.sample(COUNTRIES, rng.randrange(4))) if rng.random() < 0.4 else (),
        published_after=bound(), published_before=bound(), include_undated=rng.random() < 0.5,
        languages=tuple(rng.sample(LANGUAGES, rng.randrange(1, 3))) if rng.random() < 0.4 else (),
    )  # fmt: skip


def _reference_host_mask(table: SourceTable, f: SourceFilter) -> np.ndarray:
    part = SourceFilter(include_domains=f.include_domains, exclude_domains=f.exclude_domains, min_tier=f.min_tier,
                        categories=f.categories, countries=f.countries)  # fmt: skip
    return np.array([part.accepts("", table._host_meta[code]) for code in range(len(table.columns.hosts))], dtype=bool)


def _reference_date_mask(table: SourceTable, f: SourceFilter) -> np.ndarray:
    part = SourceFilter(published_after=f.published_after, published_before=f.published_before,
                        include_undated=f.include_undated)  # fmt: skip
    return np.array([part.accepts("", SourceMeta(None, None, p or None, None, None)) for p in table.columns.published])


def test_masks_equal_the_per_source_reference_on_random_filters(table):
    rng = random.Random(7)
    for _ in range(300):
        f = _random_filter(rng, table)
        assert np.array_equal(table.host_mask(f), _reference_host_mask(table, f)), f
        assert np.array_equal(table.date_mask(f), _reference_date_mask(table, f)), f


def test_allowed_equals_accepts_per_passage(table):
    rng = random.Random(11)
    n = len(table.columns.host)
    for _ in range(40):
        f = _random_filter(rng, table)
        expected = [f.accepts("", table.meta(p)) for p in range(n)]
        assert table.allowed(f).tolist() == expected, f


def test_languages_keep_only_documents_known_to_be_in_them(table):
    n = len(table.columns.host)
    f = SourceFilter(languages=("de", "zh"))
    kept = [p for p in range(n) if f.accepts("", table.meta(p))]
    assert kept and {table.meta(p).language for p in kept} == {"de", "zh"}  # unknown language: dropped
    assert table.allowed(f).tolist() == [p in set(kept) for p in range(n)]
    assert not any(SourceFilter(languages=("ja",)).accepts("", table.meta(p)) for p in range(n))


def test_und_asks_for_the_documents_of_unknown_language(tmp_path):
    """A build stores `und` where it could tell no language (`indexer.language`); naming it selects them."""
    w = ColumnWriter(tmp_path)
    for i, language in enumerate(["und", "en", "und", "de"]):
        w.add(f"https://cdc.gov/p{i}", None, None, [f"d{i}#0"], language)
    w.close()
    table = SourceTable(Columns(w.dir), AuthorityList.load())
    for languages, kept in ((("und",), [0, 2]), (("en",), [1]), (("und", "de"), [0, 2, 3])):
        f = SourceFilter(languages=languages)
        assert [p for p in range(4) if f.accepts("", table.meta(p))] == kept
        assert np.flatnonzero(table.allowed(f)).tolist() == kept


def test_mask_edges(table):
    hosts = [table._host_meta[c].host for c in range(len(table.columns.hosts))]
    under = table.host_mask(SourceFilter(include_domains=("cdc.gov",)))
    assert {h for h, ok in zip(hosts, under) if ok} == {h for h in hosts if h and (h == "cdc.gov" or h.endswith(".cdc.gov"))}
    assert "notcdc.gov" in hosts and not under[hosts.index("notcdc.gov")]  # a suffix is not a subdomain
    assert not table.host_mask(SourceFilter(include_domains=("nowhere.example",))).any()  # a domain no host has
    assert table.host_mask(SourceFilter(exclude_domains=("nowhere.example",))).all()
    no_host = hosts.index(None)  # passages without a host: never included, never excluded
    assert not table.host_mask(SourceFilter(include_domains=("org",)))[no_host]
    assert table.host_mask(SourceFilter(exclude_domains=("org",)))[no_host]
    unlisted = [i for i, h in enumerate(hosts) if h and h.endswith("example.com")]
    assert unlisted and not table.host_mask(SourceFilter(min_tier=3))[unlisted].any()  # unknown to the list: no tier
    assert not table.host_mask(SourceFilter(countries=("us",)))[unlisted].any()
    assert not table.host_mask(SourceFilter(countries=("fr",))).any()  # a country no host has

    published = table.columns.published
    day = next(p for p in published if len(p) == 10 and p not in NOT_ISO)
    both = table.date_mask(SourceFilter(published_after=day, published_before=day))
    # a year or a month alone meets the day's bounds too: the document may be of that day
    assert {p for p, ok in zip(published, both) if ok} == {p for p in published if p not in NOT_ISO
                                                           and (p[:10] == day or p in (day[:4], day[:7]))}  # fmt: skip
    assert {day, f"{day}T00:00:00Z"} & {p for p, ok in zip(published, both) if ok}  # inclusive at both ends
    year = day[:4]
    in_year = table.date_mask(SourceFilter(published_after=year, published_before=year))
    assert {p for p, ok in zip(published, in_year) if ok} == {p for p in published if p[:4] == year and p not in NOT_ISO}
    undated = [i for i, p in enumerate(published) if not p or p in NOT_ISO]
    assert len(undated) == 1 + len(NOT_ISO)  # "" (no date) and every non-ISO value
    assert not table.date_mask(SourceFilter(published_after="2000"))[undated].any()
    assert table.date_mask(SourceFilter(published_after="2000", include_undated=True))[undated].all()
    assert table.date_mask(SourceFilter(include_undated=True)).all()  # no bound: everything passes


def test_masks_do_not_ask_accepts_per_host_or_date(table, monkeypatch):
    """The masks are array operations over the host and date tables, not a Python call per entry
    (a table of 300,000 published values took ~1 s per filtered query that way)."""
    def per_entry(*args, **kwargs):
        raise AssertionError("SourceFilter.accepts called per table entry")

    monkeypatch.setattr(SourceFilter, "accepts", per_entry)
    f = SourceFilter(include_domains=("gov", "who.int"), exclude_domains=("data.cdc.gov",), min_tier=2,
                     categories=("health_agency", "government"), countries=("us", "int"),
                     published_after="2019-03", published_before="2021")  # fmt: skip
    assert table.host_mask(f).any() and table.date_mask(f).any()
    assert table.allowed(f).any()


def test_time_range_and_published_after_the_later_bound_wins():
    from ranker.filters import later_date
    from ranker.options import SearchOptions

    now = datetime(2024, 6, 1, tzinfo=timezone.utc)  # a "year" from here starts 2023-06-02
    assert SearchOptions(time_range="year", now=now, published_after="2020").filters.published_after == "2023-06-02"
    assert SearchOptions(time_range="year", now=now, published_after="2024-01").filters.published_after == "2024-01"
    assert SearchOptions(time_range="year", now=now).filters.published_after == "2023-06-02"
    assert later_date("2023-06-02", "2020") == later_date("2020", "2023-06-02") == "2023-06-02"
    assert later_date(None, "2020") == "2020" and later_date(None, None) is None


def test_time_ranges_are_1_7_30_and_365_days_back():
    from ranker.filters import since

    now = datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc)
    assert [since(r, now) for r in ("day", "week", "month", "year")] == ["2026-03-30", "2026-03-24", "2026-03-01", "2025-03-31"]
    assert since("month", datetime(2026, 3, 1, 2, tzinfo=timezone(timedelta(hours=5)))) == "2026-01-29"  # 2026-02-28 UTC - 30 days


@pytest.mark.parametrize(("published", "after", "before", "kept"), [
    ("2024", "2024-01-01", None, True), ("2024", "2024-03-01", None, True), ("2024", "2025-01-01", None, False),
    ("2024", None, "2024-01-01", True), ("2024", None, "2023-12-31", False),
    ("2024-02", "2024-02-10", None, True), ("2024-02", "2024-03-01", None, False), ("2024-02", None, "2024-02-01", True),
    ("2024-02", None, "2024-01-31", False), ("2024-02-01", "2024-02-02", None, False), ("2024-02-01", "2024-02", None, True),
    ("2024-02-01T23:30:00Z", None, "2024-02-01", True),
])  # fmt: skip
def test_a_year_or_month_alone_is_in_every_bound_its_period_meets(published, after, before, kept):
    """Compared at the bound's precision only, a document dated `2024` fell before 2024-01-01, and every
    time_range window (whose bound is a day) dropped such documents, which the crawler stores for pages
    that give their year alone."""
    f = SourceFilter(published_after=after, published_before=before)
    assert f.accepts("", SourceMeta(None, None, published, None, None)) is kept


def test_the_lucene_date_clause_takes_in_a_year_or_month_alone(tmp_path):
    """The Lucene leg's filter clause is a range of YYYYMMDD tokens, a year alone `20240000`: below any
    bound inside its year, so the leg never returned such documents for the post-filter to keep."""
    import json

    from ranker.pipeline import SearchPipeline
    from tests.conftest import drsearch

    dated = {"y": "2024", "m": "2024-02", "d": "2024-02-01", "e": "2024-01-15", "o": "2023"}
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": f"zorblax {i}", "published": p}) + "\n" for i, p in dated.items()))
    assert drsearch("index", "build", "--corpus", corpus, "--out", tmp_path / "idx", "--no-dense", "-q").returncode == 0
    pipe = SearchPipeline.open(tmp_path / "idx")
    try:
        for after, expected in (("2024-02-10", {"y", "m"}), ("2024-01-01", {"y", "m", "d", "e"}), ("2023-06", {"y", "m", "d", "e", "o"})):
            restriction = pipe.sources.restriction(SourceFilter(published_after=after), positions=False)
            found = pipe.lexical.search(["zorblax"], 10, restriction)[0]
            ids = found[0] if isinstance(found, tuple) else [h.passage_id for h in found]
            assert {str(pid).rsplit("#", 1)[0] for pid in ids} == expected, after
    finally:
        pipe.close()
