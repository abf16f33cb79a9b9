"""Source facts over the passage columns: country from the authority list, language from the
language column, include_undated in the position mask and the Lucene date clause."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from indexer.columns import ColumnWriter, Columns
from indexer.errors import QueryError
from ranker.authority import AuthorityList
from ranker.filters import SourceFilter, SourceMeta, normalise_codes
from ranker.sources import SourceTable


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> SourceTable:
    d = tmp_path_factory.mktemp("columns")
    w = ColumnWriter(d)
    w.add("https://www.destatis.de/a", None, "2024-02-01", ["de#0", "de#1"], "de-DE")
    w.add("https://www.cdc.gov/b", None, None, ["us#0"], "EN")
    w.add(None, "example.org", "2019", ["ex#0"], None)
    w.add("https://www.stats.gov.cn/c", None, "2024-05", ["cn#0"], "zh_CN")
    w.close()
    return SourceTable(Columns(d), AuthorityList.load())


def _ids(table: SourceTable, **kw) -> list[str]:
    ok = table.allowed(SourceFilter(**kw))
    return [table.columns.passage_id(int(p)) for p in np.flatnonzero(ok)]


def test_language_column_round_trip(table):
    assert table.columns.languages[0] == ""  # unknown is code 0
    assert [table.meta(i).language for i in range(5)] == ["de", "de", "en", None, "zh"]
    assert [table.meta(i).country for i in range(5)] == ["de", "de", "us", None, "cn"]


def test_languages_and_countries_in_the_position_mask(table):
    assert _ids(table, languages=("de", "zh")) == ["de#0", "de#1", "cn#0"]
    assert _ids(table, countries=("us",)) == ["us#0"]
    assert _ids(table, languages=("en",), countries=("de",)) == []


def test_include_undated_keeps_undated_passages(table):
    assert _ids(table, published_after="2020") == ["de#0", "de#1", "cn#0"]
    assert _ids(table, published_after="2020", include_undated=True) == ["de#0", "de#1", "us#0", "cn#0"]
    # Lucene indexes no date field for undated passages: with include_undated no date clause is sent.
    assert table.restriction(SourceFilter(published_after="2020"), positions=False).date_range == ("20200000", "99999999")
    assert table.restriction(SourceFilter(published_after="2020", include_undated=True), positions=False).date_range is None


def test_build_without_language_column_reads_as_unknown(tmp_path):
    w = ColumnWriter(tmp_path)
    w.add(None, "who.int", None, ["w#0", "w#1"])
    w.close()
    (tmp_path / "language.npy").unlink()
    (tmp_path / "languages.json").unlink()
    cols = Columns(tmp_path)
    assert len(cols.language) == 2 and cols.languages == [""]


def test_entries_read_the_authority_list_per_host_in_one_pass(table):
    authority = AuthorityList.load()
    ids = ["cn#0", "ex#0", "de#1", "us#0", "de#0", "cn#0"]
    hosts = [table.meta(table.columns.position(p)).host for p in ids]
    assert table.entries(ids) == [authority.lookup(h) if h else None for h in hosts]
    assert [e.domain if e else None for e in table.entries(ids)][:3] == ["stats.gov.cn", None, "destatis.de"]
    assert table.entries(["nowhere#0"]) == [None] and table.entries([]) == []


NOT_ISO = ["yesterday", "2024-13-45", "99999-01-01", "01/05/2023", "2023-02-30", "2024-05-01Tnoon", " 2024"]


@pytest.mark.parametrize("stored", NOT_ISO)
def test_a_stored_published_that_is_not_an_iso_date_is_undated(stored):
    """A build before the reader refused such values stored them as given: no date bound may match them."""
    meta = SourceMeta(host=None, site=None, published=stored, tier=None, category=None)
    for bound in ({"published_after": "2020"}, {"published_before": "2030"}, {"published_after": "0001", "published_before": "9999"}):
        assert not SourceFilter(**bound).accepts("x#0", meta), bound
        assert SourceFilter(**bound, include_undated=True).accepts("x#0", meta), bound
    assert SourceFilter().accepts("x#0", meta)  # no date bound: kept
    assert SourceFilter(published_after="2020").accepts("x#0", SourceMeta(None, None, "2023-05-01T10:00:00Z", None, None))


def test_non_iso_dates_in_old_columns_are_undated_in_the_masks(tmp_path):
    w = ColumnWriter(tmp_path)  # the writer stores any string, as builds did before the reader checked
    for i, value in enumerate(NOT_ISO):
        w.add(None, "example.org", value, [f"bad{i}#0"])
    w.add(None, "example.org", "2023-05-01T10:00:00Z", ["ok#0"])
    w.add(None, "example.org", "2019-06", ["old#0"])
    w.add(None, "example.org", None, ["none#0"])
    w.close()
    table = SourceTable(Columns(tmp_path), AuthorityList.load())
    bad = [f"bad{i}#0" for i in range(len(NOT_ISO))]
    assert _ids(table, published_after="2020") == ["ok#0"]
    assert _ids(table, published_before="2020") == ["old#0"]
    assert _ids(table, published_after="2020", include_undated=True) == [*bad, "ok#0", "none#0"]
    assert _ids(table, published_before="2020", include_undated=True) == [*bad, "old#0", "none#0"]
    assert all(table.meta(table.columns.position(p)).published is None for p in bad)
    # ... and a date bound counts them among the undated documents it drops
    assert all(SourceFilter(published_after="2020").drops_undated(table.meta_of(p)) for p in bad)


def test_language_filter_codes_are_iso_639():
    assert normalise_codes(["zh-CN", "ZHO", "haw", "yue", "und", "zxx", "mul", "zh"], "languages") == (
        "zh", "haw", "yue", "und", "zxx", "mul")  # fmt: skip
    for bad in ("xx", "jp", "english", "12", ""):
        with pytest.raises(QueryError) as err:
            normalise_codes(["en", bad], "languages")
        assert err.value.field == "languages" and f"not a language code: {bad!r}" in err.value.message
        assert "\n" not in err.value.message


def test_country_filter_codes_are_iso_3166_alpha_2():
    assert normalise_codes(["US", " gb ", "int", "eu", "cn", "us"], "countries") == ("us", "gb", "int", "eu", "cn")
    for bad, hint in [("uk", "gb"), ("usa", "us"), ("deu", "de"), ("xk", None), ("zz", None), ("qo", None), ("u", None), ("", None)]:
        with pytest.raises(QueryError) as err:
            normalise_codes(["us", bad], "countries")
        message = err.value.message
        assert err.value.field == "countries" and f"not a country code: {bad!r}" in message and "\n" not in message
        assert message.endswith(f"; did you mean {hint}?") if hint else "did you mean" not in message


def test_countries_from_cldr_are_the_assigned_iso_3166_alpha_2_codes():
    """The 249 codes ISO 3166-1 assigns, as the authority list's check spells them out."""
    from ranker.authority import _ISO_ALPHA2
    from ranker.filters import _iso3166_alpha2

    assert _iso3166_alpha2() == _ISO_ALPHA2 and len(_ISO_ALPHA2) == 249


