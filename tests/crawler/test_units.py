"""Unit tests: URL canonicalisation, allowlist, address safety, input files, shards, extraction, CLI."""

from __future__ import annotations

import codecs
import gzip
import json
import resource
import signal
from pathlib import Path

import pytest

from crawler.config import DEFAULT_USER_AGENT, load_domains, load_host_map, load_seeds, product_token
from crawler.extract import blank_xml_forbidden_refs, decode_declared, detect_language, extract_html, extract_pdf
from crawler.tag_floods import MAX_TAG_ATTRIBUTES, strip_attribute_floods
from crawler.politeness import retry_after_seconds
from crawler.shards import ShardWriter, iter_shard_records, recover_tmp_shards
from crawler.state import CrawlState
from crawler.urls import (
    AddressRefused,
    Allowlist,
    address_allowed,
    allowed_addresses,
    canonicalize_url,
    connect_addresses,
    doc_id_for,
    literal_ip,
    normalise_domain,
    registrable_domain,
)
from indexer.errors import ConfigError
from tests.crawler.fixture_web import article, minimal_pdf


def refused(host, resolve, **kw) -> bool:
    """Whether `connect_addresses` refuses `host` for where it is or resolves to (a host that does not
    resolve is not refused: it fails later as an ordinary DNS error)."""
    try:
        connect_addresses(host, resolve, **kw)
    except AddressRefused:
        return True
    except OSError:
        return False
    return False


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://WWW.Example.ORG:80/a/b?utm_source=x&b=2&a=1#frag", "http://www.example.org/a/b?a=1&b=2"),
        ("https://example.org:443", "https://example.org/"),
        ("https://example.org:8443/x?gclid=1&fbclid=2&msclkid=3&q=a%20b", "https://example.org:8443/x?q=a%20b"),
        ("https://example.org/a/./b/../c/", "https://example.org/a/c/"),
        ("https://example.org/%7Euser", "https://example.org/~user"),
        ("https://user:pw@BÜCHER.de.:443//a//b?q=a+b&utm_medium=c&x", "https://xn--bcher-kva.de/a/b?q=a%20b&x="),
        ("http://[::1]:8080/a?q=%2B1&_GA=2", "http://[::1]:8080/a?q=%2B1"),  # a literal + stays %2B
        ("https://example.org/a%2fb/", "https://example.org/a%2Fb/"),  # an encoded / is not a path separator
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


def test_a_wildcard_entry_allows_the_domain_and_its_subdomains() -> None:
    assert normalise_domain(" *.Example.ORG ") == "example.org"
    allow = Allowlist(["*.example.org"])
    assert allow.allows_host("example.org") and allow.allows_url("https://www.example.org/a")
    assert not allow.allows_url("https://example.org.evil.com/")


def test_addresses_to_connect_to_come_ipv4_first() -> None:
    assert allowed_addresses(["2606:4700::1111", "93.184.216.34", "2001:4860::8888", "8.8.8.8"]) == [
        "93.184.216.34", "8.8.8.8", "2606:4700::1111", "2001:4860::8888",
    ]  # fmt: skip
    resolve = lambda host: ["2606:4700::1111", "93.184.216.34"]  # noqa: E731
    assert connect_addresses("www.example.org", resolve) == ["93.184.216.34", "2606:4700::1111"]


