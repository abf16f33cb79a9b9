"""Fixtures: the standard fixture web (4 allowed "domains" + one offsite host) and a crawl runner."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.crawler.fixture_web import FixtureWeb, Resp, article, gz, minimal_pdf

REPO = Path(__file__).resolve().parents[2]

SM_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def paras(topic: str) -> list[str]:
    return [
        f"This page about {topic} explains how the agency measures {topic} and why the figures matter "
        f"for public policy, with methods documented in detail for {topic} researchers.",
        f"A second paragraph on {topic} gives the historical context, the revisions made to the {topic} "
        f"series over the last decade and the release calendar for {topic} statistics.",
    ]


def page(topic: str, links: list[str] = (), head: str = "") -> Resp:
    return Resp(body=article(topic.title(), paras(topic), extra_head=head, links=list(links)))


INFLATION_LINKS = ["/reports/inflation-print", "/reports/inflation-copy", "/reports/inflation-shouty"]
REDIRECT_HOPS = 8  # /hop/1 -> ... -> /hop/8 (a page): past the redirect cap (REDIRECT_MAX_TIMES = 5)
GZIP_BOMB = b"<html><body><p>" + b"zero " * 200_000 + b"</p></body></html>"  # 1 MB inflated, ~2 KB sent


def redirect(location: str) -> Resp:
    return Resp(302, b"", headers={"Location": location})


def build_web() -> FixtureWeb:
    web = FixtureWeb()
    inflation = article("Inflation", paras("inflation"), links=INFLATION_LINKS)
    shouty = article("Inflation", [p.upper() for p in paras("inflation")], links=INFLATION_LINKS)
    sitemap_pages = (
        f'<?xml version="1.0" encoding="UTF-8"?><urlset {SM_NS}>'
        "<url><loc>http://www.statgov.org/reports/annual.pdf</loc></url>"
        "<url><loc>http://www.statgov.org/data/table.csv</loc></url>"
        "<url><loc>http://www.statgov.org/reports/employment</loc></url></urlset>"
    ).encode()
    web.site(
        "www.statgov.org",
        {
            "/robots.txt": Resp(
                body=b"User-agent: *\nDisallow: /private/\nSitemap: http://www.statgov.org/sitemap_index.xml\n",
                ctype="text/plain",
            ),
            "/sitemap_index.xml": Resp(
                body=(
                    f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex {SM_NS}>'
                    "<sitemap><loc>http://www.statgov.org/sitemaps/pages.xml.gz</loc></sitemap></sitemapindex>"
                ).encode(),
                ctype="application/xml",
            ),
            "/sitemaps/pages.xml.gz": Resp(body=gz(sitemap_pages), ctype="application/x-gzip"),
            "/": page(
                "national statistics",
                [
                    "/reports/inflation?utm_source=news&utm_medium=email",
                    "/reports/inflation#top",
                    "/reports/inflation",
                    "/private/secret",
                    "http://data.statgov.org/",
                    "/old-report",
                    "/go-away",
                    "http://10.0.0.1/admin",
                    "http://192.168.1.1/router",
                    "/missing",
                    "mailto:press@statgov.org",
                    "/bomb",
                    "/hop/1",
                    "/loop",
                    "/intranet-link",
                ],
            ),
            "/bomb": Resp(body=gz(GZIP_BOMB), headers={"Content-Encoding": "gzip"}),
            **{f"/hop/{i}": redirect(f"/hop/{i + 1}") for i in range(1, REDIRECT_HOPS)},
            f"/hop/{REDIRECT_HOPS}": page("end of the redirect chain"),
            "/loop": redirect("/loop-back"),
            "/loop-back": redirect("http://www.statgov.org/loop"),
            "/intranet-link": redirect("http://intranet.statgov.org/"),
            "/reports/inflation": Resp(body=inflation),
            "/reports/inflation-print": Resp(
                body=article(
                    "Inflation (print)",
                    paras("inflation"),
                    extra_head='<link rel="canonical" href="http://www.statgov.org/reports/inflation">',
                )
            ),
            "/reports/inflation-copy": Resp(body=inflation),
            "/reports/inflation-shouty": Resp(body=shouty),
            "/private/secret": page("secret things"),
            "/old-report": Resp(301, b"", headers={"Location": "http://www.statgov.org/reports/moved"}),
            "/reports/moved": page("moved report"),
            "/go-away": Resp(302, b"", headers={"Location": "http://evil.example.com/landing"}),
            "/data/table.csv": Resp(body=b"year,value\n2023,4.5\n", ctype="text/csv"),
            "/reports/annual.pdf": Resp(
                body=minimal_pdf(["Annual report on the national economy.", "Prices rose by four percent."]),
                ctype="application/pdf",
            ),
            "/reports/employment": page("employment"),
        },
    )
    web.site("data.statgov.org", {"/": page("open data portal", ["http://www.statgov.org/"])})
    # Allowed by name, but the host map sends it to a non-public address (0.0.0.0 reaches this machine: a
    # request that got through would show up in the log).
    web.site("intranet.statgov.org", {"/": page("intranet")}, map_address="0.0.0.0")
    web.site(
        "www.centralbank.int",
        {
            # A group for another bot whose name is in our User-Agent's comment ("crawler@..."): it must not
            # apply to us (robots.txt groups match the product token only).
            "/robots.txt": Resp(body=b"User-agent: crawler\nDisallow: /\n\nUser-agent: *\nAllow: /\n", ctype="text/plain"),
            "/sitemap.xml": Resp(
                body=f'<?xml version="1.0"?><urlset {SM_NS}><url><loc>http://www.centralbank.int/rates</loc></url></urlset>'.encode(),
                ctype="application/xml",
            ),
            "/": page("monetary policy", ["/rates", "/flaky", "/busy", "/slow", "/broken", "/publications"]),
            "/rates": page("interest rates"),
            "/publications": page("bank publications"),
            "/flaky": lambda n: Resp(503, b"busy") if n <= 2 else page("financial stability"),
            "/busy": lambda n: Resp(429, b"slow down", headers={"Retry-After": "1"}) if n == 1 else page("exchange rates"),
            "/slow": Resp(body=article("Slow", paras("slow pages")), delay=4.0),
            "/broken": Resp(500, b"internal error"),
        },
    )
    malformed = (
        b"<html><head><title>Health guidance</title><body><div><p>Public health guidance on vaccination "
        b"schedules for children and adults, <b>updated <i>every season by the ministry of health.<p>"
        b"The guidance covers influenza, measles and other preventable diseases and explains eligibility "
        b"for free vaccination programmes in every region.<table><tr><td>unclosed"
        b'<a href="/huge">huge</a><a href="/logo.png">logo</a><a href="/guidance">guidance</a>'
        b'<a href="/drafts/plan">plan</a>'
        b"<script>document.write('<a href=\"http://evil.example.com/x\">')</script></div>"
    )
    web.site(
        "www.health.gov",
        {
            # Our own group: only /drafts/ is off limits to us (everyone else: the whole site).
            "/robots.txt": Resp(
                body=b"User-agent: drsearch-crawler\nDisallow: /drafts/\n\nUser-agent: *\nDisallow: /\n",
                ctype="text/plain",
            ),
            "/": Resp(body=malformed),
            "/huge": Resp(body=article("Huge", paras("huge page") * 1500)),
            "/logo.png": Resp(body=b"\x89PNG\r\n\x1a\n" + b"\0" * 100, ctype="image/png"),
            "/guidance": page(
                "vaccination guidance", head='<meta property="article:published_time" content="2024-03-05">'
            ),
            "/drafts/plan": page("draft plan"),
        },
    )
    web.site(
        "www.uni.ac.uk",
        {
            "/": page("university research", ["/paper.pdf", "/d1"]),
            "/paper.pdf": Resp(
                body=minimal_pdf(["Working paper on labour markets.", "We study wages and hours."]),
                ctype="application/pdf",
            ),
            "/d1": page("depth one", ["/d2"]),
            "/d2": page("depth two", ["/d3"]),
            "/d3": page("depth three", ["/d4"]),
            "/d4": page("depth four"),
        },
    )
    web.site("evil.example.com", {"/landing": page("evil landing"), "/x": page("evil x")})
    return web


DOMAINS = (
    "# fixture domains\nhttp://www.statgov.org/\nhttp://www.centralbank.int/\n"
    "http://www.health.gov/\nhttp://www.uni.ac.uk/  # university\n192.168.1.1\n"
)

TEST_SETTINGS = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_TIMEOUT": 2,  # under CPU load a page took over 1 s and was retried; /slow's 4 s delay still times out
    "RETRY_TIMES": 2,
    "RETRY_BACKOFF_BASE": 0.2,
    "DOWNLOAD_MAXSIZE": 100000,
    "DOWNLOAD_WARNSIZE": 50000,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
    "DRSEARCH_PROGRESS_INTERVAL": 0.5,
}


@pytest.fixture
def web() -> Iterator[FixtureWeb]:
    w = build_web()
    w.start()
    yield w
    w.stop()


def write_inputs(tmp: Path, web: FixtureWeb) -> tuple[Path, Path]:
    domains = tmp / "domains.txt"
    domains.write_text(DOMAINS)
    hosts = tmp / "hosts.txt"
    hosts.write_text("# test hosts\n" + web.host_map_text())
    return domains, hosts


def run_crawl(
    out: Path,
    domains: Path,
    hosts: Path,
    *extra: str,
    settings: dict[str, Any] | None = None,
    allow_private: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`python -m crawler.run` over the fixture web; --allow-private by default (it is on 127.0.0.1)."""
    cmd = [
        sys.executable, "-m", "crawler.run", "--out", str(out), "--domains", str(domains),
        "--host-map", str(hosts), "--max-depth", "3", *extra,
    ]
    if allow_private:
        cmd.append("--allow-private")
    for k, v in {**TEST_SETTINGS, **(settings or {})}.items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("http_proxy", None)
    env.pop("HTTP_PROXY", None)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@contextmanager
def crawled(web: FixtureWeb, tmp: Path, domains: str, *extra: str, hosts_extra: str = "",
            settings: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The report of one crawl of `web` (started here, stopped on leaving) into tmp/out, from a domains file
    of `domains` and the web's host map plus `hosts_extra`; the crawl must succeed."""
    web.start()
    try:
        (tmp / "domains.txt").write_text(domains)
        (tmp / "hosts.txt").write_text(web.host_map_text() + hosts_extra)
        proc = run_crawl(tmp / "out", tmp / "domains.txt", tmp / "hosts.txt", *extra, settings=settings)
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield json.loads((tmp / "out" / "report.json").read_text())
    finally:
        web.stop()


def read_docs(out: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted((out / "docs").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            docs.extend(json.loads(line) for line in fh if line.strip())
    return docs
