"""The one host normaliser (`indexer.domains.host_of`) and the shapes derived from it."""

from __future__ import annotations

import pytest

from crawler.urls import Allowlist, url_domain
from indexer.domains import host_of, normalise_host, registrable_domain
from ranker.filters import normalise_domain_list


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("https://WWW.Example.ORG./a?b#c", "www.example.org"),  # www kept: only the site key drops it
        ("example.org:8080/x", "example.org"),
        ("//user:pw@example.org:443", "example.org"),
        ("https://BÜCHER.de/", "xn--bcher-kva.de"),
        ("http://10.0.0.1:8080/", "10.0.0.1"),
        ("http://[2001:DB8::1]:443/x", "2001:db8::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("localhost", "localhost"),
        ("http://[::1]x/", None),  # junk after the bracket
        ("http://[not-an-ip]/", None),
        ("example.org:notaport", None),
        ("http://", None),
        ("not a host", None),
        ("", None),
    ],
)
def test_host_of(raw: str, host: str | None) -> None:
    assert host_of(raw) == host


def test_derived_shapes_agree_with_host_of() -> None:
    """Site key, registrable domain, crawler slot, allowlist and filter values all start from host_of."""
    url = "https://Data.WWW.Stats.Gov.CN.:8443/table?x=1"
    assert host_of(url) == "data.www.stats.gov.cn"
    assert normalise_host(url) == "data.www.stats.gov.cn"  # only a leading www. goes
    assert normalise_host("https://WWW.Stats.Gov.CN/") == "stats.gov.cn"
    assert registrable_domain(host_of(url)) == url_domain(url) == "stats.gov.cn"
    assert Allowlist(["STATS.gov.cn."]).allows_url(url)
    assert normalise_domain_list([url, "www.BÜCHER.de"], "domains") == ("data.www.stats.gov.cn", "xn--bcher-kva.de")
    # IPs: a host for the crawler (its own politeness slot), never a site for authority or filters.
    assert url_domain("http://10.0.0.1:8080/") == "10.0.0.1"
    assert registrable_domain("10.0.0.1") is None and normalise_host("http://10.0.0.1/") is None
