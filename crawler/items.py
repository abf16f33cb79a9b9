"""The item the spider yields: one fetched page, before validation and extraction."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PageItem:
    url: str  # canonical identity URL (rel=canonical when honoured, else the canonical fetched URL)
    fetched_url: str  # canonical URL of the final response
    request_urls: list[str]  # every canonical URL this fetch answers for (redirect chain, fetched, identity)
    status: int
    content_type: str
    body: bytes
    depth: int
    fetched_at: str
    domain: str
    charset: str | None = None  # the encoding the Content-Type header names
    noindex: bool = False  # the page's robots directives (header or meta) forbid storing it
    title: str = ""
    text: str = ""
    published: str | None = None
    language: str | None = None
    content_hash: str = ""
    near_hash: str = ""
    extra: dict[str, str] = field(default_factory=dict)