def test_private_addresses() -> None:
    def no_dns(host: str) -> list[str]:
        raise OSError("no network")

    non_global = (
        "10.0.0.1", "192.168.1.1", "172.16.5.4", "127.0.0.1", "169.254.169.254", "::1", "localhost", "0.0.0.0",
        "100.64.0.1", "100.127.255.254",  # shared address space (CGNAT)
        "198.18.0.1", "192.0.2.1", "240.0.0.1", "255.255.255.255", "224.0.0.1", "fc00::1", "fe80::1",
        "::ffff:10.0.0.1", "2001:db8::1", "::127.0.0.1", "::a00:1",  # IPv4-compatible IPv6 (deprecated, reserved)
        "2002:7f00:1::", "2002:a00:1::1",  # 6to4 wrapping 127.0.0.1 and 10.0.0.1
    )  # fmt: skip
    for host in non_global:
        assert refused(host, no_dns), host
    assert not refused("8.8.8.8", no_dns) and not refused("2606:4700::1111", no_dns) and not refused("2002:808:808::", no_dns)
    assert not refused("100.128.0.1", no_dns)  # just past 100.64.0.0/10
    # --allow-private admits loopback only
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert not refused(host, no_dns, allow_loopback=True), host
    for host in ("10.0.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "0.0.0.0"):
        assert refused(host, no_dns, allow_loopback=True), host
    assert refused("lan.example.org", lambda h: ["127.0.0.1", "10.1.2.3"], allow_loopback=True)
    assert refused("intranet.example.org", lambda h: ["93.184.216.34", "10.1.2.3"])
    assert not refused("www.example.org", lambda h: ["93.184.216.34"])
    assert not refused("unresolvable.example.org", no_dns)  # fails later as a DNS error


def test_host_map_targets_are_judged_like_any_address() -> None:
    """What SafetyMiddleware decides for a host-mapped host: its map target, loopback only with --allow-private."""
    for target, loopback_allowed in [("127.0.0.1", True), ("10.0.0.5", False), ("192.168.7.7", False),
                                     ("100.64.1.1", False), ("0.0.0.0", False), ("93.184.216.34", True)]:  # fmt: skip
        ip = literal_ip(target)
        assert address_allowed(ip, allow_loopback=True) is loopback_allowed, target
        assert address_allowed(ip) is (target == "93.184.216.34"), target


def test_robots_product_token() -> None:
    assert product_token(DEFAULT_USER_AGENT) == "drsearch-crawler"
    assert product_token("  mybot/2.1 (+https://x.invalid)") == "mybot" and product_token("plainbot") == "plainbot"
    from crawler.config import CrawlConfig
    from crawler.settings import build_settings

    settings = build_settings(CrawlConfig(out_dir=Path("/nonexistent"), domains=["x.org"], user_agent="mybot/2.1"))
    assert settings["USER_AGENT"] == "mybot/2.1" and settings["ROBOTSTXT_USER_AGENT"] == "mybot"


def test_crawler_settings_are_all_live() -> None:
    """Every setting in crawler/settings.py is Scrapy's or read by the crawler: no dead knobs."""
    import scrapy.settings.default_settings as scrapy_defaults

    import crawler.settings as ours

    source = "".join(p.read_text() for p in Path(ours.__file__).parent.rglob("*.py") if p.name != "settings.py")
    names = [k for k in dir(ours) if k.isupper() and not k.startswith("_")]
    dead = [k for k in names if not hasattr(scrapy_defaults, k) and f'"{k}"' not in source]
    assert dead == []
    assert hasattr(scrapy_defaults, "DOWNLOAD_DELAY_JITTER")  # Scrapy 2.19's name; RANDOMIZE_DOWNLOAD_DELAY is deprecated


def test_page_limit_counts_only_fetched_pages_on_resume(tmp_path: Path) -> None:
    state = CrawlState(tmp_path, resume=False, shard_docs=10, flush_docs=10)
    for url in ("http://www.x.org/", "http://data.x.org/a", "http://www.x.org/robots-forbidden",
                "http://www.x.org/over-limit", "http://www.x.org/in-flight"):  # fmt: skip
        state.mark_seen(url, 1)
    for url in ("http://www.x.org/", "http://data.x.org/a", "http://www.x.org/in-flight"):
        state.mark_fetched(url)
    for url in ("http://www.x.org/", "http://data.x.org/a", "http://www.x.org/robots-forbidden",
                "http://www.x.org/over-limit"):  # fmt: skip
        state.mark_done(url)
    assert state.fetched_per_domain["x.org"] == 3
    state.close()
    resumed = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)
    try:
        # the pages let through, the one in flight at the stop included (it goes again, counted once);
        # not those done without a fetch (robots, over the limit)
        assert resumed.fetched_per_domain["x.org"] == 3
        assert resumed.pending() == [("http://www.x.org/in-flight", 1)]
        resumed.mark_fetched("http://www.x.org/in-flight")
        assert resumed.fetched_per_domain["x.org"] == 3
    finally:
        resumed.close()


