"""URL identity: canonicalisation, registrable domain, allowlist and address-safety checks."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from indexer import domains
from indexer.domains import host_of
from indexer.domains import ip_or_none as literal_ip
from indexer.urls import canonicalize_url  # noqa: F401  (the crawler's URL identity; defined where the store can use it)


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
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d) or 6to4 (2002:AABB:CCDD::), which
    Python counts as global whatever it wraps, so 2002:7f00:1:: would pass for 127.0.0.1."""
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ip.sixtofour or ip
    return ip


def is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses: not private, loopback, link-local, shared
    (CGNAT 100.64.0.0/10), benchmarking, documentation, reserved, unspecified or multicast."""
    ip = _unmapped(ip)
    # Reserved too: Python counts IPv4-compatible IPv6 (::127.0.0.1, in reserved ::/8) as global.
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool = False) -> bool:
    """A public address, or a loopback one when the crawl allows it (`--allow-private`, for tests)."""
    ip = _unmapped(ip)
    return is_public_ip(ip) or (allow_loopback and ip.is_loopback)


def is_localhost_name(host: str) -> bool:
    host = host_of(host) or ""
    return host == "localhost" or host.endswith(".localhost")


class AddressRefused(ValueError):
    """A host that is, or resolves to, an address `address_allowed` refuses."""


def allowed_addresses(addresses: Iterable[str], *, allow_loopback: bool = False) -> list[str]:
    """`addresses` to connect to, IPv4 first; AddressRefused if any is refused or not an address
    (one private answer taints the name: a connection could be sent to it)."""
    addresses = list(addresses)
    ips = [literal_ip(a) for a in addresses]
    for text, ip in zip(addresses, ips):
        if ip is None or not address_allowed(ip, allow_loopback=allow_loopback):
            raise AddressRefused(f"{text} is not a public address (private, loopback, link-local or reserved)")
    return [str(ip) for ip in sorted(ips, key=lambda ip: ip.version)]  # type: ignore[union-attr]


def connect_addresses(host: str, resolve: Callable[[str], list[str]], *, allow_loopback: bool = False) -> list[str]:
    """Where a connection to `host` may go, checked by `allowed_addresses`: a literal address or a
    localhost name as such, else what `resolve` answers (OSError when it does not resolve)."""
    ip = literal_ip(host)
    if ip is None and is_localhost_name(host):
        ip = ipaddress.ip_address("127.0.0.1")
    if ip is not None:
        return allowed_addresses([str(ip)], allow_loopback=allow_loopback)
    addresses = resolve(host)
    if not addresses:
        raise OSError("no address")
    return allowed_addresses(addresses, allow_loopback=allow_loopback)


def system_resolve(host: str) -> list[str]:
    import socket

    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