def test_an_upper_date_bound_at_month_or_year_precision_is_inclusive_in_the_lucene_clause(table, tmp_path):
    """`published_before="2012-06"` keeps a document of 2012-06-15 and `"2012"` one of 2012-12-31: the
    date clause Lucene gets fills the upper bound with 9s (the post-filter never sees what it drops)."""
    import json

    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.options import SearchOptions
    from ranker.pipeline import SearchPipeline

    def dates(**bounds) -> tuple[str, str] | None:
        return table.restriction(SourceFilter(**bounds), positions=False).date_range

    assert dates(published_before="2012-06") == ("00000000", "20120699")
    assert dates(published_after="2012-06", published_before="2012") == ("20120600", "20129999")
    dated = {"may31": "2012-05-31", "jun": "2012-06", "jun15": "2012-06-15", "jul01": "2012-07-01",
             "dec31": "2012-12-31T23:00:00Z", "jan01": "2013-01-01", "year": "2012"}  # fmt: skip
    corpus = tmp_path / "dated.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "title": i, "text": "smoking and lung cancer risk", "published": p}) + "\n"
                              for i, p in dated.items()), encoding="utf-8")  # fmt: skip
    build_index([corpus], tmp_path / "idx", BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False)))
    pipe = SearchPipeline.open(tmp_path / "idx")
    try:
        def ids(**bounds) -> set[str]:
            # The documents differ only in their dates: every copy of the one text is shown.
            (results,) = pipe.batch_search(["smoking"], SearchOptions(mode="bm25", k=50, dedupe_text=False, **bounds))
            return {r.hit.doc_id for r in results}

        assert ids() == set(dated)
        assert ids(published_before="2012-06") == {"may31", "jun", "jun15", "year"}
        assert ids(published_before="2012") == set(dated) - {"jan01"}
        # the year alone meets June 2012 (it may be of June): inside both bounds, as `jun` is
        assert ids(published_after="2012-06", published_before="2012-06") == {"jun", "jun15", "year"}
        assert ids(published_before="2012-06-15") == {"may31", "jun", "jun15", "year"}
    finally:
        pipe.close()


