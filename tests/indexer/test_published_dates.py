"""`published` values that are not ISO dates: a build refuses them as bad lines (counted with
--skip-bad), and the date filters treat such a value stored by an older build as undated, so it
never falls inside a "published after/before" bound or a time_range."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.conftest import drsearch

NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)  # a "year" time_range from here starts 2023-06-02
TEXT = "smoking and lung cancer risk in adults"
GOOD = {  # doc id -> published
    "old": "2019-06-01",
    "stamp": "2023-05-01T10:00:00Z",  # a full timestamp: filtered on its date
    "month": "2023-11",
    "year": "2024",
    "blank": "  ",  # blanks only: undated, as a missing field
    "none": None,
}
BAD = {
    "words": "yesterday",
    "month13": "2024-13-45",
    "year5": "99999-01-01",
    "feb30": "2023-02-30",
    "slashes": "01/05/2023",
    "badtime": "2023-05-01Tnoon",
}


def _rows(dates: dict[str, str | None]) -> list[dict]:
    return [{"_id": i, "title": i, "text": TEXT, **({"published": p} if p is not None else {})} for i, p in dates.items()]


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _options(**options):
    from ranker.options import SearchOptions

    return SearchOptions(mode="bm25", k=50, dedupe_text=False, **options)  # one text, many dates: every copy shown


def _ids(pipe, undated: list[int] | None = None, **options) -> set[str]:
    (results,) = pipe.batch_search(["smoking"], _options(**options), undated=undated)
    return {r.hit.doc_id for r in results}


DATED_AFTER_2020 = {"stamp", "month", "year"}
IN_THE_YEAR = {"month", "year"}  # published on or after 2023-06-02
UNDATED = {"blank", "none"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The mixed corpus built BM25-only through the CLI with --skip-bad: (root, corpus, build output)."""
    tmp = tmp_path_factory.mktemp("published")
    corpus = tmp / "pub.jsonl"
    _write(corpus, _rows({**GOOD, **BAD}))
    root = tmp / "idx"
    proc = drsearch("index", "build", "--corpus", corpus, "--out", root, "--no-dense", "-q", "--skip-bad", check=True)
    return root, corpus, proc


def test_build_refuses_a_published_that_is_not_an_iso_date(tmp_path):
    corpus = tmp_path / "pub.jsonl"
    _write(corpus, _rows({"ok": "2023-05-01T10:00:00Z", "words": "yesterday"}))
    proc = drsearch("index", "build", "--corpus", corpus, "--out", tmp_path / "idx", "--no-dense", "-q")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{corpus}:2: field 'published'" in proc.stderr and "'yesterday'" in proc.stderr and "--skip-bad" in proc.stderr
    assert not (tmp_path / "idx" / "current").exists()


def test_skip_bad_counts_them_in_the_summary_and_manifest(built):
    root, corpus, proc = built
    assert f"{len(GOOD)} documents" in proc.stdout and f"{len(BAD)} bad" in proc.stdout
    counts = json.loads((root / "current" / "manifest.json").read_text())["counts"]
    assert counts["documents"] == len(GOOD) and counts["skipped_bad"] == len(BAD)
    assert len(counts["bad_lines"]) == len(BAD)
    for n, (i, value) in enumerate(BAD.items(), len(GOOD) + 1):  # the bad rows follow the good ones
        assert any(b.startswith(f"{corpus}:{n}: field 'published' ") and repr(value) in b for b in counts["bad_lines"]), i


def test_date_filters_over_the_build(built):
    from ranker.pipeline import SearchPipeline

    root = built[0]
    pipe = SearchPipeline.open(root)
    try:
        assert _ids(pipe) == set(GOOD)
        assert _ids(pipe, published_after="2020") == DATED_AFTER_2020
        assert _ids(pipe, published_after="2023-05") == DATED_AFTER_2020
        assert _ids(pipe, published_after="2023-05-02") == {"month", "year"}
        assert _ids(pipe, published_before="2023-05-01") == {"old", "stamp"}
        assert _ids(pipe, published_before="2020") == {"old"}
        assert _ids(pipe, time_range="year", now=NOW) == IN_THE_YEAR
        assert _ids(pipe, published_after="2020", include_undated=True) == DATED_AFTER_2020 | UNDATED
        assert _ids(pipe, time_range="year", now=NOW, include_undated=True) == IN_THE_YEAR | UNDATED
        rows = {r.hit.doc_id: r.passage.published for r in pipe.search("smoking", _options())}
        assert rows["stamp"] == "2023-05-01T10:00:00Z" and rows["blank"] is None  # kept as given; blanks: no date
    finally:
        pipe.close()


