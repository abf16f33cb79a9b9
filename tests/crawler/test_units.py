"""Unit tests: URL canonicalisation, allowlist, address safety, input files, shards, extraction, CLI."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from crawler.config import load_domains, load_host_map, load_seeds
from crawler.extract import extract_html, extract_pdf
from crawler.middlewares import retry_after_seconds
from crawler.shards import ShardWriter, iter_shard_records, recover_tmp_shards
from crawler.urls import Allowlist, canonicalize_url, doc_id_for, host_is_private, registrable_domain
from indexer.errors import ConfigError
from tests.crawler.fixture_web import article, minimal_pdf


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://WWW.Example.ORG:80/a/b?utm_source=x&b=2&a=1#frag", "http://www.example.org/a/b?a=1&b=2"),
        ("https://example.org:443", "https://example.org/"),
        ("https://example.org:8443/x?gclid=1&fbclid=2&msclkid=3&q=a%20b", "https://example.org:8443/x?q=a%20b"),
        ("https://example.org/a/./b/../c/", "https://example.org/a/c/"),
        ("https://example.org/%7Euser", "https://example.org/~user"),
    ],
)
def test_canonicalize(raw: str, canonical: str) -> None:
    assert canonicalize_url(raw) == canonical
    assert canonicalize_url(canonical) == canonical


def test_doc_id_stable() -> None:
    assert doc_id_for("http://www.example.org/") == doc_id_for(canonicalize_url("HTTP://www.example.org:80/#x"))


def test_allowlist_and_domains() -> None:
    allow = Allowlist(["statgov.org", "http://www.health.gov/"])
    assert allow.allows_url("http://data.statgov.org/x") and allow.allows_url("https://statgov.org/")
    assert not allow.allows_url("http://statgov.org.evil.com/") and not allow.allows_url("http://notstatgov.org/")
    assert not allow.allows_url("ftp://statgov.org/") and allow.allows_url("http://a.www.health.gov/")
    assert registrable_domain("a.b.uni.ac.uk") == "uni.ac.uk" and registrable_domain("10.0.0.1") == "10.0.0.1"


def test_private_addresses() -> None:
    def no_dns(host: str) -> list[str]:
        raise OSError("no network")

    for host in ("10.0.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "::1", "localhost", "0.0.0.0"):
        assert host_is_private(host, no_dns), host
    assert not host_is_private("8.8.8.8", no_dns)
    assert host_is_private("intranet.example.org", lambda h: ["93.184.216.34", "10.1.2.3"])
    assert not host_is_private("www.example.org", lambda h: ["93.184.216.34"])
    assert not host_is_private("unresolvable.example.org", no_dns)  # fails later as a DNS error


def test_retry_after() -> None:
    assert retry_after_seconds(b"1", 5, 60) == 1
    assert retry_after_seconds(b"3600", 5, 60) == 60  # capped
    assert retry_after_seconds(None, 5, 60) == 5
    assert retry_after_seconds(b"garbage", 5, 60) == 5
    assert retry_after_seconds(b"Wed, 21 Oct 2015 07:28:00 GMT", 5, 60) == 0  # in the past


def test_input_files(tmp_path: Path) -> None:
    f = tmp_path / "d.txt"
    f.write_text("# c\nStatGov.org\nhttp://www.health.gov/start  # home\n\n")
    domains, homes = load_domains(f)
    assert domains == ["health.gov", "statgov.org"]
    assert homes == ["https://statgov.org/", "http://www.health.gov/start"]
    f.write_text("statgov.org\nnot a domain/x\n")
    with pytest.raises(ConfigError) as e:
        load_domains(f)
    assert e.value.where == f"{f}:2"
    h = tmp_path / "h.txt"
    h.write_text("www.a.org 127.0.0.1:8080\nwww.b.org 127.0.0.1\n")
    with pytest.raises(ConfigError) as e:
        load_host_map(h)
    assert e.value.where == f"{h}:2"
    h.write_text("www.a.org 127.0.0.1:8080\n")
    assert load_host_map(h) == {"www.a.org": ("127.0.0.1", 8080)}
    with pytest.raises(ConfigError):
        load_host_map(tmp_path / "missing.txt")
    s = tmp_path / "s.txt"
    s.write_text("http://www.a.org/x?utm_source=1\n")
    assert load_seeds(s) == ["http://www.a.org/x"]


def test_cli_bad_input_raises_config_error(tmp_path: Path) -> None:
    from service.cli_crawl import crawl_command

    d = tmp_path / "d.txt"
    d.write_text("statgov.org\n")
    h = tmp_path / "h.txt"
    h.write_text("www.statgov.org\n")
    with pytest.raises(ConfigError) as e:
        crawl_command(out=tmp_path / "out", domains=d, host_map=h)
    assert e.value.where == f"{h}:1"
    with pytest.raises(ConfigError):
        crawl_command(out=tmp_path / "out", domains=tmp_path / "nope.txt")
    with pytest.raises(ConfigError):
        crawl_command(out=tmp_path / "out")  # neither --domains nor --from-authority-list


def test_from_authority_list_crawls_every_explicit_domain(tmp_path: Path) -> None:
    from crawler.run import make_config
    from ranker.authority import AuthorityList

    config = make_config(tmp_path / "out", from_authority_list=True, quiet=True)
    listed = AuthorityList.load()
    assert len(config.domains) >= 600 and len(config.domains) == len(set(config.domains))
    assert set(config.domains) <= {d.lower() for d in listed.explicit_domains}
    assert "imf.org" in config.domains and "ec.europa.eu" in config.domains
    assert all(u.startswith("https://") and u.endswith("/") for u in config.start_urls)
    assert len(config.start_urls) == len(config.domains)
    allow = Allowlist(config.domains)
    assert allow.allows_url("https://www.imf.org/en/Publications") and not allow.allows_url("https://example.com/")
    with pytest.raises(ConfigError, match="only one of"):
        make_config(tmp_path / "out", from_authority_list=True, domains_file=tmp_path / "d.txt")


def test_shards_rotate_and_recover(tmp_path: Path) -> None:
    done: list[str] = []
    w = ShardWriter(tmp_path, shard_docs=3, flush_docs=2, on_flushed=done.extend)
    for i in range(7):
        w.add({"id": str(i), "text": "x"}, [f"u{i}"])
    w.flush()
    # simulate a kill: the open shard stays .tmp and its last member is torn
    tmp = next(tmp_path.glob("*.tmp"))
    with open(tmp, "ab") as fh:
        fh.write(gzip.compress(b'{"id": "torn"}\n')[:10])
    assert sorted(p.name for p in tmp_path.glob("*.jsonl.gz")) == ["part-00000.jsonl.gz", "part-00001.jsonl.gz"]
    recover_tmp_shards(tmp_path)
    assert [r["id"] for r in iter_shard_records(tmp_path)] == [str(i) for i in range(7)]
    assert done == [f"u{i}" for i in range(7)]


def test_extract_html_paragraphs_and_pdf() -> None:
    html = article("Title", ["First paragraph " * 10, "Second paragraph " * 10], links=["/x"])
    ex = extract_html(html, "http://www.example.org/a")
    assert ex.title == "Title" and ex.language == "en"
    assert ex.text.split("\n\n")[-2:] == [("First paragraph " * 10).strip(), ("Second paragraph " * 10).strip()]
    assert extract_html(b"", None).text == "" and extract_html(b"\x00\xff<<<", None).text == ""
    pdf = extract_pdf(minimal_pdf(["Line one.", "Line two."]))
    assert pdf.text == "Line one. Line two." and pdf.title == "Annual Report 2023"
    assert extract_pdf(b"%PDF-1.4 garbage").text == ""