def test_a_half_written_frontier_record_does_not_swallow_the_next_one(tmp_path: Path) -> None:
    """A crawl stopped on a full disk can leave the frontier log's last record half written, without its
    newline; the next run's first record must not be appended to it (it was lost, unreadable with it)."""
    state = CrawlState(tmp_path, resume=False, shard_docs=10, flush_docs=10)
    state.mark_seen("http://www.x.org/", 0)
    state.close()
    with open(tmp_path / "job" / "frontier.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"seen": "http://www.x.org/a", "de')
    resumed = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)
    resumed.mark_seen("http://www.x.org/b", 1)
    resumed.close()
    again = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)
    try:
        assert again.pending() == [("http://www.x.org/", 0), ("http://www.x.org/b", 1)]
    finally:
        again.close()


def test_a_killed_runs_counters_are_read_back_from_the_frontier_log(tmp_path: Path) -> None:
    """A killed run writes no report: a resume counts its settled pages' skips, duplicate groups and the
    links skipped on them, and its network counters, from the frontier log, each page once."""
    x = "http://www.x.org"
    killed = CrawlState(tmp_path, resume=False, shard_docs=10, flush_docs=10)
    for path in ("/missing", "/copy", "/quiet", "/in-flight"):
        killed.mark_seen(x + path, 1)
    killed.settle_page("http_status", f"404 {x}/missing", [x + "/missing"])
    killed.settle_page("duplicate", x + "/copy", [x + "/copy", x + "/copy-final"], (x + "/", "h", x + "/copy"))
    killed.skip_link(x + "/quiet", "depth", x + "/deep")
    killed.log_links(x + "/quiet")
    killed.settle_page("noindex", x + "/quiet", [x + "/quiet"])
    killed.skip_link(x + "/in-flight", "offsite", "http://y.org/1")  # parsed, not settled at the kill
    killed.log_links(x + "/in-flight")
    killed.skip("private_address", "https://10.0.0.1/sitemap.xml")  # no page behind it: the next run asks again
    killed.log_net({"downloader/request_count": 7, "downloader/response_bytes": 700,
                    "downloader/response_status_count/200": 6, "downloader/response_status_count/404": 1})
    # killed here: no report, no close

    resumed = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)
    assert resumed.pending() == [(x + "/in-flight", 1)]
    resumed.skip_link(x + "/in-flight", "offsite", "http://y.org/1")  # parsed again, settled this time
    resumed.log_links(x + "/in-flight")
    resumed.settle_page("empty", x + "/in-flight", [x + "/in-flight"])
    report = resumed.report({"downloader/request_count": 2, "downloader/response_status_count/200": 2}, {}, "finished")
    resumed.close()
    assert report["runs"] == 2
    skips = {r: n for r, n in report["skips"].items() if n}
    assert skips == {"http_status": 1, "duplicate": 1, "noindex": 1, "depth": 1, "offsite": 1, "empty": 1}
    assert report["skipped_examples"]["http_status"] == [f"404 {x}/missing"]
    assert report["skipped_examples"]["offsite"] == ["http://y.org/1"]
    assert report["near_duplicate_groups"] == [{"kept": x + "/", "content_hash": "h", "duplicates": [x + "/copy"]}]
    assert (report["requests"], report["bytes"], report["status_codes"]) == (9, 700, {"200": 8, "404": 1})

    again = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)  # the same, from the log alone
    assert again.report({}, {}, "finished")["skips"] == report["skips"]
    again.close()


