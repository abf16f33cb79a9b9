"""Host identity for the whole project: the one host normaliser and the one public-suffix extractor.

`host_of` is the only place a URL or host string is parsed into a host; every other shape (the
authority/filter key `normalise_host`, the registrable domain) is derived from it.
Offline: only the suffix list bundled with tldextract is used, never fetched over the network.
Loaded on first use (nothing at import time).
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@cache
def suffix_extractor() -> Any:
    """The process's `tldextract.TLDExtract` over the bundled public-suffix snapshot."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def host_of(url_or_host: str) -> str | None:
    """A URL or bare host -> lower-case ASCII host without userinfo, port or trailing dot.

    Unicode (IDN) hosts come back as punycode; IP literals as the address (IPv6 without brackets).
    None when there is no host, or the port or IDN label is malformed.
    """
    if not isinstance(url_or_host, str):
        return None
    return _host_cached(url_or_host)


@lru_cache(maxsize=65536)
def _host_cached(text: str) -> str | None:
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        return None
    if "://" not in text:
        # Scheme-less: "example.org/x", "user@host:8080", "[::1]:80".
        text = "//" + text.lstrip("/")
    try:
        netloc = urlsplit(text).netloc
    except ValueError:  # e.g. unbalanced brackets
        return None
    host = netloc.rpartition("@")[2]
    if host.startswith("["):  # bracketed IPv6 literal, possibly with a port
        host, _, port = host[1:].partition("]")
        ok_port = not port or (port[0] == ":" and port[1:].isdigit())
        return str(ip) if ok_port and (ip := ip_or_none(host)) else None
    if host.count(":") > 1:  # unbracketed IPv6
        return str(ip) if (ip := ip_or_none(host)) else None
    host, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    host = host.rstrip(".").lower()
    if not host.isascii():
        host = _to_ascii(host) or ""
    return host.rstrip(".") or None


def _to_ascii(host: str) -> str | None:
    """IDN (unicode) host -> punycode (UTS #46); None if it cannot be encoded."""
    import idna  # ships with requests/tldextract

    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii").lower()
    except idna.IDNAError:
        return None


def ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if `host` is an IP literal (brackets allowed), else None."""
    if not host or not (host[-1].isdigit() or ":" in host or host[-1] == "]"):
        return None  # every IP literal ends in a digit or contains ':' (cheap pre-check)
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_dns_name(host: str) -> bool:
    """A plausible lower-case ASCII DNS name: valid labels, at most 253 chars, no numeric last label."""
    if not host or len(host) > 253:
        return False
    labels = host.split(".")
    # A numeric last label is never a TLD (catches "1.2.3", "10.0.0.1" variants ipaddress rejects).
    return all(_LABEL_RE.match(label) and _punycode_ok(label) for label in labels) and not labels[-1].isdigit()


def _punycode_ok(label: str) -> bool:
    """An `xn--` label is punycode that decodes (`xn--a` does not: no name has it), by IDNA 2008 as
    `_to_ascii` encodes, or else 2003: Python's own codec (IDNA 2003) alone maps ß and ς to ss and σ,
    and refused the labels of faß.de or ελλάς.gr that a page's URL gives."""
    if not label.startswith("xn--"):
        return True
    import idna

    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        try:  # a name IDNA 2003 allows and 2008 does not (an emoji's, xn--ls8h): registered before 2008
            label.encode("ascii").decode("idna")
        except UnicodeError:
            return False
    return True


def normalise_host(url_or_host: str) -> str | None:
    """`host_of` without a leading `www.`: the site key of authority lists and domain filters.

    IP addresses and anything that is not a plausible DNS name give None.
    """
    host = host_of(url_or_host)
    if host is None or ip_or_none(host) is not None:
        return None
    if host.startswith("www.") and host.count(".") >= 2:
        host = host[4:]
    return host if is_dns_name(host) else None


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str | None:
    """eTLD+1 of a host from `host_of` (`a.b.stats.gov.cn` -> `stats.gov.cn`); None for an IP
    address or a host with no known public suffix."""
    if ip_or_none(host) is not None:
        return None
    return suffix_extractor()(host).top_domain_under_public_suffix or None
