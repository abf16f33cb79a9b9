"""`POST /v1/fetch` against a real server: indexed documents (by id and URL, query-focused, capped)
and live fetches from a loopback fixture web (pages, PDF, robots.txt, redirects to private
addresses, slow and huge responses), every outcome per item."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from tests.crawler.fixture_web import PARA, FixtureWeb, Resp, article, gz, minimal_pdf
from tests.service.test_api_errors import assert_error

ARTICLE = [PARA, "Regional employment rose in the north while household income stayed flat in the south.",
           "Consumer prices for energy fell for the third month, the statistics office reports."]  # fmt: skip


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[FixtureWeb, str]]:
    w = FixtureWeb()
    w.site("127.0.0.1", {
        "/robots.txt": Resp(body=b"User-agent: *\nDisallow: /private/\n", ctype="text/plain"),
        "/article": Resp(body=article("Monthly statistics", ARTICLE)),
        "/moved": Resp(301, headers={"Location": "/article"}),
        "/report.pdf": Resp(body=minimal_pdf(["Annual report on consumer prices and wages.", "Prices rose two percent."]),
                            ctype="application/pdf"),
        "/private/page": Resp(body=article("Secret", [PARA])),
        "/to-private": Resp(302, headers={"Location": "http://10.0.0.5/admin"}),
        "/to-metadata": Resp(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
        "/slow": Resp(body=article("Slow", [PARA]), delay=4.0),
        "/huge": Resp(body=article("Huge", [PARA] * 2000)),
        "/heavy": Resp(body=article("Heavy", [f"Paragraph {i}: {PARA}" for i in range(16000)])),  # 2-4 s to extract
        "/logo.png": Resp(body=b"\x89PNG\r\n\x1a\n" + b"0" * 100, ctype="image/png"),
        # The header's charset wins over a stale <meta>, as in browsers.
        "/header-charset": Resp(body=article("Prix à la consommation", ARTICLE).replace(b'"utf-8"', b'"iso-8859-1"')),
        "/served-as-text": Resp(body=article("Monthly statistics", ARTICLE), ctype="text/plain"),
        "/notes.txt": Resp(body=" ".join(ARTICLE).encode(), ctype="text/plain"),
        "/gzipped": Resp(body=gz(article("Packed statistics", ARTICLE)), headers={"Content-Encoding": "gzip"}),
        "/gzip-bomb": Resp(body=gz(bytes(64 << 20)), headers={"Content-Encoding": "gzip"}),  # ~64 KB on the wire
        "/brotli": Resp(body=b"\x0b\x02\x80hi\x03", headers={"Content-Encoding": "br"}),
        **{f"/bad-redirect/{i}": Resp(302, headers={"Location": target}) for i, target in enumerate(BAD_REDIRECTS)},
    })  # fmt: skip
    # A name the tests resolve themselves; robots.txt closes its connection, so the page needs a new one.
    w.site("rebind.test", {
        "/robots.txt": Resp(body=b"User-agent: *\nAllow: /\n", ctype="text/plain", headers={"Connection": "close"}),
        "/article": Resp(body=article("Monthly statistics", ARTICLE)),
        "/to-intranet": Resp(302, headers={"Location": "/article", "Connection": "close"}),
    })  # fmt: skip
    w.start()
    yield w, f"http://127.0.0.1:{w.ports['127.0.0.1']}"
    w.stop()


# Redirect targets no request can be made to: a broken IPv6 literal, a port past 65535, a scheme
# other than http(s), a host label over 63 characters, a punycode label that does not decode.
BAD_REDIRECTS = ["http://[zz/", "http://127.0.0.1:99999/x", "mailto:a@b.c", "http://" + "a" * 300 + ".com/",
                 "http://xn--zz--.com/"]  # fmt: skip


def _fetch(client, *items, status: int = 200):
    r = client.post("/v1/fetch", json={"items": list(items)})
    assert r.status_code == status, r.text
    return r.json()


def test_indexed_document_by_id_and_by_url(agent_client):
    doc = agent_client.get("/v1/documents/cdc-flu").json()
    by_id, by_url = _fetch(agent_client, {"doc_id": "cdc-flu"},
                           {"url": "HTTPS://WWW.cdc.gov/flu/vaccine.html?utm_source=agent#top"})["results"]  # fmt: skip
    for got in (by_id, by_url):
        assert got["ok"] and got["source"] == "index" and got["doc_id"] == "cdc-flu"
        assert got["authority"]["country"] == "us" and got["language"] == "en" and got["omitted"] is None
        assert [p["passage_id"] for p in got["passages"]] == [p["passage_id"] for p in doc["passages"]]
        assert len(got["passages"]) >= 3
        for p in got["passages"]:
            assert doc["text"][p["start"] : p["end"]] == p["text"]


def test_a_cap_below_the_best_passage_cuts_it_rather_than_showing_a_worse_one(agent_client):
    """A focused read whose best passage does not fit `max_chars` whole shows that passage cut at a
    word, never a less relevant passage that happens to be shorter in its place."""
    query = "pregnant people over sixty-five severe complications"
    whole = _fetch(agent_client, {"doc_id": "cdc-flu", "query": query})["results"][0]
    best = whole["passages"][0]
    assert "Pregnant" in best["text"] and best["score"] > whole["passages"][1]["score"]
    assert min(len(p["text"]) for p in whole["passages"]) < len(best["text"])  # a shorter, worse passage would fit
    for max_chars in range(20, len(best["text"]) + 80, 6):
        capped = _fetch(agent_client, {"doc_id": "cdc-flu", "query": query, "max_chars": max_chars})["results"][0]
        first = capped["passages"][0]
        assert first["passage_id"] == best["passage_id"], (max_chars, first["text"])
        assert first["text"].strip("…") in best["text"] and len(capped["text"]) <= max_chars


def test_a_best_passage_cut_to_the_cap_keeps_the_words_the_query_matched(agent_client):
    """The cut keeps the part of the passage where the query's words are (`…` marks each cut end),
    not always its beginning, and `start`/`end` still index the document text of what is shown."""
    doc = agent_client.get("/v1/documents/cdc-flu").json()
    query = "clinics prioritise when vaccine supply is short"
    whole = _fetch(agent_client, {"doc_id": "cdc-flu", "query": query})["results"][0]
    best = whole["passages"][0]
    assert best["text"].startswith("Pregnant") and best["text"].endswith("supply is short.")
    capped = _fetch(agent_client, {"doc_id": "cdc-flu", "query": query, "max_chars": 110})["results"][0]
    first = capped["passages"][0]
    assert first["passage_id"] == best["passage_id"] and len(capped["text"]) <= 110
    assert first["text"].startswith("…") and "supply" in first["text"], first["text"]
    assert doc["text"][first["start"] : first["end"]] == first["text"].strip("…")


@pytest.mark.timeout(60)  # a hang guard only: the cut compared every match with every other (64,000 matches: 94 s)
def test_a_huge_passage_with_many_query_matches_is_cut_in_one_pass():
    """A whole-document build's one passage, or a live page of one paragraph, can be megabytes with a
    query word every few words; the cut finds the densest run of matches in one pass over them."""
    from ranker.focus import Span
    from service.fetch import _cut

    text = "Inflation in the economy rose as the central bank held rates. " * 50_000  # 200,000 matches
    cut = _cut(Span(0, 0, len(text), text, "big-1"), 1500, "inflation economy bank rates")
    assert cut is not None and len(cut.text) <= 1500 and "Inflation" in cut.text
    assert text[cut.start : cut.end] == cut.text.strip("…")


def test_query_focused_passages_come_best_first_within_max_chars(agent_client):
    whole = _fetch(agent_client, {"doc_id": "cdc-flu", "query": "side effects sore arm fever"})["results"][0]
    scores = [p["score"] for p in whole["passages"]]
    assert "sore arm" in whole["passages"][0]["text"] and scores == sorted(scores, reverse=True)
    capped = _fetch(agent_client, {"doc_id": "cdc-flu", "query": "side effects sore arm fever", "max_chars": 200})["results"][0]
    assert len(capped["text"]) <= 200
    assert capped["passages"] and capped["passages"][0]["passage_id"] == whole["passages"][0]["passage_id"]
    assert capped["omitted"]["passages"] == len(whole["passages"]) - len(capped["passages"]) > 0
    assert capped["text"].endswith("left out]") and f"{capped['omitted']['passages']} more passage" in capped["text"]
    tiny = _fetch(agent_client, {"doc_id": "cdc-flu", "max_chars": 90})["results"][0]  # no passage fits: cut at a word
    assert len(tiny["text"]) <= 90 and tiny["passages"][0]["text"].endswith("…")
    # the cut passage is shown (its rest counts in `chars`), not left out
    assert tiny["passages"][0]["ordinal"] == 0 and tiny["omitted"]["passages"] == len(whole["passages"]) - 1
    for max_chars in (1, 10, 47):  # less room than the marker takes: the cap still holds, `omitted` says what is left out
        small = _fetch(agent_client, {"doc_id": "cdc-flu", "max_chars": max_chars})["results"][0]
        assert len(small["text"]) <= max_chars and "left out" not in small["text"], (max_chars, small["text"])
        shown = sum(len(p["text"].removesuffix("…")) for p in small["passages"])
        assert small["omitted"]["chars"] + shown == sum(len(p["text"]) for p in whole["passages"])


def test_live_fetch_outcomes_per_item(agent_client, web):
    w, base = web
    items = ["/article", "/report.pdf", "/private/page", "/to-private", "/to-metadata", "/huge", "/slow", "/logo.png",
             "/missing", "/moved"]  # fmt: skip
    results = _fetch(agent_client, *({"url": base + p} for p in items))["results"]
    got = dict(zip(items, results))
    assert got["/article"]["ok"] and got["/article"]["source"] == "live"
    assert "household income stayed flat" in got["/article"]["text"] and got["/article"]["title"] == "Monthly statistics"
    assert got["/report.pdf"]["ok"] and "Prices rose two percent" in got["/report.pdf"]["text"]
    assert got["/moved"]["ok"] and got["/moved"]["url"].endswith("/article")
    codes = {p: (r["error"] or {}).get("code") for p, r in got.items()}
    assert codes == {"/article": None, "/report.pdf": None, "/moved": None, "/private/page": "blocked_by_robots",
                     "/to-private": "host_not_allowed", "/to-metadata": "host_not_allowed", "/huge": "too_large",
                     "/slow": "timeout", "/logo.png": "not_html_or_pdf", "/missing": "fetch_failed"}  # fmt: skip
    assert "private" in got["/to-private"]["error"]["message"]
    assert w.count("127.0.0.1", "/private/page") == 0  # robots.txt obeyed: never requested
    for r in results:
        assert r["ok"] == (r["error"] is None) and "\n" not in (r["error"] or {}).get("message", "")
        assert r["source"] == "live" and r["domain"] == "127.0.0.1"  # a failed live fetch too


def test_live_fetch_reads_a_page_as_the_crawler_does(agent_client, web):
    """The page's kind from its Content-Type and body, its encoding from the header's charset."""
    from crawler.extract import extract_html, page_kind

    w, base = web
    items = ["/header-charset", "/served-as-text", "/notes.txt"]
    got = dict(zip(items, _fetch(agent_client, *({"url": base + p} for p in items))["results"]))
    assert got["/header-charset"]["title"] == "Prix à la consommation", got["/header-charset"]
    assert got["/served-as-text"]["ok"] and "household income stayed flat" in got["/served-as-text"]["text"]
    assert got["/notes.txt"]["error"]["code"] == "not_html_or_pdf"
    for path, result in got.items():  # the crawler stores the same text, or skips the page
        resp = w.sites["127.0.0.1"][path]
        mime, _, charset = resp.ctype.partition("; charset=")
        kind = page_kind(mime.lower(), resp.body)
        assert (kind is not None) == result["ok"]
        if kind:
            assert extract_html(resp.body, base + path, charset=charset or None).text == result["text"]


def test_live_fetch_is_cached_and_query_focused(agent_client, web):
    w, base = web
    before = w.count("127.0.0.1", "/article")
    first = _fetch(agent_client, {"url": base + "/article?utm_campaign=x", "query": "energy prices fell"})["results"][0]
    again = _fetch(agent_client, {"url": base + "/article", "query": "energy prices fell"})["results"][0]
    assert first["ok"] and again["cached"] and "energy" in again["passages"][0]["text"]
    assert w.count("127.0.0.1", "/article") <= before + 1  # one download at most; the second call was cached


def test_hosts_off_the_list_are_refused(agent_client, web):
    _, base = web
    r = _fetch(agent_client, {"url": base.replace("127.0.0.1", "localhost") + "/article"})["results"][0]
    assert r["error"]["code"] == "host_not_allowed" and "authority list" in r["error"]["message"]


def test_a_name_resolving_to_a_private_address_is_refused():
    from service.fetch_live import FetchFailure, FetchLimits, LiveFetcher

    async def attempt() -> str:
        fetcher = LiveFetcher(FetchLimits(any_host=True), resolve=lambda host: ["10.1.2.3"])
        try:
            await fetcher.fetch("http://intranet.example.org/", lambda host: True)
        except FetchFailure as exc:
            return exc.code
        finally:
            await fetcher.close()
        return "fetched"

    assert asyncio.run(attempt()) == "host_not_allowed"


def _live_outcome(url: str, resolve, *, allow_loopback: bool) -> tuple[str, str]:
    """("ok", title) or (failure code, message) of one live fetch, any host allowed, names resolved by `resolve`."""
    from service.fetch_live import FetchFailure, FetchLimits, LiveFetcher

    async def attempt() -> tuple[str, str]:
        fetcher = LiveFetcher(FetchLimits(any_host=True, allow_loopback=allow_loopback, timeout_s=2.0), resolve=resolve)
        try:
            page, _ = await fetcher.fetch(url, lambda host: True)
            return "ok", page.title
        except FetchFailure as exc:
            return exc.code, exc.message
        finally:
            await fetcher.close()

    return asyncio.run(attempt())


def test_pages_are_extracted_in_the_fetchers_own_bounded_threads(web):
    """Three fetches of a page that takes 2-4 s to extract, one extraction thread, a 0.6 s deadline: all
    three are timeouts, and one thread of the fetcher's own extracts (the loop's default executor would
    have run all three at once)."""
    from service.fetch_live import FetchFailure, FetchLimits, LiveFetcher

    _, base = web

    async def burst() -> tuple[list[object], list[str]]:
        limits = FetchLimits(any_host=True, allow_loopback=True, timeout_s=0.6, extract_threads=1)
        fetcher = LiveFetcher(limits, resolve=lambda host: ["127.0.0.1"])
        before = set(threading.enumerate())  # other servers' fetchers in this process have theirs
        try:
            fetches = [fetcher.fetch(f"{base}/heavy?copy={i}", lambda host: True) for i in range(3)]
            outcomes = await asyncio.gather(*fetches, return_exceptions=True)
            started = [t.name for t in set(threading.enumerate()) - before]
            return outcomes, [name for name in started if name.startswith(("drsearch-", "asyncio_"))]  # not I/O's
        finally:
            await fetcher.close()

    outcomes, started = asyncio.run(burst())
    assert [o.code if isinstance(o, FetchFailure) else o for o in outcomes] == ["timeout"] * 3
    assert [name.rsplit("_", 1)[0] for name in started] == ["drsearch-fetch-extract"]


@pytest.mark.parametrize("which", range(len(BAD_REDIRECTS)))
def test_a_redirect_to_an_unusable_url_is_a_fetch_failure(web, which):
    _, base = web

    def resolve(host: str) -> list[str]:
        host.encode("idna")  # what the system resolver does first (a label over 63 characters fails there)
        return ["127.0.0.1"]

    code, message = _live_outcome(f"{base}/bad-redirect/{which}", resolve, allow_loopback=True)
    assert code == "fetch_failed" and message, message


def test_compressed_bodies_are_capped_as_they_inflate(web):
    """The 5 MiB limit counts decoded bytes as they come: a 64 KB gzip body of 64 MB of zeros is cut
    with a few MB held, not inflated whole first (httpx's decoder did, on the event loop). Only the
    codings the fetcher asks for are decoded."""
    import tracemalloc

    w, base = web
    assert _live_outcome(base + "/gzipped", lambda host: ["127.0.0.1"], allow_loopback=True) == ("ok", "Packed statistics")
    tracemalloc.start()
    try:
        code, message = _live_outcome(base + "/gzip-bomb", lambda host: ["127.0.0.1"], allow_loopback=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == "too_large" and peak < 24 << 20, (code, message, peak)
    code, message = _live_outcome(base + "/brotli", lambda host: ["127.0.0.1"], allow_loopback=True)
    assert code == "fetch_failed" and "content encoding 'br' is not supported" in message


def _answers(*rounds: list[str]):
    """A resolver answering `rounds` in turn (the last one from then on), recording the names asked."""
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return rounds[min(len(asked), len(rounds)) - 1]

    return resolve, asked


def test_connections_go_to_the_checked_address_under_the_original_name(web):
    w, _ = web
    url = f"http://rebind.test:{w.ports['rebind.test']}"
    before = w.count("rebind.test", "/article")
    resolve, asked = _answers(["127.0.0.1"])
    assert _live_outcome(url + "/article", resolve, allow_loopback=True) == ("ok", "Monthly statistics")
    assert asked == ["rebind.test", "rebind.test"]  # one lookup per connection (robots.txt, page), none besides
    assert w.count("rebind.test", "/article") == before + 1  # the server saw the name in the Host header


def test_dns_rebinding_to_a_private_address_is_refused_at_connect(web):
    w, _ = web
    url = f"http://rebind.test:{w.ports['rebind.test']}"
    before = w.count("rebind.test", "/article")
    # Allowed for robots.txt, then rebound: the page's own connection is checked again and refused.
    resolve, asked = _answers(["127.0.0.1"], ["10.0.0.7"])
    code, message = _live_outcome(url + "/article", resolve, allow_loopback=True)
    assert code == "host_not_allowed" and "'rebind.test': 10.0.0.7 is not a public address" in message
    assert "\n" not in message and len(asked) == 2 and w.count("rebind.test", "/article") == before
    # A redirect hop connects anew and passes the same check.
    resolve, asked = _answers(["127.0.0.1"], ["127.0.0.1"], ["10.0.0.8"])
    assert _live_outcome(url + "/to-intranet", resolve, allow_loopback=True)[0] == "host_not_allowed"
    assert len(asked) == 3 and w.count("rebind.test", "/article") == before
    # Loopback not allowed: loopback alone, or next to a public address in one answer, is refused
    # before any connection (one private answer taints the name).
    served = len(w.log)
    for answer in (["93.184.216.34", "127.0.0.1"], ["127.0.0.1"]):
        code, message = _live_outcome(url + "/article", _answers(answer)[0], allow_loopback=False)
        assert code == "host_not_allowed" and "127.0.0.1 is not a public address" in message and "\n" not in message
    assert len(w.log) == served


@pytest.mark.parametrize(
    ("items", "status", "field"),
    [([{"doc_id": "cdc-flu"}, {"doc_id": "no-such-doc"}], 404, "items[1].doc_id"),
     ([{"doc_id": "cdc-flu"}] * 17, 422, "items"), ([], 422, "items"),
     ([{"url": "file:///etc/passwd"}], 422, "items[0].url"), ([{"url": "ftp://example.org/x"}], 422, "items[0].url"),
     ([{"url": "http://"}], 422, "items[0].url"), ([{"url": "http://example.org:99999/"}], 422, "items[0].url"),
     # hosts the HTTP client cannot encode: they failed mid-fetch as a 500 that lost the whole batch
     ([{"doc_id": "cdc-flu"}, {"url": "http://\uff57\uff57\uff57.cdc.gov/"}], 422, "items[1].url"),
     ([{"url": "http://[::1]x/"}], 422, "items[0].url"), ([{"url": "http://999.1.1.1/"}], 422, "items[0].url"),
     # hosts no resolver takes: they were fetched, and failed as "not on the authority list"
     ([{"url": "http://a b.gov/"}], 422, "items[0].url"), ([{"url": "http://-/"}], 422, "items[0].url"),
     ([{"url": "http://cdc..gov/"}], 422, "items[0].url"), ([{"url": "http://xn--a.gov/"}], 422, "items[0].url"),
     ([{"doc_id": "cdc-flu", "max_chars": -1}], 422, "items[0].max_chars"),
     ([{"doc_id": "cdc-flu", "url": "https://www.cdc.gov/"}], 422, "items[0]"), ([{}], 422, "items[0]"),
     ([{"doc_id": "cdc-flu", "query": "  "}], 400, "items[0].query"), ([{"doc_id": "cdc-flu", "query": ""}], 400, "items[0].query"),
     ([{"doc_id": "cdc-flu"}, {"doc_id": "cdc-flu", "query": "the of"}], 400, "items[1].query")],  # stopwords: as /v1/search
)  # fmt: skip
def test_bad_fetch_input_names_the_field(agent_client, items, status, field):
    assert_error(agent_client.post("/v1/fetch", json={"items": items}), status, None, field)


def test_cli_fetch(agent_root):
    import json

    from tests.conftest import drsearch

    proc = drsearch("fetch", "cdc-flu", "https://www.nih.gov/vaccines/testing", "--index", agent_root,
                    "--query", "side effects sore arm", "--max-chars", "200", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)
    assert answer["request_id"] == "cli"  # not "mcp": the command shares the MCP tools' code only
    first, second = answer["results"]
    assert first["doc_id"] == "cdc-flu" and "sore arm" in first["passages"][0]["text"] and len(first["text"]) <= 200
    assert second["doc_id"] == "nih-vaccines" and second["source"] == "index"
    bad = drsearch("fetch", "file:///etc/passwd", "--index", agent_root)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "items[0].url" in bad.stderr
    assert "drsearch: error:" in bad.stderr


def test_a_document_whose_id_is_a_url_is_opened_from_the_index(tmp_path):
    """Ids may be URLs (a crawl's are not, a user's corpus's may be): such a target is the indexed document,
    not a live fetch refused as off the authority list."""
    import json

    from tests.conftest import drsearch
    from tests.service.conftest import build_tiny_index

    url_id = "https://www.example.org/reports/lava"
    root = build_tiny_index(tmp_path / "index", [{"id": url_id, "title": "Lava", "text": "Lava flows from a volcano."}], dense=False)
    proc = drsearch("fetch", url_id, "--index", root, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result,) = json.loads(proc.stdout)["results"]
    assert result["doc_id"] == url_id and result["source"] == "index" and "volcano" in result["text"]


def test_fetch_query_cap_is_the_servers_setting(tiny_bm25_root):
    """`/v1/fetch` caps its `query` by the server's max_query_chars, as `/v1/search` does, not by a number of its own."""
    from tests.service.conftest import start_server

    srv = start_server(index=tiny_bm25_root, threads=2, max_query_chars=20_000)
    long_query = ("lava volcano " * 2000)[:15_000]
    try:
        with srv.client() as c:
            assert c.post("/v1/search", json={"query": long_query, "k": 1}).status_code == 200
            r = c.post("/v1/fetch", json={"items": [{"doc_id": "volcano", "query": long_query, "max_chars": 500}]})
            assert r.status_code == 200, r.text
            too_long = long_query + "x" * 5_001
            search = assert_error(c.post("/v1/search", json={"query": too_long}), 400, "invalid_query", "query")
            fetch = assert_error(c.post("/v1/fetch", json={"items": [{"doc_id": "volcano", "query": too_long}]}),
                                 400, "invalid_query", "items[0].query")  # fmt: skip
            assert fetch["message"] == search["message"] == "query is longer than 20000 characters (20001)"
    finally:
        srv.stop()


def test_a_capped_focused_read_leaves_out_passages_the_query_does_not_reach():
    """Best-first filling took any passage that fit the room left, the ones scoring 0 (no query word,
    no similarity) too: an unrelated paragraph followed the relevant one as if it went on."""
    from ranker.focus import Span
    from service.fetch import select

    spans = [Span(n, 100 * n, 100 * n + 40, f"passage {n} " + "x" * 30, f"d#{n}") for n in range(6)]
    ranked = [(spans[4], 1.0), (spans[1], 0.4), (spans[0], 0.0), (spans[2], 0.0), (spans[3], 0.0), (spans[5], 0.0)]
    kept, omitted = select(ranked, 200, in_order=False, query="passage", reached=frozenset({4, 1}))
    assert [s.ordinal for s, _ in kept] == [4, 1]
    assert omitted.passages == 4 and omitted.chars == 4 * 40 and omitted.next_passage_id is None
    # a normalised 0 is no sign: the least matching of passages that all hold a query word scores 0 too
    kept, _ = select(ranked, 200, in_order=False, query="passage", reached=frozenset({4, 1, 0}))
    assert [s.ordinal for s, _ in kept] == [4, 1, 0]


def test_passages_apart_in_the_document_are_marked_apart(agent_client):
    """Two passages shown best first were joined by a blank line alone, read as one running text."""
    from service.fetch import GAP

    whole = _fetch(agent_client, {"doc_id": "cdc-flu", "query": "side effects sore arm fever"})["results"][0]
    shown = whole["passages"]
    assert len(shown) >= 3 and shown[1]["ordinal"] != shown[0]["ordinal"] + 1
    assert whole["text"].startswith(shown[0]["text"] + GAP + shown[1]["text"])
    for a, b in zip(shown, shown[1:]):
        sep = "\n\n" if b["ordinal"] == a["ordinal"] + 1 else GAP
        assert f"{a['text']}{sep}{b['text']}" in whole["text"]
    for max_chars in range(150, len(whole["text"]) + 1, 7):  # the markers count within the cap
        capped = _fetch(agent_client, {"doc_id": "cdc-flu", "query": "side effects sore arm fever", "max_chars": max_chars})
        assert len(capped["results"][0]["text"]) <= max_chars


def test_a_long_document_is_read_on_from_a_passage(agent_client):
    """An agent could read a capped document's first passages only; `passage_id` reads on from a hit's
    passage, and `omitted.next_passage_id` says where the next page starts."""
    doc = agent_client.get("/v1/documents/cdc-flu").json()
    ids = [p["passage_id"] for p in doc["passages"]]
    cap = max(p["end"] - p["start"] for p in doc["passages"]) + 150  # every passage fits whole, with the marker
    read, pid = [], ids[1]
    for _ in range(len(ids)):  # bounded: one passage a page at least
        got = _fetch(agent_client, {"passage_id": pid, "max_chars": cap})["results"][0]
        assert got["ok"] and got["doc_id"] == "cdc-flu" and len(got["text"]) <= cap
        read += [p for p in got["passages"]]
        if got["omitted"] is None:
            break
        pid = got["omitted"]["next_passage_id"]
        assert f"read on with passage_id={pid}" in got["text"]
    assert [p["passage_id"] for p in read] == ids[1:]
    assert all(doc["text"][p["start"] : p["end"]] == p["text"] for p in read)  # each whole, none cut
    whole = _fetch(agent_client, {"passage_id": ids[0]})["results"][0]
    assert whole["text"] == _fetch(agent_client, {"doc_id": "cdc-flu"})["results"][0]["text"] and whole["omitted"] is None
    assert_error(agent_client.post("/v1/fetch", json={"items": [{"passage_id": "cdc-flu#99"}]}), 404, None, "items[0].passage_id")
    assert_error(agent_client.post("/v1/fetch", json={"items": [{"passage_id": ids[0], "query": "fever"}]}), 422, None, "items[0]")
    assert_error(agent_client.post("/v1/fetch", json={"items": [{"passage_id": ids[0], "doc_id": "cdc-flu"}]}), 422, None, "items[0]")


def test_a_query_no_passage_matches_reads_the_document_from_its_start(tmp_path):
    """With no passage the query reaches (a lexical index, no query word in the document), a capped
    focused read gave two arbitrary passages; it reads the document in order, as without a query."""
    import json

    from tests.conftest import drsearch
    from tests.service.conftest import agent_docs, build_tiny_index

    root = build_tiny_index(tmp_path / "index", agent_docs(), dense=False, chunk_words=40)
    proc = drsearch("fetch", "cdc-flu", "--index", root, "-q", "zebra giraffe", "--max-chars", "300", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)["results"][0]
    ordinals = [p["ordinal"] for p in got["passages"]]
    assert ordinals == list(range(len(ordinals))) and ordinals and got["omitted"]["next_passage_id"] == f"cdc-flu#{len(ordinals)}"
    read_on = drsearch("fetch", "--passage", got["omitted"]["next_passage_id"], "--index", root, "--json")
    assert read_on.returncode == 0, read_on.stderr[-2000:]
    assert json.loads(read_on.stdout)["results"][0]["passages"][0]["ordinal"] == len(ordinals)
    nothing = drsearch("fetch", "--index", root)
    assert nothing.returncode == 2 and nothing.stderr.count("\n") == 1 and "--passage" in nothing.stderr