def test_a_job_dir_of_the_earlier_format_resumes_with_its_counters(tmp_path: Path) -> None:
    """Before the log held the counters, a clean stop wrote them to DIR/job/counters.json: they still count."""
    x = "http://www.x.org"
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "frontier.jsonl").write_text(
        f'{{"seen": "{x}/", "depth": 0}}\n{{"seen": "{x}/copy", "depth": 1}}\n{{"seen": "{x}/next", "depth": 1}}\n'
        f'{{"fetched": "{x}/copy"}}\n{{"done": "{x}/copy"}}\n{{"done": "{x}/"}}\n'
    )
    (tmp_path / "job" / "counters.json").write_text(json.dumps({
        "duration_s": 3.5, "pages_per_domain": {"x.org": 2}, "status_codes": {"200": 2}, "skips": {"duplicate": 1},
        "bytes": 100, "requests": 3, "skipped_examples": {"duplicate": [x + "/copy"]}, "runs": 1,
        "groups": {x + "/": {"content_hash": "h", "duplicates": [x + "/copy"]}},
    }))  # fmt: skip
    state = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)
    assert state.pending() == [(x + "/next", 1)]
    state.settle_page("http_status", f"404 {x}/next", [x + "/next"])
    report = state.report({"downloader/request_count": 1}, {}, "finished")
    state.close()
    assert report["runs"] == 2 and report["requests"] == 4 and report["duration_s"] >= 3.5
    assert report["skips"]["duplicate"] == 1 and report["skips"]["http_status"] == 1
    assert report["near_duplicate_groups"] == [{"kept": x + "/", "content_hash": "h", "duplicates": [x + "/copy"]}]


def test_retry_after() -> None:
    assert retry_after_seconds(b"1", 5, 60) == 1
    assert retry_after_seconds(b"3600", 5, 60) == 60  # capped
    assert retry_after_seconds(None, 5, 60) == 5
    assert retry_after_seconds(b"garbage", 5, 60) == 5
    assert retry_after_seconds(b"Wed, 21 Oct 2015 07:28:00 GMT", 5, 60) == 0  # in the past


def test_retry_middleware_without_the_projects_settings_uses_its_defaults() -> None:
    """Scrapy settings that lack the project's (a caller's own crawler) fall back to crawler/settings.py."""
    from scrapy.settings import Settings

    from crawler import settings as defaults
    from crawler.politeness import PoliteRetryMiddleware

    mw = PoliteRetryMiddleware(Settings())
    assert (mw.backoff_base, mw.backoff_max, mw.retry_after_max, mw.retry_after_default) == (
        defaults.RETRY_BACKOFF_BASE, defaults.RETRY_BACKOFF_MAX, defaults.RETRY_AFTER_MAX, defaults.RETRY_AFTER_DEFAULT)


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
    for long_label in ("a" * 64 + ".com", f"https://{'b' * 70}.org/", "site.org extra words"):  # the crawl's queue folder, named by host, failed
        f.write_text(f"statgov.org\n{long_label}\n")
        with pytest.raises(ConfigError, match="not a domain name: .*labels of 1-63|one domain or URL a line") as e:
            load_domains(f)
        assert e.value.where == f"{f}:2"
    h = tmp_path / "h.txt"
    h.write_text("www.a.org 127.0.0.1:8080\nwww.b.org 127.0.0.1\n")
    with pytest.raises(ConfigError) as e:
        load_host_map(h)
    assert e.value.where == f"{h}:2"
    h.write_text("www.a.org 127.0.0.1:8080\n")
    assert load_host_map(h) == {"www.a.org": ("127.0.0.1", 8080)}
    h.write_text("www.a.org localhost:8080\n")  # the target is connected to as given: an address, checked
    with pytest.raises(ConfigError, match="IP address"):
        load_host_map(h)
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


def test_options_the_report_records_cannot_be_overridden(tmp_path: Path) -> None:
    from crawler.run import make_config

    d = tmp_path / "d.txt"
    d.write_text("statgov.org\n")
    for key, flag in [("USER_AGENT", "--user-agent"), ("ROBOTSTXT_USER_AGENT", "--user-agent"),
                      ("DRSEARCH_ALLOW_PRIVATE", "--allow-private"), ("JOBDIR", "--out")]:  # fmt: skip
        with pytest.raises(ConfigError, match=f"set by {flag}"):
            make_config(tmp_path / "out", domains_file=d, settings=[f"{key}=x"])
    with pytest.raises(ConfigError, match="--max-pages-per-domain must be >= 1"):
        make_config(tmp_path / "out", domains_file=d, max_pages_per_domain=0)
    assert make_config(tmp_path / "out", domains_file=d, settings=["DOWNLOAD_DELAY=0.5"]).settings == {
        "DOWNLOAD_DELAY": 0.5
    }


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