def _as_an_older_build_stored_it(columns_dir, old: dict[str, str]) -> None:
    """Rewrite a build's language table as a build before 639-2/639-3 codes were mapped to 639-1 wrote it
    (a document's "zho" stored as "zho"); the passages' codes into the table stay as they are."""
    path = columns_dir / "languages.json"
    path.write_text(json.dumps([old.get(code, code) for code in json.loads(path.read_text())]), encoding="utf-8")


def test_an_older_builds_three_letter_language_codes_read_as_iso_639_1(tmp_path):
    w = ColumnWriter(tmp_path)
    w.add("https://www.stats.gov.cn/c", None, None, ["cn#0"], "zh")
    w.add("https://www.cdc.gov/b", None, None, ["us#0"], "en")
    w.add("https://www.gov.il/a", None, None, ["il#0"], "he")
    w.close()
    _as_an_older_build_stored_it(tmp_path, {"zh": "zho", "he": "iw"})
    table = SourceTable(Columns(tmp_path), AuthorityList.load())
    assert [table.meta(i).language for i in range(3)] == ["zh", "en", "he"]
    assert _ids(table, languages=("zh",)) == ["cn#0"] and _ids(table, languages=("he",)) == ["il#0"]
    codes = table.restriction(SourceFilter(languages=("zh",)), positions=False).languages
    assert [table.columns.languages[c] for c in codes] == ["zho"]  # the code Lucene indexed for it


def test_an_older_builds_three_letter_language_codes_are_found_by_bm25(tmp_path):
    """Over a real BM25 build, whose Lucene language field holds the table's code: a languages filter finds
    the passages an older build stored as "zho" (before, no filter could ask for them: "zho" is read as zh)."""
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.options import SearchOptions
    from ranker.pipeline import SearchPipeline

    corpus = tmp_path / "docs.jsonl"
    rows = [{"id": "zh1", "text": "harbour tariffs rose", "language": "zh"},
            {"id": "en1", "text": "harbour tariffs fell", "language": "en"}]  # fmt: skip
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False))
    build_index([corpus], tmp_path / "idx", settings)
    _as_an_older_build_stored_it(tmp_path / "idx" / "current" / "columns", {"zh": "zho"})
    pipe = SearchPipeline.open(tmp_path / "idx")
    try:
        found = pipe.search("harbour tariffs", SearchOptions(mode="bm25", languages=["zh"]))
        assert [r.hit.doc_id for r in found] == ["zh1"]
    finally:
        pipe.close()


def test_a_build_from_before_the_passage_columns_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    """Format 2 builds of the first day had no columns/ (the host, date and language filters read them):
    search stops with one line naming the command that rebuilds the index from its recorded corpus."""
    from indexer.build import build_index
    from indexer.errors import IndexFormatError
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.pipeline import SearchPipeline
    from tests.conftest import drsearch

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": "harbour tariffs rose"}) + "\n", encoding="utf-8")
    settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False))
    build_index([corpus], tmp_path / "idx", settings)
    shutil.rmtree(tmp_path / "idx" / "current" / "columns")
    pipe = SearchPipeline.open(tmp_path / "idx")
    try:
        with pytest.raises(IndexFormatError, match="no passage columns") as err:
            pipe.search("harbour")
        assert err.value.message.endswith(f"rebuild it: drsearch index build --corpus {corpus} --out {tmp_path / 'idx'}")
    finally:
        pipe.close()
    proc = drsearch("search", "harbour", "--index", str(tmp_path / "idx"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"--corpus {corpus} --out {tmp_path / 'idx'}" in proc.stderr
