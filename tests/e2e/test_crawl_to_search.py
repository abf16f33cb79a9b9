"""Crawl the fixture web on 127.0.0.1 with the real `drsearch crawl`, index the shards, search them."""

from __future__ import annotations

import json

from ranker.authority import AuthorityList
from tests.conftest import drsearch
from tests.crawler.conftest import TEST_SETTINGS, build_web, page, write_inputs

# A page whose only year is in its title: no date (htmldate's last resort made it 2023-01-01).
TRADE_REPORT = "http://www.centralbank.int/publications"


def test_crawl_index_search(tmp_path):
    web = build_web()
    web.sites["www.centralbank.int"]["/publications"] = page("world trade report 2023")
    # /slow only times out (three 2 s attempts that held the crawl up); test_crawl checks a crawl with it
    del web.sites["www.centralbank.int"]["/slow"]
    web.start()
    try:
        domains, hosts = write_inputs(tmp_path, web)
        settings = [arg for k, v in TEST_SETTINGS.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
        crawl = drsearch("crawl", "--out", tmp_path / "crawl", "--domains", domains, "--host-map", hosts,
                         "--allow-private", "--quiet", *settings, timeout=120)  # fmt: skip
        assert crawl.returncode == 0, crawl.stderr[-2000:]
    finally:
        web.stop()
    assert ("evil.example.com", "/x") not in web.requested()

    drsearch("index", "build", "--corpus", tmp_path / "crawl", "--out", tmp_path / "idx", "--no-dense", "-q", check=True)
    out = drsearch("search", "vaccination guidance", "--index", tmp_path / "idx", "-k", "3", "--json", check=True)
    top = json.loads(out.stdout)["hits"][0]
    assert top["url"] == "http://www.health.gov/guidance"
    assert top["domain"] == "health.gov"  # the crawler records the registrable domain
    expected = AuthorityList.load().lookup("www.health.gov")  # the `gov` suffix rule
    assert expected is not None and top["authority"]["name"] == expected.name
    assert top["authority"]["tier"] == expected.tier
    assert top["published"].startswith("2024-03-05")
    assert "vaccination guidance" in top["snippet"].lower()

    def trade_report_hits(*dates: str) -> list[str]:
        out = drsearch("search", "world trade report", "--index", tmp_path / "idx", "-k", "3", "--json", *dates,
                       check=True)  # fmt: skip
        return [hit["url"] for hit in json.loads(out.stdout)["hits"]]

    in_2023 = ("--published-after", "2023-01-01", "--published-before", "2023-12-31")
    assert trade_report_hits()[0] == TRADE_REPORT
    assert TRADE_REPORT not in trade_report_hits(*in_2023)
    assert trade_report_hits(*in_2023, "--include-undated")[0] == TRADE_REPORT