def test_a_flush_that_fails_part_way_leaves_each_document_once(tmp_path: Path) -> None:
    """A flush cut short by the file system (here the file-size limit, as a disk that fills up) leaves nothing
    of its member: the next flush writes those documents again, and each is in the shard once. A crawl whose
    disk filled and then had room again stored pages two to six times, and its index build then failed."""
    done: list[str] = []
    w = ShardWriter(tmp_path, shard_docs=100, flush_docs=2, on_flushed=done.extend)
    w.add({"id": "0", "text": "x"}, ["u0"])
    w.add({"id": "1", "text": "y"}, ["u1"])
    room = next(tmp_path.glob("*.tmp")).stat().st_size + 10  # a part of the next member fits, not all of it
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, a write fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
    try:
        w.add({"id": "2", "text": "a longer text " * 20}, ["u2"])
        with pytest.raises(OSError):
            w.add({"id": "3", "text": "z"}, ["u3"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert done == ["u0", "u1"]
    w.add({"id": "4", "text": "w"}, ["u4"])  # room again: the failed documents go out with this one
    w.close()
    assert [r["id"] for r in iter_shard_records(tmp_path)] == ["0", "1", "2", "3", "4"]
    assert done == ["u0", "u1", "u2", "u3", "u4"]


def test_extract_html_paragraphs_and_pdf() -> None:
    html = article("Title", ["First paragraph " * 10, "Second paragraph " * 10], links=["/x"])
    ex = extract_html(html, "http://www.example.org/a")
    assert ex.title == "Title" and ex.language == "en"
    assert ex.text.split("\n\n")[-2:] == [("First paragraph " * 10).strip(), ("Second paragraph " * 10).strip()]
    assert extract_html(b"", None).text == "" and extract_html(b"\x00\xff<<<", None).text == ""
    pdf = extract_pdf(minimal_pdf(["Line one.", "Line two."]))
    assert pdf.text == "Line one. Line two." and pdf.title == "Annual Report 2023"
    assert extract_pdf(b"%PDF-1.4 garbage").text == ""


@pytest.mark.parametrize(
    "ref", ["&#1;", "&#x1;", "&#8", "&#X8;", "&#0;", "&#x1F;", "&#xFFFF;", "&#65534;", "&#xD800;", "&#57343;",
            "&#x110000;", "&#0000001;", "&#99999999999;"],
)  # fmt: skip
def test_a_reference_to_a_character_xml_forbids_is_a_space(ref: str) -> None:
    first, second = ("First paragraph " * 10).strip(), ("Second paragraph " * 10).strip()
    for charset in ("utf-8", None):  # the decoded page, or the bytes trafilatura decodes itself
        html = article("Title", [f"{first} a{ref}b caf&#233;&#x2019;", second]).replace(b'<meta charset="utf-8">', b"")
        text = extract_html(html, "http://www.example.org/a", charset=charset).text
        assert f"{first} a b caf\u00e9\u2019" in text and second in text


def test_references_to_characters_xml_allows_are_left_alone() -> None:
    allowed = "&#9;&#10;&#13;&#32;&#x7F;&#x80;&#xD7FF;&#xE000;&#xFFFD;&#x10000;&#x10FFFF;&#0233;&#x2019&amp;#1;"
    assert blank_xml_forbidden_refs(allowed) == allowed
    assert blank_xml_forbidden_refs(allowed.encode()) == allowed.encode()
    assert blank_xml_forbidden_refs("a&#1;b&#x0;c&#xdfff") == "a b c "


@pytest.mark.parametrize("first", ["", 'title=">" ', "title = '<b>' ", 'data-x="a<b>c" ', "<b ", "don't=\">\" "])
def test_a_tag_flooded_with_attributes_is_read_as_the_parser_reads_it(first: str) -> None:
    """A tag ends at its first `>` outside a quoted value (quoted only after `=`); a `<` does not end it."""
    flood = first + " ".join(f"a{i}=1" for i in range(MAX_TAG_ATTRIBUTES * 4))
    page = f'<p>Before.</p><p {flood}>Flooded text.</p><img alt="x > y" src="/a.png"><p>After.</p>'
    bare = '<p>Before.</p><p>Flooded text.</p><img alt="x > y" src="/a.png"><p>After.</p>'
    assert strip_attribute_floods(page) == (bare, 1)
    assert strip_attribute_floods(page.encode()) == (bare.encode(), 1)
    few = page.replace(flood, first + " ".join(f"a{i}={'x' * 20}" for i in range(MAX_TAG_ATTRIBUTES - 2)))
    assert strip_attribute_floods(few) == (few, 0)  # long, but no more attributes than allowed


@pytest.mark.parametrize("encoding,bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                          ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-16-le", b"")])  # fmt: skip
def test_a_flooded_tag_in_utf_16_or_32_is_found(encoding: str, bom: bytes) -> None:
    flood = " ".join(f"a{i}=1" for i in range(MAX_TAG_ATTRIBUTES * 4))
    page = bom + f"<p>Before.</p><p {flood}>Flooded text.</p>".encode(encoding)
    stripped, n = strip_attribute_floods(page, None if bom else encoding)  # no BOM: the header's charset
    assert n == 1 and stripped == bom + "<p>Before.</p><p>Flooded text.</p>".encode(encoding)


