"""Search options for agents, against a real server: paging, output budgets, time_range with a pinned
`now`, country and language filters, undated documents."""

from __future__ import annotations

import pytest

from tests.service.test_api_errors import assert_error
from tests.service.test_cli import assert_one_line_error
from tests.text_fixtures import AGENT_NOW

Q = "vaccine vaccination influenza earnings wages Reallöhne"


def _search(client, **body):
    r = client.post("/v1/search", json={"mode": "bm25", **body})
    assert r.status_code == 200, r.text
    return r.json()


def _docs(payload, i: int = 0) -> list[str]:
    return [h["doc_id"] for h in payload["results"][i]["hits"]]


def test_page_two_is_ranks_k_plus_one_to_2k_of_the_same_ranking(agent_client):
    whole = _search(agent_client, query=Q, k=6)["results"][0]["hits"]
    assert len(whole) == 6
    page1 = _search(agent_client, query=Q, k=3)["results"][0]["hits"]
    page2 = _search(agent_client, query=Q, k=3, offset=3)["results"][0]["hits"]
    assert [h["passage_id"] for h in page1 + page2] == [h["passage_id"] for h in whole]
    assert [h["rank"] for h in page2] == [4, 5, 6]


def test_offset_beyond_the_candidates_is_a_400_naming_offset(agent_client):
    r = agent_client.post("/v1/search", json={"query": "sicilian chess opening", "mode": "bm25", "offset": 500})
    assert "offset" in assert_error(r, 400, "invalid_query", "offset")["message"]


def _is_word_prefix(trimmed: str, full: str) -> bool:
    body = trimmed.removesuffix("…")
    return full.startswith(body) and (len(body) == len(full) or full[len(body)] == " ")


def test_max_chars_per_hit_trims_snippets_and_texts_at_whole_words(agent_client):
    full = _search(agent_client, query=Q, k=5, return_text=True, snippet_chars=2000)
    cut = _search(agent_client, query=Q, k=5, return_text=True, snippet_chars=2000, max_chars_per_hit=60)
    assert _docs(full) == _docs(cut)
    assert cut["budget"]["dropped_hits"] == 0
    for a, b in zip(full["results"][0]["hits"], cut["results"][0]["hits"]):
        for key in ("snippet", "text"):
            assert len(b[key]) <= 60 and _is_word_prefix(b[key], a[key]), (key, b[key])
    assert any(b["text"].endswith("…") for b in cut["results"][0]["hits"])


def test_max_total_chars_is_shared_round_robin_across_queries(agent_client):
    queries = [Q, "tides moon gravity sea"]
    full = _search(agent_client, queries=queries, k=5)
    cut = _search(agent_client, queries=queries, k=5, max_total_chars=300)
    used = sum(len(h["snippet"]) for r in cut["results"] for h in r["hits"])
    assert used <= 300 and cut["budget"]["used_chars"] == used
    assert cut["budget"]["dropped_hits"] > 0
    for i in range(2):  # every query keeps its best hit, in the same order as without a budget
        assert _docs(cut, i) and _docs(cut, i) == _docs(full, i)[: len(_docs(cut, i))]


@pytest.mark.parametrize(
    ("time_range", "expected"),
    [("day", set()), ("week", {"cdc-flu"}), ("month", {"cdc-flu", "ons-wages"}),
     ("year", {"cdc-flu", "ons-wages", "destatis-wages"})],
)  # fmt: skip
def test_time_range_is_relative_to_a_pinned_now(agent_client, time_range, expected):
    got = _search(agent_client, query=Q, k=20, time_range=time_range, now=AGENT_NOW)
    assert set(_docs(got)) == expected
    assert got["results"][0]["undated_dropped"] >= 2  # nih-vaccines and the tiny 'vaccine' document


def test_include_undated_keeps_documents_without_a_date(agent_client):
    later = "2027-06-30T00:00:00+02:00"  # a year later nothing dated is within a week
    assert _docs(_search(agent_client, query=Q, k=20, time_range="week", now=later)) == []
    got = _search(agent_client, query=Q, k=20, time_range="week", now=later, include_undated=True)
    assert {"nih-vaccines", "vaccine"} <= set(_docs(got))
    assert got["results"][0]["undated_dropped"] == 0
    absolute = _search(agent_client, query=Q, k=20, published_after="2026-06", include_undated=True)
    assert {"cdc-flu", "ons-wages", "destatis-wages", "nih-vaccines"} <= set(_docs(absolute))
    assert "who-vaccines-2019" not in _docs(absolute)


@pytest.mark.parametrize(
    ("countries", "expected"),
    [(["gb"], {"ons-wages"}), (["DE", "us"], {"destatis-wages", "cdc-flu", "nih-vaccines"}), (["int"], {"who-vaccines-2019"})],
)  # fmt: skip
def test_countries_come_from_the_authority_list(agent_client, countries, expected):
    assert set(_docs(_search(agent_client, query=Q, k=20, countries=countries))) == expected


