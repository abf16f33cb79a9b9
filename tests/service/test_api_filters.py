"""Source filters, diversity options and authority over HTTP, against a live server over a small real
index of web documents (listed and unlisted domains, publication dates, two passages per document)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.service.conftest import LiveServer
from tests.service.web_docs import PER_SITE, Q, SITES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def web(web_server: LiveServer) -> Iterator[httpx.Client]:
    with web_server.client() as c:
        assert c.get("/v1/index").json()["manifest"]["counts"]["passages"] == 2 * len(SITES) * PER_SITE
        yield c


def hits(client: httpx.Client, **body) -> list[dict]:
    r = client.post("/v1/search", json={"query": Q, **body})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["hits"]


def host(hit: dict) -> str:
    return urlsplit(hit["url"]).hostname or ""


def site(hit: dict) -> str:
    return next(s for s, pattern, _ in SITES if urlsplit(pattern).hostname == host(hit))


def under(hit: dict, domain: str) -> bool:
    h = host(hit).removeprefix("www.")
    return h == domain or h.endswith("." + domain)


def test_include_domains(web):
    imf = hits(web, include_domains=["imf.org"], k=10)
    assert len(imf) == 10 and all(under(h, "imf.org") for h in imf)
    assert {host(h) for h in imf} == {"www.imf.org", "data.imf.org"}  # subdomains count
    assert hits(web, include_domains=["https://WWW.IMF.org:443/x"], k=10) == imf  # normalised like the matcher
    data = hits(web, include_domains=["data.imf.org"], k=PER_SITE)
    assert len(data) == PER_SITE and {host(h) for h in data} == {"data.imf.org"}
    both = hits(web, include_domains=["nber.org", "ox.ac.uk"], k=16)
    assert len(both) == 16 and {site(h) for h in both} == {"nber.org", "ox.ac.uk"}


def test_exclude_domains(web):
    rest = hits(web, exclude_domains=["imf.org", "https://www.nber.org/"], k=20)
    assert len(rest) == 20
    assert not any(under(h, "imf.org") or under(h, "nber.org") for h in rest)
    no_data = hits(web, exclude_domains=["data.imf.org"], k=40)  # a host excludes itself, not its parent
    assert len(no_data) == 40 and "www.imf.org" in {host(h) for h in no_data}
    assert "data.imf.org" not in {host(h) for h in no_data}


def test_min_tier(web):
    tier1 = hits(web, min_tier=1, k=10)
    assert len(tier1) == 10 and {h["authority"]["tier"] for h in tier1} == {1}
    tier2 = hits(web, min_tier=2, k=30)
    assert len(tier2) == 30 and {h["authority"]["tier"] for h in tier2} == {1, 2}
    assert {site(h) for h in tier2} == {"imf.org", "nber.org", "ox.ac.uk"}


def test_categories(web):
    uni = hits(web, categories=["university"], k=5)
    assert len(uni) == 5 and {site(h) for h in uni} == {"ox.ac.uk"}
    assert all(h["authority"]["category"] == "university" for h in uni)
    two = hits(web, categories=["university", "research_institute"], k=2 * PER_SITE)
    assert len(two) == 2 * PER_SITE and {h["authority"]["category"] for h in two} == {"university", "research_institute"}


def test_published_range(web):
    window = hits(web, published_after="2018", published_before="2019-12", k=10)  # 2 dated documents per site match
    assert len(window) == 10 and all("2018" <= h["published"][:4] <= "2019" for h in window)
    assert {site(h) for h in window} == {"imf.org", "nber.org", "ox.ac.uk", "example.com"}
    latest = hits(web, published_after="2021-08-15", k=10)  # only the last document of each dated site
    assert len(latest) == 5 and all(h["published"] == "2021-08-15" for h in latest)
    assert hits(web, published_before="2013", k=10) == []


def test_max_per_domain(web):
    capped = hits(web, max_per_domain=2, k=10)  # five sites, two each: exactly k
    assert len(capped) == 10 and set(Counter(site(h) for h in capped).values()) == {2}
    one_each = hits(web, max_per_domain=1, k=10)
    assert sorted(site(h) for h in one_each) == sorted({s for s, _, _ in SITES})
    uncapped = hits(web, max_per_domain=1, include_domains=["imf.org"], k=6)  # not applied to named domains
    assert len(uncapped) == 6 and {site(h) for h in uncapped} == {"imf.org"}


def test_per_doc(web):
    default = hits(web, k=20)
    assert len(default) == 20 and len({h["doc_id"] for h in default}) == 20
    all_passages = hits(web, per_doc=0, k=60)  # more than there are documents
    assert len(all_passages) == 60 and max(Counter(h["doc_id"] for h in all_passages).values()) == 2
    two = hits(web, per_doc=2, k=60)
    assert len(two) == 60 and max(Counter(h["doc_id"] for h in two).values()) == 2
    assert all(h["passage_id"].startswith(h["doc_id"] + "#") for h in two)


def test_dedupe_across_queries(web):
    r = web.post("/v1/search", json={"queries": [Q, Q, Q], "k": 5, "per_doc": 0, "dedupe_across_queries": True})
    assert r.status_code == 200, r.text
    lists = [[h["passage_id"] for h in res["hits"]] for res in r.json()["results"]]
    assert [len(ids) for ids in lists] == [5, 5, 5] and len({p for ids in lists for p in ids}) == 15
    assert lists[0] == [h["passage_id"] for h in hits(web, k=5, per_doc=0)]


def test_authority_in_hits(web):
    every = hits(web, k=48)
    assert len(every) == 48
    expected = {urlsplit(pattern).hostname: entry for _, pattern, entry in SITES}
    for h in every:
        entry = expected[host(h)]
        if entry is None:
            assert h["authority"] is None and h["scores"]["authority"] == 0
        else:
            name, category, tier, country = entry
            assert h["authority"] == {"name": name, "category": category, "tier": tier, "country": country}
            assert h["scores"]["authority"] > 0
    by_tier = {h["authority"]["tier"]: h["scores"]["authority"] for h in every if h["authority"]}
    assert by_tier[1] > by_tier[2] > 0  # a bounded prior, larger for tier 1


def test_copies_of_a_text_are_shown_once_unless_asked(tmp_path):
    """Press releases ending with one paragraph: a list shows it once, refilled to k; `dedupe_text:
    false` shows every copy; the cache keys on the option (a repeat answers as asked)."""
    from tests.service.conftest import build_tiny_index, start_server
    from tests.text_fixtures import FUND_QUERY, press_release_docs

    root = build_tiny_index(tmp_path / "index", press_release_docs(), dense=False, chunk_words=40)
    srv = start_server(index=root, threads=1, warmup=False)
    try:
        with srv.client() as c:
            def snippets(**body) -> list[str]:
                r = c.post("/v1/search", json={"query": FUND_QUERY, "k": 6, **body})
                assert r.status_code == 200, r.text
                return [h["snippet"] for h in r.json()["results"][0]["hits"]]

            assert len(snippets()) == 6 and len(set(snippets())) == 6
            assert len(set(snippets(dedupe_text=False))) == 1
            assert len(set(snippets(dedupe_text=False, per_doc=0))) < len(set(snippets(per_doc=0))) == 6
            r = c.post("/v1/search", json={"query": FUND_QUERY, "dedupe_text": "no"})
            assert r.status_code == 422 and "dedupe_text" in r.text
    finally:
        srv.stop()


def test_copies_of_a_text_are_not_returned_again_for_a_later_query(tmp_path):
    """dedupe_across_queries with dedupe_text: a later query whose best copy of a text is another document's
    (its title matches that query) does not show the text again; without dedupe_text, only passages repeat."""
    from tests.service.conftest import build_tiny_index, start_server
    from tests.text_fixtures import press_release_docs

    root = build_tiny_index(tmp_path / "index", press_release_docs(), dense=False, chunk_words=40)
    srv = start_server(index=root, threads=1, warmup=False)
    try:
        with srv.client() as c:
            def texts(**body) -> list[str]:
                queries = ["fund member countries Ghana", "fund member countries Peru"]
                r = c.post("/v1/search", json={"queries": queries, "k": 4, "per_doc": 0, "mode": "bm25",
                                               "return_text": True, "dedupe_across_queries": True, **body})
                assert r.status_code == 200, r.text
                return [" ".join(h["text"].split()) for result in r.json()["results"] for h in result["hits"]]

            assert len(texts()) == 8 and len(set(texts())) == 8
            assert len(set(texts(dedupe_text=False))) < 8
    finally:
        srv.stop()