@pytest.mark.parametrize("holder", ["<!-- {} -->", "<title>{}</title>", "<script>var s = '{}';</script>",
                                    "<TEXTAREA>{}</textarea >", "<plaintext>{}"])  # fmt: skip
def test_what_looks_like_a_flooded_tag_in_a_comment_or_raw_text_is_left_alone(holder: str) -> None:
    flood = "<p " + " ".join(f"a{i}=1" for i in range(MAX_TAG_ATTRIBUTES * 4)) + ">"
    page = holder.format(flood) + "<p>After.</p>"
    assert strip_attribute_floods(page) == (page, 0)
    then = page + flood  # after it, a real tag (after <plaintext>, text to the end)
    assert strip_attribute_floods(then) == ((then, 0) if holder.startswith("<plaintext>") else (page + "<p>", 1))


def test_pages_decode_in_the_encoding_they_declare() -> None:
    text = "<html><head><meta charset=windows-1252></head><body>\u00e9t\u00e9 \u20ac</body></html>"
    assert decode_declared(text.encode("cp1252")) == text  # <meta>
    assert decode_declared(text.encode("utf-8"), "utf-8") == text  # the header before the <meta>
    assert decode_declared(b"\xef\xbb\xbf" + text.encode("utf-8"), "latin-1") == text  # a byte order mark first
    assert decode_declared(b"<html>\xe9t\xe9</html>") is None  # nothing declared: left to trafilatura
    assert decode_declared(b"<html>\xe9t\xe9</html>", "utf-8") is None  # not valid in it: likewise


def test_www_line_and_www_url_allow_the_same_hosts(tmp_path: Path) -> None:
    """A site's www -> apex redirect stays inside the crawl whichever way the domains file names it."""
    allowed = []
    for entry in ("www.wonly.org", "http://www.wonly.org/"):
        (tmp_path / "d.txt").write_text(f"{entry}\n")
        domains, homes = load_domains(tmp_path / "d.txt")
        assert Allowlist(domains).allows_url("http://wonly.org/report") and "://www.wonly.org/" in homes[0]
        allowed.append(domains)
    assert allowed == [["wonly.org"], ["wonly.org"]]
    (tmp_path / "d.txt").write_text("www.org\n")  # a www. that is the whole name stays
    assert load_domains(tmp_path / "d.txt")[0] == ["www.org"]


def test_set_values_in_range_are_kept(tmp_path: Path) -> None:
    from crawler.run import make_config

    d = tmp_path / "d.txt"
    d.write_text("statgov.org\n")
    values = ["LOG_LEVEL=INFO", "RETRY_HTTP_CODES=[503]", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "DOWNLOAD_DELAY=0",
              "COOKIES_ENABLED=False", "DEPTH_PRIORITY=-1", "DRSEARCH_CRAWL_DELAY_MAX=5"]  # fmt: skip
    assert make_config(tmp_path / "out", domains_file=d, settings=values).settings == {
        "LOG_LEVEL": "INFO", "RETRY_HTTP_CODES": [503], "CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 0,
        "COOKIES_ENABLED": "False", "DEPTH_PRIORITY": -1, "DRSEARCH_CRAWL_DELAY_MAX": 5,
    }  # fmt: skip