def test_languages_come_from_the_document_or_its_text(agent_client):
    # destatis-wages says "deu" and ons-wages "eng" (ISO 639-2): stored, counted and filtered as "de" and "en"
    for languages in (["de"], ["deu"], ["ger"]):
        assert _docs(_search(agent_client, query=Q, k=20, languages=languages)) == ["destatis-wages"]
    assert set(agent_client.get("/v1/index").json()["manifest"]["languages"]) <= {"en", "de"}
    english = set(_docs(_search(agent_client, query=Q, k=20, languages=["en-GB"])))
    # 'vaccine' has no language field: its language is detected from its English text.
    assert english == {"cdc-flu", "ons-wages", "nih-vaccines", "who-vaccines-2019", "vaccine"}


@pytest.mark.parametrize(
    ("extra", "status", "field"),
    [({"languages": ["english!"]}, 400, "languages"), ({"countries": ["usa"]}, 400, "countries"),
     ({"time_range": "decade"}, 422, "time_range"), ({"time_range": "day", "now": "2026-11-30T12:00:00"}, 422, "now"),
     ({"time_range": "day", "now": 1700000000}, 422, "now"), ({"time_range": "day", "now": "1700000000"}, 422, "now"),
     ({"time_range": "day", "now": "0001-01-01T00:00:00+14:00"}, 400, "now"),
     ({"time_range": "year", "now": "9999-12-31T23:59:59-14:00"}, 400, "now"),
     ({"max_total_chars": -5}, 422, "max_total_chars"), ({"max_chars_per_hit": 0}, 422, "max_chars_per_hit"),
     ({"offset": -1}, 422, "offset")],
)  # fmt: skip
def test_bad_agent_options_name_the_field(agent_client, extra, status, field):
    assert_error(agent_client.post("/v1/search", json={"query": Q, **extra}), status, None, field)


def test_cli_search_pages_and_filters_like_the_api(agent_root, agent_client):
    """--time-range/--now, --countries, --languages, --include-undated and --offset build the same options as
    the HTTP request: the CLI's page is the server's page."""
    import json

    from tests.conftest import drsearch

    proc = drsearch("search", Q, "--index", agent_root, "--mode", "bm25", "--json", "-k", "2", "--offset", "1",
                    "--time-range", "year", "--now", AGENT_NOW, "--countries", "us,de", "--languages", "en",
                    "--language", "de", "--include-undated")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = json.loads(proc.stdout)
    body = dict(query=Q, time_range="year", now=AGENT_NOW, countries=["us", "de"], languages=["en", "de"], include_undated=True)
    whole = _search(agent_client, k=3, **body)["results"][0]["hits"]
    page = _search(agent_client, k=2, offset=1, **body)["results"][0]["hits"]
    # within a year of `now`, from the US or Germany, undated kept: not ons-wages (gb) nor the 2019 WHO report
    assert {h["doc_id"] for h in whole} == {"cdc-flu", "destatis-wages", "nih-vaccines"}
    assert [(h["doc_id"], h["rank"]) for h in cli["hits"]] == [(h["doc_id"], h["rank"]) for h in page]
    assert [h["rank"] for h in cli["hits"]] == [2, 3] and [h["doc_id"] for h in cli["hits"]] == [h["doc_id"] for h in whole[1:]]
    beyond = drsearch("search", Q, "--index", agent_root, "--mode", "bm25", "--countries", "gb", "--offset", "5")
    assert_one_line_error(beyond, "offset: offset 5 is beyond the 1 ranked results")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [(["--time-range", "decade"], ["invalid --time-range:", "'year'"]),
     (["--time-range", "day", "--now", "2026-11-30T12:00:00"], ["invalid --now:", "timezone"]),
     (["--countries", "us,usa"], ["invalid --countries:", "'usa'"]), (["--languages", "english!"], ["invalid --languages:"]),
     (["--offset", "-1"], ["--offset"])],
)  # fmt: skip
def test_cli_bad_agent_options_are_one_line_errors(tmp_path, args, fragments):
    from tests.conftest import drsearch

    # Options are checked before the index is opened: no index is needed to reject them.
    assert_one_line_error(drsearch("search", Q, "--index", tmp_path, *args), *fragments)


def test_a_page_scores_as_deep_as_its_own_k_whatever_its_offset():
    """The server asks the pipeline for offset + k hits but scores the legs to the page's own k, so that
    page 40 orders its candidates as page 1 did (tests/ranker/test_candidates.py holds the pipeline to it)."""
    from service.api_models import SearchRequest
    from service.app import _options

    for offset in (0, 30, 300):
        options = _options(SearchRequest(query="tides", k=10, offset=offset), "hybrid", 10)
        assert (options.k, options.page_size, options.mode) == (offset + 10, 10, "hybrid")
