"""The one public-suffix extractor (tldextract), shared by the authority matcher and the crawler.

Offline: only the suffix list bundled with tldextract is used, never fetched over the network.
Loaded on first use (nothing at import time).
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def suffix_extractor() -> Any:
    """The process's `tldextract.TLDExtract` over the bundled public-suffix snapshot."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
