"""The authority list loader, matcher, validator and `drsearch authority` sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from indexer.errors import ConfigError, DrsearchError
from ranker.authority import (
    CATEGORIES,
    AuthorityEntry,
    AuthorityList,
    AuthorityListError,
    default_list_dir,
    normalise_host,
    validate,
)
from service.cli_authority import authority_app

DOMAIN_HEADER = "domain,name,category,country,tier,note"
SUFFIX_HEADER = "suffix,name,category,country,tier,note"

FIXTURE_DOMAINS = """\
example.org,Example Org,government,us,1,
deep.example.org,Deep Example,statistics,us,1,a subdomain with its own category
very.deep.example.org,Very Deep Example,regulator,us,2,
xn--bcher-kva.de,Buecher,library_archive,de,2,IDN stored as punycode
special.ac.uk,Special Institute,research_institute,gb,1,explicit beats the ac.uk rule
"""
FIXTURE_SUFFIXES = """\
uk,Anything in the UK (test only),government,gb,3,
ac.uk,UK academic,university,gb,2,
gov,US government,government,us,1,
"""


def write_list(
    root: Path,
    domains: str = FIXTURE_DOMAINS,
    suffixes: str | None = FIXTURE_SUFFIXES,
    *,
    name: str = "fixture.csv",
    header: str = DOMAIN_HEADER,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(header + "\n" + domains, encoding="utf-8")
    if suffixes is not None:
        (root / "suffix_rules.csv").write_text(SUFFIX_HEADER + "\n" + suffixes, encoding="utf-8")
    return root


@pytest.fixture()
def fixture_list(tmp_path: Path) -> AuthorityList:
    return AuthorityList.load(write_list(tmp_path / "list"))


# --------------------------------------------------------------------------- normalise_host


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.org", "example.org"),
        ("example.org/path?q=1#frag", "example.org"),  # scheme-less with a path
        ("https://example.org", "example.org"),
        ("HTTPS://EXAMPLE.ORG/A", "example.org"),  # upper case
        ("http://example.org:8080/x", "example.org"),  # port
        ("example.org:443", "example.org"),  # scheme-less with a port
        ("https://user:pw@example.org/", "example.org"),  # userinfo
        ("user@example.org", "example.org"),
        ("example.org.", "example.org"),  # trailing dot
        ("https://example.org.:8443/", "example.org"),
        ("www.example.org", "example.org"),
        ("https://WWW.Example.ORG./", "example.org"),
        ("  https://example.org  ", "example.org"),  # surrounding whitespace
        ("www.com", "www.com"),  # a registrable 'www' is kept
        ("bücher.de", "xn--bcher-kva.de"),  # IDN unicode -> punycode
        ("https://www.BÜCHER.de/x", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),  # already punycode
        ("192.168.1.1", None),  # IPv4
        ("http://10.0.0.1:8080/x", None),
        ("::1", None),  # IPv6
        ("[::1]", None),
        ("http://[2001:db8::1]:443/x", None),  # bracketed IPv6 with port
        ("2001:db8::1", None),
        ("1.2.3", None),  # numeric last label
        ("", None),
        ("   ", None),
        ("http://", None),
        ("not a host", None),
        ("-bad-.org", None),
        ("exa_mple.org", None),
        ("xn--a.org", None),  # punycode that decodes to no name
        ("xn--ls8h.la", "xn--ls8h.la"),
        ("example.org:notaport", None),
        ("a" * 64 + ".org", None),  # label too long
    ],
)
def test_normalise_host(raw: str, expected: str | None) -> None:
    assert normalise_host(raw) == expected


def test_normalise_host_rejects_non_strings() -> None:
    assert normalise_host(None) is None  # type: ignore[arg-type]
    assert normalise_host(123) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("url", "domain", "kind"),
    [
        ("example.org", "example.org", "domain"),  # exact
        ("https://www.example.org/x", "example.org", "domain"),
        ("https://EXAMPLE.org:8080/", "example.org", "domain"),
        ("https://user@example.org./", "example.org", "domain"),
        ("news.example.org", "example.org", "domain"),  # parent
        ("deep.example.org", "deep.example.org", "domain"),
        ("a.b.deep.example.org", "deep.example.org", "domain"),  # longest parent beats shorter one
        ("very.deep.example.org", "very.deep.example.org", "domain"),
        ("x.very.deep.example.org", "very.deep.example.org", "domain"),
        ("bücher.de", "xn--bcher-kva.de", "domain"),  # IDN: unicode query, punycode list
        ("https://shop.xn--bcher-kva.de/", "xn--bcher-kva.de", "domain"),  # punycode query
        ("https://www.BÜCHER.de", "xn--bcher-kva.de", "domain"),
        ("special.ac.uk", "special.ac.uk", "domain"),  # explicit beats the ac.uk suffix rule
        ("lab.special.ac.uk", "special.ac.uk", "domain"),
        ("ox.ac.uk", "ac.uk", "suffix"),  # longest suffix rule wins over `uk`
        ("a.b.ox.ac.uk", "ac.uk", "suffix"),
        ("bbc.co.uk", "uk", "suffix"),
        ("ac.uk", "ac.uk", "suffix"),  # a host equal to a suffix matches it
        ("https://www.nasa.gov/", "gov", "suffix"),
    ],
)
def test_lookup_most_specific_wins(fixture_list: AuthorityList, url: str, domain: str, kind: str) -> None:
    entry = fixture_list.lookup(url)
    assert entry is not None, url
    assert (entry.domain, entry.kind) == (domain, kind)


@pytest.mark.parametrize(
    "url",
    [
        "unlisted.com",
        "https://example.com/",
        "example.org.evil.com",  # listed domain as a *prefix* must not match
        "notexample.org",  # label boundary respected
        "https://192.168.0.1/",
        "127.0.0.1",
        "http://[::1]:8080/",
        "2001:db8::1",
        "",
        "garbage with spaces",
    ],
)
def test_lookup_unlisted_and_ips(fixture_list: AuthorityList, url: str) -> None:
    assert fixture_list.lookup(url) is None


def test_entry_fields_and_to_dict(fixture_list: AuthorityList) -> None:
    e = fixture_list.lookup("https://deep.example.org/report")
    assert isinstance(e, AuthorityEntry)
    assert (e.name, e.category, e.country, e.tier, e.note) == (
        "Deep Example",
        "statistics",
        "us",
        1,
        "a subdomain with its own category",
    )
    assert e.to_dict() == {
        "name": "Deep Example",
        "category": "statistics",
        "tier": 1,
        "country": "us",
        "domain": "deep.example.org",
        "kind": "domain",
    }
    with pytest.raises(AttributeError):
        e.tier = 2  # type: ignore[misc]  # frozen


def test_list_attributes(fixture_list: AuthorityList, tmp_path: Path) -> None:
    assert fixture_list.explicit_domains == sorted(fixture_list.entries)
    assert len(fixture_list.explicit_domains) == 5
    assert [r.domain for r in fixture_list.suffix_rules] == ["ac.uk", "gov", "uk"]
    assert all(r.kind == "suffix" for r in fixture_list.suffix_rules)
    assert fixture_list.directory == tmp_path / "list"
    assert len(fixture_list.content_hash) == 64


def test_registrable_domain(fixture_list: AuthorityList) -> None:
    rd = fixture_list.registrable_domain
    assert rd("https://a.b.stats.gov.cn/x") == "stats.gov.cn"
    assert rd("www.ox.ac.uk") == "ox.ac.uk"
    assert rd("https://news.example.org:8080/") == "example.org"
    assert rd("bücher.de") == "xn--bcher-kva.de"
    assert rd("10.0.0.1") is None
    assert rd("[::1]") is None
    assert rd("localhost") is None  # no public suffix


def test_load_without_suffix_file(tmp_path: Path) -> None:
    alist = AuthorityList.load(write_list(tmp_path / "l", suffixes=None))
    assert alist.suffix_rules == []
    assert alist.lookup("ox.ac.uk") is None
    assert alist.lookup("example.org") is not None


def test_comment_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    d = write_list(tmp_path / "l", "# reviewed 2025\n\nexample.org,Example,government,us,1,\n", suffixes=None)
    assert AuthorityList.load(d).explicit_domains == ["example.org"]


def test_default_list_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DRSEARCH_AUTHORITY_LIST", raising=False)
    assert default_list_dir() == Path(__file__).resolve().parents[2] / "authority_lists"
    monkeypatch.setenv("DRSEARCH_AUTHORITY_LIST", str(tmp_path))
    assert default_list_dir() == tmp_path


# --------------------------------------------------------------------------- content hash


def test_content_hash_changes_when_a_file_changes(tmp_path: Path) -> None:
    d = write_list(tmp_path / "l")
    h1 = AuthorityList.load(d).content_hash
    assert AuthorityList.load(d).content_hash == h1  # stable
    with (d / "fixture.csv").open("a", encoding="utf-8") as f:
        f.write("another.org,Another,university,us,2,\n")
    h2 = AuthorityList.load(d).content_hash
    assert h2 != h1
    (d / "fixture.csv").rename(d / "renamed.csv")  # same bytes, other file name
    assert AuthorityList.load(d).content_hash != h2
    assert validate(d)["content_hash"] == AuthorityList.load(d).content_hash


# --------------------------------------------------------------------------- validation errors


def _single_error(report: dict, file: str, line: int, field: str) -> dict:
    matches = [e for e in report["errors"] if (e["file"], e["line"], e["field"]) == (file, line, field)]
    assert matches, report["errors"]
    return matches[0]


BAD_ROWS = [
    # (row, field, message fragment)
    ("example.org,Example,government,us,x,", "tier", "tier"),
    ("example.org,Example,government,us,4,", "tier", "tier"),
    ("example.org,Example,government,us,0,", "tier", "tier"),
    ("example.org,Example,government,us,²,", "tier", "tier"),  # str.isdigit() says yes, int() says no
    ("example.org,Example,government,us,１,", "tier", "tier"),  # a full-width digit
    ("example.org,Example,blog,us,1,", "category", "unknown category"),
    ("example.org,Example,government,USA,1,", "country", "ISO 3166"),
    ("example.org,Example,government,uk,1,", "country", "ISO 3166"),  # gb, not uk
    ("example.org,,government,us,1,", "name", "empty name"),
    ("Example.org,Example,government,us,1,", "domain", "lower case"),
    ("www.example.org,Example,government,us,1,", "domain", "www."),
    ("example.org.,Example,government,us,1,", "domain", "dot"),
    ("https://example.org,Example,government,us,1,", "domain", "scheme"),
    ("example.org/path,Example,government,us,1,", "domain", "bare host"),
    ("bücher.de,Buecher,library_archive,de,2,", "domain", "punycode"),
    ("192.168.0.1,Router,government,us,1,", "domain", "domain"),
    ("exa_mple.org,Example,government,us,1,", "domain", "invalid"),
    (",Example,government,us,1,", "domain", "empty"),
    # a public suffix would rate every site under it: `com`, or `ac.uk` typed for a university
    ("com,Everything,government,us,1,", "domain", "is a public suffix"),
    ("ac.uk,Typo,university,gb,1,", "domain", "is a public suffix"),
    ("example.org,Example,government,us,1", "row", "expected 6 fields"),
]


@pytest.mark.parametrize(("row", "field", "fragment"), BAD_ROWS)
def test_validation_names_file_line_field(tmp_path: Path, row: str, field: str, fragment: str) -> None:
    d = write_list(tmp_path / "l", "good.org,Good,government,us,1,\n" + row + "\n", suffixes=None, name="bad.csv")
    report = validate(d)  # never raises
    err = _single_error(report, "bad.csv", 3, field)
    assert fragment.lower() in err["message"].lower()
    with pytest.raises(AuthorityListError) as exc_info:
        AuthorityList.load(d)
    exc = exc_info.value
    assert exc.where == "bad.csv:3"
    assert exc.field == field
    assert isinstance(exc, ConfigError) and isinstance(exc, DrsearchError)
    assert str(exc).startswith("bad.csv:3: ")


def test_an_unclosed_quote_is_reported_where_its_row_starts(tmp_path: Path) -> None:
    rows = ('good.org,Good,government,us,1,\n"open.org,Open,government,us,1,\n'
            "a.org,A,government,us,1,\nb.org,B,government,us,1,\nc.org,C,government,us,1,\n")
    err = _single_error(validate(write_list(tmp_path / "l", rows, suffixes=None, name="q.csv")), "q.csv", 3, "row")
    assert "runs to line 6" in err["message"] and "quote" in err["message"]


def test_duplicate_across_files(tmp_path: Path) -> None:
    d = write_list(tmp_path / "l", "example.org,Example,government,us,1,\n", suffixes=None, name="a.csv")
    (d / "b.csv").write_text(DOMAIN_HEADER + "\nother.org,Other,university,us,2,\nexample.org,Dup,university,us,2,\n")
    report = validate(d)
    err = _single_error(report, "b.csv", 3, "domain")
    assert "duplicate" in err["message"] and "a.csv:2" in err["message"]
    with pytest.raises(AuthorityListError, match="duplicate") as exc_info:
        AuthorityList.load(d)
    assert exc_info.value.where == "b.csv:3"


def test_duplicate_suffix_rule(tmp_path: Path) -> None:
    d = write_list(tmp_path / "l", "", suffixes="gov,A,government,us,1,\ngov,B,government,us,1,\n")
    _single_error(validate(d), "suffix_rules.csv", 3, "suffix")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("domain,name,category,country,tier", "fixture.csv"),  # missing column
        ("host,name,category,country,tier,note", "fixture.csv"),  # wrong name
        ("domain,name,category,country,tier,note", "suffix_rules.csv"),  # suffix file needs `suffix`
    ],
)
def test_bad_header(tmp_path: Path, header: str, name: str) -> None:
    d = write_list(tmp_path / "l", "example.org,Example,government,us,1,\n", suffixes=None, name=name, header=header)
    err = _single_error(validate(d), name, 1, "header")
    assert "expected header" in err["message"]
    with pytest.raises(AuthorityListError) as exc_info:
        AuthorityList.load(d)
    assert (exc_info.value.where, exc_info.value.field) == (f"{name}:1", "header")


def test_empty_file_and_missing_directory(tmp_path: Path) -> None:
    d = tmp_path / "l"
    d.mkdir()
    (d / "empty.csv").write_text("")
    _single_error(validate(d), "empty.csv", 1, "header")
    missing = tmp_path / "nope"
    report = validate(missing)
    assert report["errors"] and report["errors"][0]["field"] == "directory"
    with pytest.raises(AuthorityListError, match="not found"):
        AuthorityList.load(missing)
    (tmp_path / "list.csv").write_text("domain,name\n")
    with pytest.raises(AuthorityListError, match="is a file, not an authority list directory"):  # not "not found"
        AuthorityList.load(tmp_path / "list.csv")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(AuthorityListError, match="no .csv"):
        AuthorityList.load(empty_dir)


def test_tier_conflict_same_category_is_an_error(tmp_path: Path) -> None:
    rows = "example.org,Example,publisher,us,1,\nblog.example.org,Blog,publisher,us,3,\n"
    d = write_list(tmp_path / "l", rows, suffixes=None)
    err = _single_error(validate(d), "fixture.csv", 3, "tier")
    assert "conflicts" in err["message"] and "example.org" in err["message"]


def test_explicit_domain_rated_below_its_suffix_rule_is_an_error(tmp_path: Path) -> None:
    suffixes = "gov,US government,government,us,1,\nre.kr,Korean research institute,research_institute,kr,2,\n"
    rows = ("foo.gov,Foo,government,us,3,\n"  # same category, rated below the rule: contradiction
            "museum.gov,Museum,research_institute,us,3,\n"  # another category: deliberate
            "kist.re.kr,KIST,research_institute,kr,1,\n")  # named and raised above the rule: curation
    d = write_list(tmp_path / "l", rows, suffixes=suffixes)
    err = _single_error(validate(d), "fixture.csv", 2, "tier")
    assert "conflicts with suffix rule 'gov'" in err["message"] and "suffix_rules.csv:2" in err["message"]


def test_subdomain_with_other_category_or_same_tier_is_fine(tmp_path: Path) -> None:
    rows = (
        "example.org,Example,university,us,2,\n"
        "law.example.org,Law Institute,legal,us,1,\n"  # other category, other tier: deliberate
        "cs.example.org,CS Dept,university,us,2,\n"  # same category, same tier
    )
    assert validate(write_list(tmp_path / "l", rows, suffixes=None))["errors"] == []


def test_explicit_domain_equal_to_a_suffix_rule_rated_below_it_is_an_error(tmp_path: Path) -> None:
    """The rule `stats.example` covers the host `stats.example` itself: an explicit `stats.example` of
    the same category rated below it contradicts it (and leaves the rule nothing to match). A public
    suffix such as `gov.uk` cannot be an explicit entry at all."""
    suffixes = "stats.example,Statistics,statistics,gb,1,\n"
    d = write_list(tmp_path / "l", "stats.example,Stats,statistics,gb,3,\n", suffixes=suffixes)
    err = _single_error(validate(d), "fixture.csv", 2, "tier")
    assert "conflicts with suffix rule 'stats.example'" in err["message"] and "suffix_rules.csv:2" in err["message"]
    assert "can never match" in _single_error(validate(d), "suffix_rules.csv", 2, "suffix")["message"]


def _rows(category: str, n: int, country: str = "us", prefix: str = "") -> str:
    return "".join(f"{prefix}{category.replace('_', '-')}{i}.org,{category} {i},{category},{country},1,\n" for i in range(n))


def test_exactly_meeting_a_breadth_minimum_is_not_a_shortfall(tmp_path: Path) -> None:
    report = validate(write_list(tmp_path / "l", _rows("central_bank", 40), suffixes=None))
    assert report["errors"] == []
    assert report["breadth"]["central_bank"] == {"required": 40, "actual": 40, "ok": True}
    assert report["breadth"]["statistics"]["ok"] is False  # 0 of 40


def test_int_and_eu_are_not_counted_as_countries_with_official_sources(tmp_path: Path) -> None:
    rows = (
        "un-gov.org,UN,government,int,1,\n"
        "eu-gov.org,EU,government,eu,1,\n"
        "eu-bank.org,ECB,central_bank,eu,1,\n"
        "us-gov.org,US,government,us,1,\n"
        "gb-stats.org,GB,statistics,gb,1,\n"
    )
    report = validate(write_list(tmp_path / "l", rows, suffixes=None))
    assert report["errors"] == []
    assert report["breadth"]["countries_with_official_sources"]["actual"] == 2  # us, gb


def test_preprint_servers_count_toward_publishers(tmp_path: Path) -> None:
    rows = _rows("publisher", 1) + _rows("preprint", 2)
    report = validate(write_list(tmp_path / "l", rows, suffixes=None))
    assert report["errors"] == []
    assert report["breadth"]["publisher+preprint"]["actual"] == 3


def test_a_csv_saved_with_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    d = tmp_path / "l"
    d.mkdir()
    (d / "bom.csv").write_bytes(("\ufeff" + DOMAIN_HEADER + "\nexample.org,Example,government,us,1,\n").encode("utf-8"))
    (d / "suffix_rules.csv").write_bytes(("\ufeff" + SUFFIX_HEADER + "\ngov,US government,government,us,1,\n").encode("utf-8"))
    assert validate(d)["errors"] == []
    alist = AuthorityList.load(d)
    assert alist.lookup("https://example.org/x").domain == "example.org"
    assert alist.lookup("nasa.gov").domain == "gov"


def test_validate_counts(tmp_path: Path) -> None:
    report = validate(write_list(tmp_path / "l"))
    assert report["errors"] == []
    assert report["explicit_domains"] == 5
    assert report["suffix_rules"] == 3
    assert report["by_category"]["government"] == 1
    assert report["by_tier"] == {"1": 3, "2": 2, "3": 0}
    assert report["by_country"] == {"us": 3, "de": 1, "gb": 1}
    assert report["breadth"]["explicit_domains"] == {"required": 600, "actual": 5, "ok": False}


# --------------------------------------------------------------------------- the real list


@pytest.fixture(scope="module")
def real_report() -> dict:
    return validate(Path(__file__).resolve().parents[2] / "authority_lists")


def test_real_list_validates_with_zero_errors(real_report: dict) -> None:
    assert real_report["errors"] == []


def test_real_list_meets_breadth(real_report: dict) -> None:
    short = {k: b for k, b in real_report["breadth"].items() if not b["ok"]}
    assert short == {}
    assert real_report["explicit_domains"] >= 600
    assert set(real_report["by_category"]) <= CATEGORIES


def test_real_list_lookups() -> None:
    alist = AuthorityList.load(Path(__file__).resolve().parents[2] / "authority_lists")
    cases = {
        "https://www.stats.gov.cn/sj/zxfb/": ("stats.gov.cn", "statistics"),
        "http://www.pbc.gov.cn/": ("pbc.gov.cn", "central_bank"),
        "https://www.tsinghua.edu.cn/en/": ("tsinghua.edu.cn", "university"),
        "https://english.cas.cn/": ("english.cas.cn", "research_institute"),
        "https://kns.cnki.net/": ("cnki.net", "publisher"),
        "https://some-ministry.gov.cn/": ("gov.cn", "government"),
        "https://www.federalreserve.gov/": ("federalreserve.gov", "central_bank"),
        "https://data.worldbank.org/indicator": ("data.worldbank.org", "statistics"),
        "https://www.worldbank.org/en/": ("worldbank.org", "intergovernmental"),
        "https://iarc.who.int/": ("iarc.who.int", "research_institute"),
        "https://www.ox.ac.uk/": ("ox.ac.uk", "university"),
        "https://www.physics.ox.ac.uk/": ("ox.ac.uk", "university"),
        "https://www.some-college.ac.uk/": ("ac.uk", "university"),
        "https://www.gov.uk/government/statistics": ("gov.uk", "government"),
        "https://ec.europa.eu/eurostat": ("ec.europa.eu", "government"),
        "https://arxiv.org/abs/1706.03762": ("arxiv.org", "preprint"),
        "https://www.law.cornell.edu/uscode": ("law.cornell.edu", "legal"),
        "https://pubmed.ncbi.nlm.nih.gov/123/": ("pubmed.ncbi.nlm.nih.gov", "library_archive"),
    }
    for url, (domain, category) in cases.items():
        e = alist.lookup(url)
        assert e is not None and (e.domain, e.category) == (domain, category), (url, e)
    assert alist.lookup("https://example.com/") is None
    assert alist.lookup("https://8.8.8.8/") is None


def test_real_list_is_normalised_and_lower_case() -> None:
    alist = AuthorityList.load(Path(__file__).resolve().parents[2] / "authority_lists")
    for domain in alist.explicit_domains:
        assert normalise_host(domain) == domain, domain
    assert all(e.country == e.country.lower() for e in alist.entries.values())


# --------------------------------------------------------------------------- CLI


@pytest.fixture()
def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(authority_app, name="authority")
    return app


def test_cli_check_json_real_list(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["authority", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("explicit_domains", "suffix_rules", "by_category", "by_tier", "by_country", "errors", "breadth"):
        assert key in report
    assert report["errors"] == [] and report["explicit_domains"] >= 600


def test_cli_check_human_and_failure(cli: typer.Typer, tmp_path: Path) -> None:
    ok = CliRunner().invoke(cli, ["authority", "check"])
    assert ok.exit_code == 0, ok.output
    assert "breadth:" in ok.output and "errors: none" in ok.output
    d = write_list(tmp_path / "l", "example.org,Example,government,us,9,\n", suffixes=None)
    bad = CliRunner().invoke(cli, ["authority", "check", "--list", str(d)])
    assert bad.exit_code == 1
    assert "fixture.csv:2: tier: " in bad.output
    bad_json = CliRunner().invoke(cli, ["authority", "check", "--list", str(d), "--json"])
    assert bad_json.exit_code == 1
    assert json.loads(bad_json.output)["errors"][0]["line"] == 2
    # a tiny but valid list fails only on breadth
    small = CliRunner().invoke(cli, ["authority", "check", "--list", str(write_list(tmp_path / "s"))])
    assert small.exit_code == 1 and "SHORT" in small.output


def test_cli_lookup_json(cli: typer.Typer, tmp_path: Path) -> None:
    d = write_list(tmp_path / "l")
    result = CliRunner().invoke(
        cli, ["authority", "lookup", "https://a.deep.example.org/x", "unlisted.net", "10.0.0.1", "--list", str(d), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["url"] for r in rows] == ["https://a.deep.example.org/x", "unlisted.net", "10.0.0.1"]
    assert rows[0]["domain"] == "example.org"
    assert rows[0]["entry"] == {
        "name": "Deep Example",
        "category": "statistics",
        "tier": 1,
        "country": "us",
        "domain": "deep.example.org",
        "kind": "domain",
    }
    assert rows[1]["entry"] is None and rows[1]["domain"] == "unlisted.net"
    assert rows[2] == {"url": "10.0.0.1", "domain": None, "entry": None}


def test_cli_lookup_human(cli: typer.Typer, tmp_path: Path) -> None:
    d = write_list(tmp_path / "l")
    result = CliRunner().invoke(cli, ["authority", "lookup", "ox.ac.uk", "nothing.example", "--list", str(d)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "->  ac.uk  UK academic (university, tier 2, gb)" in lines[0]
    assert lines[1].endswith("->  unlisted")


@pytest.mark.parametrize("junk", ["", "http://", "two words"])
def test_cli_lookup_refuses_what_names_no_host(junk: str) -> None:
    """It printed `unlisted` for these, as if a host had been looked up."""
    from tests.conftest import drsearch
    from tests.service.test_cli import assert_one_line_error

    assert_one_line_error(drsearch("authority", "lookup", "cdc.gov", junk, timeout=60), f"not a URL or host name: {junk!r}")


def test_cli_lookup_malformed_list_raises(cli: typer.Typer, tmp_path: Path) -> None:
    d = write_list(tmp_path / "l", "example.org,Example,nonsense,us,1,\n", suffixes=None)
    result = CliRunner().invoke(cli, ["authority", "lookup", "example.org", "--list", str(d)])
    assert result.exit_code != 0
    assert isinstance(result.exception, AuthorityListError)
    assert str(result.exception).startswith("fixture.csv:2: category: ")
    assert "\n" not in str(result.exception)


def test_cli_no_args_shows_help(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["authority"])
    assert "check" in result.output and "lookup" in result.output


def test_an_idn_whose_name_idna_2003_maps_away_can_be_listed_and_found(tmp_path: Path) -> None:
    """faß.de is xn--fa-hia.de; Python's own codec (IDNA 2003) reads that label as `fass`, so the
    check refused the very punycode it suggested, and no list entry or filter could reach the site."""
    d = write_list(tmp_path / "l", "xn--fa-hia.de,Fass,government,de,1,\nxn--hxarsa0b.gr,Hellas,government,gr,1,\n",
                   suffixes=None)  # fmt: skip
    assert validate(d)["errors"] == []
    alist = AuthorityList.load(d)
    assert alist.lookup("https://faß.de/bericht").name == "Fass" and alist.lookup("www.xn--fa-hia.de").name == "Fass"
    assert alist.lookup("https://ελλάς.gr/").name == "Hellas"


def test_a_suffix_rule_under_an_explicit_entry_can_never_match_and_says_so(tmp_path: Path) -> None:
    """Explicit entries are looked up first and cover their subdomains: the shipped `europa.eu` rule
    (whose note said it covered the hosts not listed) could never match."""
    d = write_list(tmp_path / "l", "example.org,Example,government,us,1,\n", suffixes=(
        "uk,UK,government,gb,3,\nexample.org,Rule,research_institute,us,3,\nx.example.org,Under,statistics,us,2,\n"))  # fmt: skip
    report = validate(d)
    for line, rule in ((3, "example.org"), (4, "x.example.org")):
        err = _single_error(report, "suffix_rules.csv", line, "suffix")
        assert f"rule {rule!r} can never match: the explicit entry 'example.org' at fixture.csv:2" in err["message"]


def test_comments_before_the_header_and_a_non_utf8_line_are_placed(tmp_path: Path) -> None:
    d = write_list(tmp_path / "l", "example.org,Example,government,us,1,\n", suffixes=None,
                   header="# reviewed 2026-12\n\n" + DOMAIN_HEADER)  # fmt: skip
    assert validate(d)["errors"] == [] and len(AuthorityList.load(d)) == 1
    (d / "fixture.csv").write_bytes(f"{DOMAIN_HEADER}\nm\xfcnchen.example,M,government,de,1,\n".encode("latin-1"))
    err = _single_error(validate(d), "fixture.csv", 2, "file")
    assert "not UTF-8" in err["message"] and "at byte 2 of the line" in err["message"]


def test_a_non_utf8_byte_after_a_bom_is_placed_on_its_line(tmp_path: Path) -> None:
    d = tmp_path / "l"
    d.mkdir()
    (d / "fixture.csv").write_bytes(b"\xef\xbb\xbf" + f"{DOMAIN_HEADER}\nab\xff.org,A,government,us,1,\n".encode("latin-1"))
    assert "at byte 3 of the line" in _single_error(validate(d), "fixture.csv", 2, "file")["message"]