def test_page_languages_are_iso_639_1_codes() -> None:
    assert detect_language("Kurz.", b'<html lang="deu"><body>Kurz.</body></html>') == "de"  # too short to detect
    kikuyu = "Mũndũ o wothe aciaragwo arĩ na wĩyathi na agaakorwo na kĩgĩrĩro kĩa ũndũ-mũndũ o ta andũ arĩa angĩ."
    assert detect_language(kikuyu) == "ki"  # py3langid says "kik"


@pytest.mark.parametrize("text, language", [
    ("한국은행 보도자료: 2024년 3월 소비자물가 동향", "ko"), ("日本銀行：金融政策決定会合の結果について", "ja"),
    ("统计局：三月份居民消费价格同比上涨", "zh"), ("ธนาคารแห่งประเทศไทย ประกาศอัตราดอกเบี้ย", "th"),
    ("Τράπεζα της Ελλάδος: Ανακοίνωση", "el"), ("Банк России: ключевая ставка", "ru"),
])  # fmt: skip
def test_a_short_page_in_another_script_is_not_taken_for_its_templates_lang(text, language) -> None:
    """Under 40 characters the page's `<html lang>` decided, and site templates say lang="en" on pages in
    every language; a text's script says more (CJK exactly, others through py3langid)."""
    html = f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{text}</title></head>'
    html += f"<body><article><h1>{text}</h1><p>{text}</p></article></body></html>"
    assert detect_language(text, html.encode()) == language
    assert extract_html(html.encode(), "https://example.org/a").language == language


_SURROGATE_CMAP = b"""/CIDInit /ProcSet findresource begin 12 dict begin begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def /CMapName /Adobe-Identity-UCS def /CMapType 2 def
1 begincodespacerange <00> <FF> endcodespacerange
3 beginbfchar <41> <0041> <42> <D800> <43> <0043> endbfchar
endcmap CMapName currentdict /CMap defineresource pop end end"""


def test_pdf_text_holds_no_lone_surrogate():
    """A ToUnicode CMap may map a code to U+D800 (pypdf decodes with surrogatepass): such text could
    not be hashed or written as UTF-8, and the crawl logged a traceback and lost the page."""
    from crawler.extract import extract_pdf
    from tests.crawler.fixture_web import minimal_pdf

    text = extract_pdf(minimal_pdf(["AAAA B CCCC"], to_unicode=_SURROGATE_CMAP)).text
    assert text == "AAAA \ufffd CCCC" and text.encode("utf-8")


@pytest.mark.parametrize(("info", "title"), [
    (b"42", ""), (b"[1 2 3]", ""),  # an /Info that is no dictionary: the text is kept all the same
    (b"<< /Title << /A 1 >> >>", ""), (b"<< /Title /Some#20Name >>", ""), (b"<< /Title 42 >>", ""),
    (b"<< /Title 99 0 R >>", ""),  # a reference to nothing
    (b"<< /Title (Line one\\nLine two\\r\\n\\tthree\\tfour) >>", "Line one Line two three four"),
    (b"<< /Title (" + b"T" * 20_000 + b") >>", "T" * 500),
    # a word processor's file name: its words would go into every passage
    (b"<< /Title (Microsoft Word - FINAL Annual Report 2023.docx) >>", "FINAL Annual Report 2023"),
    (b"<< /Title (Microsoft PowerPoint - slides.pptx) >>", "slides"), (b"<< /Title (report.pdf) >>", "report"),
])  # fmt: skip
def test_a_pdf_title_is_text_on_one_line_or_nothing(info, title):
    from crawler.extract import extract_pdf
    from tests.crawler.fixture_web import minimal_pdf

    ex = extract_pdf(minimal_pdf(["Prices rose two percent."], info=info))
    assert (ex.title, ex.text) == (title, "Prices rose two percent.")


