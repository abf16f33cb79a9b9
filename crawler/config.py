"""Crawl configuration and the loaders of its input files (domains, seeds, host map)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from indexer.domains import host_of, ip_or_none, is_dns_name, normalise_host
from indexer.errors import ConfigError, echo

from crawler.urls import canonicalize_url, literal_ip, normalise_domain

DEFAULT_USER_AGENT = "drsearch-crawler/0.1 (+https://github.com/drsearch/drsearch; crawler@drsearch.invalid)"


def product_token(user_agent: str) -> str:
    """The name robots.txt groups are matched against: `drsearch-crawler` of `drsearch-crawler/0.1 (...)`.

    Matching the whole User-Agent would also let groups for names in its comment (`crawler`, `github`) apply.
    """
    first = user_agent.strip().split(maxsplit=1)[0] if user_agent.strip() else ""
    return first.split("/", 1)[0]


@dataclass
class CrawlConfig:
    """Everything one crawl needs. `settings` are extra Scrapy settings (overrides, e.g. delays in tests)."""

    out_dir: Path
    domains: list[str]  # allowed registrable domains / hosts; each allows its subdomains
    start_urls: list[str] = field(default_factory=list)  # home pages + seeds (canonical)
    max_pages_per_domain: int = 1000
    max_depth: int = 3
    resume: bool = False
    resume_requested: bool = False  # --resume was given (`resume` is False where there was nothing to resume yet)
    host_map: dict[str, tuple[str, int]] = field(default_factory=dict)
    allow_private: bool = False  # loopback targets allowed (tests, local mirrors); other non-global never
    allow_dns: bool = False  # with a host map: unmapped hosts may be looked up (else refused)
    user_agent: str = DEFAULT_USER_AGENT
    quiet: bool = False
    shard_docs: int = 1000  # rotate the shard every N documents
    flush_docs: int = 20  # write a gzip member every N documents (a killed crawl loses at most these)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "domains": self.domains,
            "start_urls": self.start_urls,
            "max_pages_per_domain": self.max_pages_per_domain,
            "max_depth": self.max_depth,
            "resume": self.resume,
            "host_map": {h: f"{ip}:{port}" for h, (ip, port) in self.host_map.items()},
            "allow_private": self.allow_private,
            "allow_dns": self.allow_dns,
            "user_agent": self.user_agent,
            "shard_docs": self.shard_docs,
            "flush_docs": self.flush_docs,
            "settings": self.settings,
        }


def _read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    if not path.is_file():
        raise ConfigError(f"{what} file does not exist", where=str(path))
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} file: {exc}", where=str(path)) from None
    out = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append((lineno, line))
    return out


def home_page(entry: str) -> str:
    """Start URL for a domain-list entry: the entry itself if it is a URL, else https://<domain>/."""
    entry = entry.strip()
    if "://" in entry:
        return canonicalize_url(entry)
    return canonicalize_url(f"https://{normalise_domain(entry)}/")


def http_url(text: str, where: str) -> str:
    """The canonical form of an http(s) URL from an input file; ConfigError naming `where` otherwise."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in 0-65535)
        canonical = canonicalize_url(text)
    except ValueError as exc:
        raise ConfigError(f"not a valid URL: {text!r} ({exc})", where=where) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {text!r}", where=where)
    return canonical


def load_domains(path: str | Path) -> tuple[list[str], list[str]]:
    """(allowed domains, home pages) from a domains file: one domain (or home-page URL) per line, `#` comments.

    A URL line (`http://www.example.org/`) gives the home page explicitly. A leading `www.` is dropped
    from the allowed domain either way (`www.example.org` and `http://www.example.org/` both allow
    example.org and its subdomains), so a site's www -> apex redirect stays inside the crawl.
    """
    p = Path(path)
    domains: list[str] = []
    homes: list[str] = []
    for lineno, line in _read_lines(p, "domains"):
        token, *rest = line.split()
        where = f"{p}:{lineno}"
        if rest:  # `site.org extra words`: a list pasted with its notes, or two domains on a line
            raise ConfigError(f"one domain or URL a line, then nothing but a # comment: {echo(line)}", where=where)
        if "://" in token:
            home = http_url(token, where)
        else:
            bare = normalise_domain(token)
            if not bare or "/" in bare or " " in bare or "." not in bare and bare != "localhost":
                raise ConfigError(f"not a domain name: {token!r}", where=where)
            home = home_page(bare)
        host = host_of(home) or ""
        if ip_or_none(host) is None and not is_dns_name(host):  # a label over 63 characters: no name, and no file name
            raise ConfigError(f"not a domain name: {echo(token)} (labels of 1-63 letters, digits and hyphens)", where=where)
        domains.append(normalise_host(home) or normalise_domain(home))  # no www.; IP addresses as they are
        homes.append(home)
    if not domains:
        raise ConfigError("domains file lists no domain", where=str(p))
    return sorted(set(domains)), list(dict.fromkeys(homes))


def load_seeds(path: str | Path, allows: Callable[[str], bool] | None = None) -> list[str]:
    """Extra start URLs, one per line, `#` comments; with `allows`, one it refuses is an error at its line."""
    p = Path(path)
    seeds = []
    for lineno, line in _read_lines(p, "seeds"):
        url = http_url(line, f"{p}:{lineno}")
        if allows is not None and not allows(url):
            raise ConfigError(f"seed URL outside the allowed domains: {url}", where=f"{p}:{lineno}")
        seeds.append(url)
    return seeds


def load_host_map(path: str | Path) -> dict[str, tuple[str, int]]:
    """`hostname 127.0.0.1:PORT` lines -> {hostname: (ip, port)}; `#` comments."""
    p = Path(path)
    result: dict[str, tuple[str, int]] = {}
    for lineno, line in _read_lines(p, "host-map"):
        fields = line.split()
        where = f"{p}:{lineno}"
        if len(fields) != 2 or ":" not in fields[1]:
            raise ConfigError("expected 'hostname IP:PORT'", where=where)
        host, target = normalise_domain(fields[0]), fields[1]
        ip, _, port_s = target.rpartition(":")
        if not port_s.isdigit() or not (0 < int(port_s) < 65536) or not ip:
            raise ConfigError(f"bad target {target!r}: expected IP:PORT", where=where)
        ip = ip.strip("[]")
        if literal_ip(ip) is None:
            raise ConfigError(f"bad target {target!r}: expected an IP address, not a name", where=where)
        result[host] = (ip, int(port_s))
    return result


def load_authority_domains() -> list[str]:
    """Explicit domains of the curated authority list (lazy import: ranker is written elsewhere)."""
    try:
        from ranker.authority import AuthorityList
    except ImportError as exc:
        raise ConfigError(f"authority list loader unavailable: {exc}", where="ranker.authority") from None
    domains = AuthorityList.load().explicit_domains
    result = sorted({normalise_domain(d) for d in domains if normalise_domain(d)})
    if not result:
        raise ConfigError("the authority list has no explicit domains", where="authority_lists/")
    return result
