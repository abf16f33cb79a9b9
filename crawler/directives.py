"""A page's own robots directives: the `X-Robots-Tag` header and `<meta name="robots">` (or a meta named
for our product token). `noindex`: the page is not stored; `nofollow`: its links are not followed;
`none`: both. Directives addressed to another crawler (`otherbot: noindex`) do not apply."""

from __future__ import annotations

import re
from collections.abc import Iterable

_AGENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:\s*(.*)$", re.S)
# Directives whose value follows a colon: `unavailable_after: 2030-01-01` is no user agent.
_VALUED = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}


def _split(value: str) -> set[str]:
    found = {d.strip().lower() for d in value.split(",")}
    if "none" in found:
        found |= {"noindex", "nofollow"}
    return found & {"noindex", "nofollow"}


def page_directives(headers: Iterable[str], metas: Iterable[tuple[str, str]], token: str) -> set[str]:
    """`noindex` / `nofollow` that apply to us, from X-Robots-Tag values and (name, content) meta pairs."""
    token = token.lower()
    found: set[str] = set()
    for value in headers:
        m = _AGENT.match(value)
        if m and m.group(1).lower() not in _VALUED:
            if m.group(1).lower() == token:
                found |= _split(m.group(2))
        else:
            found |= _split(value)
    for name, content in metas:
        if name.strip().lower() in ("robots", token):
            found |= _split(content)
    return found