def test_pdf_reading_is_bounded_by_what_its_pages_hold(monkeypatch):
    """2,000 pages may show one shared stream, and one page may hold megabytes of operators (pypdf reads
    them in about quadratic time): reading stops at the text cap, skips a page over the content cap and
    reads no page past the deadline, keeping what it read."""
    import time

    from crawler import extract
    from tests.crawler.fixture_web import minimal_pdf

    line = "The quick brown fox jumps over the lazy dog"
    shared = minimal_pdf([line] * 20, pages=2000)  # ~900 characters a page, 1.8 M in all
    monkeypatch.setattr(extract, "MAX_PDF_TEXT_CHARS", 10_000)
    text = extract.extract_pdf(shared).text
    assert 10_000 <= len(text) < 10_100 and text.startswith(line)
    monkeypatch.setattr(extract, "MAX_PDF_PAGE_BYTES", 500)  # each page's stream is ~1 KB
    assert extract.extract_pdf(minimal_pdf([line] * 20, pages=3)).text == ""
    assert extract.extract_pdf(minimal_pdf([line] * 5, pages=3)).text.count(line) == 15
    assert extract.extract_pdf(shared, deadline=time.monotonic()).text == ""


def test_a_duplicate_naming_a_page_by_canonical_leaves_that_page_to_its_own_record(tmp_path: Path) -> None:
    """A print page whose rel=canonical names a page stored but not yet flushed is a duplicate; the named page
    is done when its own record's shard is flushed, not by the print page's drop: a crawl killed before that
    flush fetches it again on --resume (it was marked done, and lost: neither stored nor asked for again)."""
    from types import SimpleNamespace

    from scrapy.exceptions import DropItem

    from crawler.items import PageItem
    from crawler.pipelines import UrlDedupePipeline

    original, printed = "http://www.x.org/report", "http://www.x.org/report-print"
    state = CrawlState(tmp_path, resume=False, shard_docs=10, flush_docs=10)
    for url in (original, printed):
        state.mark_seen(url, 1)
        state.mark_fetched(url)
    state.register_stored(original, "hash", "near", "x.org")
    state.writer.add({"url": original}, [original])  # in the writer's buffer: flushed at 10 documents
    stage = UrlDedupePipeline(SimpleNamespace(spider=SimpleNamespace(crawl_state=state)))  # a crawler's part
    page = PageItem(url=original, fetched_url=printed, request_urls=[printed, original], status=200,
                    content_type="text/html", body=b"<p>report</p>", depth=1, fetched_at="", domain="x.org")  # fmt: skip
    with pytest.raises(DropItem, match="duplicate"):
        stage.process_item(page)
    assert state.done == {printed}
    # killed here: the buffered record is lost, and the page it was for goes again
    resumed = CrawlState(tmp_path, resume=True, shard_docs=10, flush_docs=10)
    try:
        assert resumed.pending() == [(original, 1)]
    finally:
        resumed.close()


class _ComparedStr(str):
    """A URL counting how often it is compared with another string."""

    comparisons = 0
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        _ComparedStr.comparisons += 1
        return str.__eq__(self, other)


def test_a_large_duplicate_group_is_kept_without_comparing_each_url_with_the_others(tmp_path: Path) -> None:
    """A soft-404 page on thousands of URLs is one group of thousands of duplicates: each added one was compared
    with every one before it (a list), on the reactor thread while crawling and again when --resume replays the
    log, 7.5 s for 40,000 of them and growing with the square."""
    state = CrawlState(tmp_path, resume=False, shard_docs=10, flush_docs=10)
    x = "http://www.x.org"
    _ComparedStr.comparisons = 0
    for i in range(2000):
        state.add_duplicate(x + "/soft-404", "h", _ComparedStr(f"{x}/calendar/{i}"))
    state.add_duplicate(x + "/soft-404", "h", _ComparedStr(f"{x}/calendar/7"))  # already in the group
    state.close()
    assert _ComparedStr.comparisons < 100
    (group,) = state.report({}, {}, "finished")["near_duplicate_groups"]
    assert len(group["duplicates"]) == 2000
