"""The canonical form of a URL: one identity for the crawler's dedupe, the store's URL column and fetch-by-URL."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url as w3lib_canonicalize_url

from indexer.domains import host_of

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


def url_key(url: str) -> str | None:
    """The canonical form a document is looked up by, or None for a URL w3lib cannot parse."""
    try:
        return canonicalize_url(url)
    except ValueError:
        return None
