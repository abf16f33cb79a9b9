"""URL identity: canonicalisation, registrable domain, allowlist and address-safety checks."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url as w3lib_canonicalize_url

from indexer import domains
from indexer.domains import host_of
from indexer.domains import ip_or_none as literal_ip

# Query parameters that only track the visitor, never select content.
TRACKING_PARAMS = frozenset(
    {
        "gclid", "gclsrc", "dclid", "fbclid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
        "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "igshid", "ref_src", "ref_url",
        "spm", "scid", "vero_id", "wickedid", "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid",
        "mkt_tok", "sessionid", "phpsessid", "jsessionid", "sid",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "matomo_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def canonicalize_url(url: str) -> str:
    """Canonical form used for identity and dedupe.

    w3lib's canonical form (lower-case scheme and host, IDN as punycode, normalised percent-encoding
    and dot segments, sorted query, no fragment) plus this project's rules: no userinfo, default port
    or trailing dot in the host, `/` for an empty path, `//` runs in the path collapsed, tracking
    parameters (utm_*, gclid, fbclid, ...) removed, and spaces in the query as `%20`, not `+`.
    """
    parts = urlsplit(w3lib_canonicalize_url(url.strip()))
    host = host_of(parts.netloc) or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and DEFAULT_PORTS.get(parts.scheme) != parts.port:
        netloc = f"{netloc}:{parts.port}"
    path = re.sub("//+", "/", parts.path) or "/"
    # w3lib writes the query with quote_plus, so every `+` there is a space (a literal `+` is %2B).
    pairs = (p for p in parts.query.split("&") if p and not _is_tracking(unquote_plus(p.partition("=")[0])))
    query = "&".join(pairs).replace("+", "%20")
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def doc_id_for(canonical_url: str) -> str:
    """Stable document id: first 16 hex chars of sha1(canonical URL)."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()[:16]


def registrable_domain(url_or_host: str) -> str:
    """eTLD+1 of a host or URL (`data.statgov.org` -> `statgov.org`); the host itself for IPs/unknown suffixes."""
    host = host_of(url_or_host) or ""
    return domains.registrable_domain(host) or host


def url_domain(url: str) -> str:
    """Registrable domain of a URL's host: the unit of page limits and download slots."""
    return registrable_domain(url)


def normalise_domain(entry: str) -> str:
    """A domain list entry -> bare lower-case host (accepts URLs and a leading `*.`)."""
    return host_of(entry.strip().removeprefix("*.")) or ""


class Allowlist:
    """A set of allowed domains (each allows its subdomains), checked by suffix walk."""

    def __init__(self, domains: Iterable[str]):
        self.domains = frozenset(d for d in (normalise_domain(x) for x in domains) if d)

    def allows_host(self, host: str | None) -> bool:
        labels = (host_of(host or "") or "").split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels)))

    def allows_url(self, url: str) -> bool:
        return urlsplit(url).scheme in ("http", "https") and self.allows_host(url)


def _unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses: not private, loopback, link-local, shared
    (CGNAT 100.64.0.0/10), benchmarking, documentation, reserved, unspecified or multicast."""
    ip = _unmapped(ip)
    return ip.is_global and not ip.is_multicast


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool = False) -> bool:
    """A public address, or a loopback one when the crawl allows it (`--allow-private`, for tests)."""
    ip = _unmapped(ip)
    return is_public_ip(ip) or (allow_loopback and ip.is_loopback)


def is_localhost_name(host: str) -> bool:
    host = host_of(host) or ""
    return host == "localhost" or host.endswith(".localhost")


def host_is_private(host: str, resolve: Callable[[str], list[str]], *, allow_loopback: bool = False) -> bool:
    """True if the host is, or resolves to any, address that `address_allowed` refuses.

    `resolve` returns the host's addresses (raises OSError when it does not resolve;
    unresolvable hosts are not private: the download then fails as an ordinary DNS error).
    """
    ip = literal_ip(host)
    if ip is None and is_localhost_name(host):
        ip = ipaddress.ip_address("127.0.0.1")
    if ip is not None:
        return not address_allowed(ip, allow_loopback=allow_loopback)
    try:
        addresses = resolve(host)
    except OSError:
        return False
    ips = (a for a in (literal_ip(x) for x in addresses) if a is not None)
    return any(not address_allowed(a, allow_loopback=allow_loopback) for a in ips)


def system_resolve(host: str) -> list[str]:
    import socket

    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