def test_cli_time_range(built):
    proc = drsearch("search", "smoking", "--index", built[0], "--json", "-k", "50", "--time-range", "year",
                    "--now", NOW.isoformat(), "--no-dedupe-text", check=True)  # fmt: skip
    assert {h["doc_id"] for h in json.loads(proc.stdout)["hits"]} == IN_THE_YEAR


def test_index_built_before_the_check_reads_non_iso_dates_as_undated(tmp_path, monkeypatch):
    """An older build stored any string: with the reader's check switched off (as it was then),
    the bad values reach the store and columns, and every date filter must still treat them as undated."""
    import indexer.readers
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings
    from ranker.pipeline import SearchPipeline

    corpus = tmp_path / "pub.jsonl"
    _write(corpus, _rows({**GOOD, **BAD}))
    monkeypatch.setattr(indexer.readers, "published_problem", lambda value: None)
    build_index([corpus], tmp_path / "idx", BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False)))
    monkeypatch.undo()
    pipe = SearchPipeline.open(tmp_path / "idx")
    try:
        stored = {r.hit.doc_id: r.passage.published for r in pipe.search("smoking", _options())}
        assert stored["words"] == "yesterday" and stored["month13"] == "2024-13-45"  # really stored, as before
        undated = UNDATED | set(BAD)
        counted = [0]
        assert _ids(pipe, counted, published_after="2020") == DATED_AFTER_2020
        assert counted == [len(undated)]  # counted in undated_dropped as undated documents
        assert _ids(pipe, published_before="2020") == {"old"}
        assert _ids(pipe, time_range="year", now=NOW) == IN_THE_YEAR
        assert _ids(pipe, time_range="year", now=NOW, include_undated=True) == IN_THE_YEAR | undated
        assert _ids(pipe, published_after="2020", include_undated=True) == DATED_AFTER_2020 | undated
        assert _ids(pipe, published_before="2020", include_undated=True) == {"old"} | undated
    finally:
        pipe.close()


@pytest.mark.parametrize(("value", "accepted"), [
    ("2016-12-31T23:59:60Z", True),  # a leap second (RFC 3339); Python's time.fromisoformat refused it
    ("2024-12-01t10:00:00z", True),  # lower-case t and z, as RFC 3339 allows and `now` accepts
    ("2024-12-01T10:00:00.123-08:00", True),
    ("2024-12-01T10:00", True),
    ("2024-12-01T100000+0530", True),  # ISO 8601's basic format
    ("2024-03-01T10:00:00+05:30:15", True),  # an offset with seconds, which Python's fromisoformat took
    ("2024-12-01T10:00:00 Z", False),  # time.fromisoformat took these two
    ("2024-12-01T10:00:00.Z", False),
    ("2024-12-01T10:0000", False),  # colons in one part, not in the other
    ("2024-12-01T25:00", False),
    ("2024-12-01T10:00:61", False),
    ("2024-12-01T", False),
])  # fmt: skip
def test_the_time_after_a_dates_t_is_iso_8601(value, accepted):
    from indexer.schema import published_problem

    assert (published_problem(value) is None) is accepted


def test_crawled_dates_off_the_calendar_are_dropped():
    """The crawler's shards are read by the same reader: a page date the reader would refuse is
    left out (the page is indexed undated) instead of making its shard line a bad line."""
    from crawler.page_dates import pdf_date as _pdf_date

    assert _pdf_date("D:20230415120000+02'00'") == "2023-04-15" and _pdf_date("D:2023") == "2023"
    assert _pdf_date("D:20231345") is None and _pdf_date("D:20230230") is None and _pdf_date("garbage") is None
