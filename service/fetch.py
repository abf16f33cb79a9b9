"""`POST /v1/fetch`: open 1-16 documents, by indexed id or by URL, whole or focused on a query.

A URL that the index holds (compared in the crawler's canonical form) is answered from the store;
any other URL is fetched live (`service.fetch_live`). With `query`, the document's passages come
best first (`ranker.focus`); `max_chars` keeps whole passages and says what it left out.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.domains import ip_or_none, is_dns_name
from indexer.errors import echo
from ranker.focus import Span
from ranker.options import CountsAsIntegers, UnicodeText
from ranker.query import MAX_QUERY_CHARS

MAX_ITEMS = 16


class FetchItem(CountsAsIntegers):
    """One document to open: give `doc_id` (from a search hit) or `url`."""

    model_config = ConfigDict(extra="forbid")

    doc_id: UnicodeText | None = Field(None, min_length=1, max_length=1000, description="An indexed document id (a search hit's doc_id)")
    url: UnicodeText | None = Field(None, min_length=1, max_length=4096, description="An http(s) URL; fetched live when not indexed")
    passage_id: UnicodeText | None = Field(None, min_length=1, max_length=1100, description="An indexed passage id (a search hit's "
                                           "passage_id, or `omitted.next_passage_id`): its document read on from that passage, in order")
    # Its length is capped where the request is answered, by the server's max_query_chars (as /v1/search's queries).
    query: UnicodeText | None = Field(None, description="Return the passages most relevant to this, best first "
                              f"(at most the server's query cap, {MAX_QUERY_CHARS} characters by default)")
    max_chars: int | None = Field(None, strict=True, ge=1, le=1_000_000, description="Cap on the returned text: whole passages, never cut mid-word")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.strip()
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises on a malformed port
        except ValueError as exc:
            raise ValueError(f"malformed URL: {echo(str(exc))}") from None
        if parts.scheme.lower() not in ("http", "https"):
            scheme = echo(parts.scheme) if parts.scheme else "a relative URL"
            raise ValueError(f"only http and https URLs can be fetched, not {scheme}")
        if not parts.hostname:
            raise ValueError("malformed URL: no host")
        try:
            host = httpx.URL(value).raw_host  # the client's own parse: a host it cannot encode (IDNA, a bad IPv4) fails here, not mid-fetch
        except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors
            raise ValueError(f"malformed URL: {echo(str(exc))}") from None
        ascii_host = host.decode("ascii", "replace").lower().removesuffix(".")
        if ip_or_none(ascii_host) is None and not is_dns_name(ascii_host):  # "a b.com", "-": no name a resolver takes
            raise ValueError(f"malformed URL: the host {echo(parts.hostname)} is neither a DNS name nor an IP address")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> "FetchItem":
        if sum(target is not None for target in (self.doc_id, self.url, self.passage_id)) != 1:
            raise ValueError("give exactly one of `doc_id`, `url` or `passage_id`")
        if self.passage_id is not None and self.query is not None:
            raise ValueError("`passage_id` reads on from a passage in document order and takes no `query` "
                             "(give the hit's `doc_id` with `query` to focus)")  # fmt: skip
        return self


class FetchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": [{"url": "https://www.who.int/news-room/fact-sheets/detail/influenza-(seasonal)",
                    "query": "how effective is the seasonal influenza vaccine", "max_chars": 3000}]},
        {"items": [{"url": "https://www.cdc.gov/flu/vaccine.html"}, {"url": "https://www.nih.gov/", "max_chars": 1500}]},
    ]})  # fmt: skip

    items: list[FetchItem] = Field(..., min_length=1, max_length=MAX_ITEMS, description=f"1-{MAX_ITEMS} documents to open")


class FetchedPassage(BaseModel):
    passage_id: str | None = Field(None, description="Indexed passages only")
    ordinal: int
    start: int = Field(description="Character offset in the document text")
    end: int
    score: float | None = Field(None, description="Relevance to `query` in [0, 1] (only with a query)")
    text: str


class Omitted(BaseModel):
    passages: int
    chars: int
    next_passage_id: str | None = Field(None, description="Where to read on (as `passage_id`): the first passage after "
                                        "those shown, for a document read in order (indexed documents)")


class ItemError(BaseModel):
    code: Literal["blocked_by_robots", "host_not_allowed", "too_large", "timeout", "not_html_or_pdf", "fetch_failed"]
    message: str


class FetchResult(BaseModel):
    ok: bool
    source: Literal["index", "live"] | None = None
    doc_id: str | None = None
    url: str | None = None
    title: str | None = None
    domain: str | None = None
    published: str | None = None
    language: str | None = None
    authority: dict[str, Any] | None = None
    text: str | None = Field(None, description="The returned passages joined by blank lines, then a marker of what was left out")
    passages: list[FetchedPassage] = Field(default_factory=list)
    omitted: Omitted | None = None
    cached: bool = False
    error: ItemError | None = None


class FetchResponse(BaseModel):
    request_id: str
    index_version: str
    took_ms: float
    results: list[FetchResult]


# ----------------------------------------------------------------------------------------- assembly

_BLANK = re.compile(r"\s+")
# Between two passages shown that are not next to each other in the document (best-first lists): joined by
# a blank line alone, the second read as the first's continuation.
GAP = "\n\n[…]\n\n"


def marker(omitted: Omitted) -> str:
    read_on = f"; read on with passage_id={omitted.next_passage_id}" if omitted.next_passage_id else ""
    return f"[… {omitted.passages} more passage(s), {omitted.chars} characters, left out{read_on}]"


def separator(before: Span, after: Span) -> str:
    return "\n\n" if after.ordinal == before.ordinal + 1 else GAP


def joined(spans: list[Span]) -> str:
    if not spans:
        return ""
    return spans[0].text + "".join(separator(a, b) + b.text for a, b in zip(spans, spans[1:]))


def select(ranked: list[tuple[Span, float | None]], max_chars: int | None, *, in_order: bool,
           query: str | None = None, reached: frozenset[int] | None = None) -> tuple[list, Omitted | None]:  # fmt: skip
    """Whole passages within `max_chars` (`joined`, plus the marker when some are left out). `in_order`:
    stop at the first that does not fit (a prefix of the document); else skip it and try the next
    (best-first lists), among those `reached` (ordinals) when given: a passage the query does not
    reach is no part of the answer. If the first does not fit, it is cut at word boundaries,
    around the words `query` matches when given: a best-first list never shows a worse passage in place
    of its best one because it is shorter."""
    if max_chars is None:
        return ranked, None
    spans = [s for s, _ in ranked]
    total = sum(len(s.text) for s in spans) + sum(len(separator(a, b)) for a, b in zip(spans, spans[1:]))  # len(joined(spans))
    if total <= max_chars:
        return ranked, None
    longest_id = max((s.passage_id for s in spans if s.passage_id), key=len, default=None) if in_order else None
    room = max_chars - len(marker(Omitted(passages=len(ranked), chars=total, next_passage_id=longest_id))) - 2
    kept: list[tuple[Span, float | None]] = []
    used = 0
    for span, score in ranked:
        if reached is not None and span.ordinal not in reached and not in_order:
            continue
        need = len(span.text) + (len(separator(kept[-1][0], span)) if kept else 0)
        if used + need <= room:
            kept.append((span, score))
            used += need
        elif in_order or not kept:
            break
    shown = sum(len(s.text) for s, _ in kept)
    read_on = len(kept)  # the first passage left out, in order
    if not kept and ranked:  # the first passage does not fit: cut (its rest counts in `chars`)
        span, score = ranked[0]
        read_on = 1
        if cut := _cut(span, room, query) or _cut(span, max_chars, query):  # the latter without the marker
            shown = cut.end - cut.start
            kept = [(cut, score)]
    chars = sum(len(s.text) for s in spans) - shown
    after = spans[read_on].passage_id if in_order and read_on < len(spans) else None
    return kept, Omitted(passages=len(ranked) - len(kept), chars=chars, next_passage_id=after)


def _cut(span: Span, room: int, query: str | None) -> Span | None:
    """`span` cut to at most `room` characters at word boundaries, `…` marking each cut end: from its
    start, or, with a query, from a word shortly before the densest run of the words it matches (as
    a search snippet is placed); None when not even one word fits."""
    from ranker.output_budget import ELLIPSIS, trim_words
    from ranker.snippets import densest_run, match_starts

    text, lo = span.text, 0
    starts = match_starts(text, query) if query and room > 0 else []
    if starts:
        best = densest_run(starts, room * 2 // 3)
        lo = max(0, min(best - room // 6, len(text) - room))
        if lo and not text[lo - 1].isspace() and (blank := _BLANK.search(text, lo, best)):
            lo = blank.end()  # the next word's start, not inside a word
        elif lo and not text[lo - 1].isspace():
            lo = best
    prefix = ELLIPSIS if lo else ""
    body = trim_words(text[lo:], room - len(prefix))
    if not body:
        return None
    shown = len(body) if body == text[lo:] else len(body) - len(ELLIPSIS)
    return Span(span.ordinal, span.start + lo, span.start + lo + shown, prefix + body, span.passage_id)


def assemble(pipeline, *, item: FetchItem, title: str, spans: list[Span], base: dict[str, Any],
             first: int = 0) -> dict[str, Any]:  # fmt: skip
    """A FetchResult dict: the spans whole or focused on `item.query`, within `item.max_chars`; `first`:
    the ordinal a read in order starts from (`item.passage_id`'s)."""
    from ranker.focus import rank_spans

    if item.query:
        scored, reached = rank_spans(pipeline, item.query, title, spans)
        ranked: list[tuple[Span, float | None]] = list(scored)
        # The query reaches no passage: the document from its start, in order.
        kept, omitted = select(ranked, item.max_chars, in_order=not reached, query=item.query, reached=reached)
    else:
        kept, omitted = select([(s, None) for s in spans if s.ordinal >= first], item.max_chars, in_order=True)
    text = joined([s for s, _ in kept])
    if omitted is not None:
        marked = (text + "\n\n" if text else "") + marker(omitted)
        text = marked if len(marked) <= (item.max_chars or len(marked)) else text  # no room for it: `omitted` says it
    passages = [{"passage_id": s.passage_id, "ordinal": s.ordinal, "start": s.start, "end": s.end, "score": sc, "text": s.text}
                for s, sc in kept]  # fmt: skip
    return {**base, "ok": True, "text": text, "passages": passages, "omitted": omitted.model_dump() if omitted else None}


# ----------------------------------------------------------------------------------------- index side


def indexed_spans(doc: dict[str, Any]) -> list[Span]:
    text = doc["text"]
    return [Span(p["ordinal"], p["start"], p["end"], text[p["start"] : p["end"]], p["passage_id"]) for p in doc["passages"]]


def live_spans(pipeline, page) -> list[Span]:
    """A live page cut into passages the way the served build chunked its documents."""
    from indexer.chunker import ChunkSettings, chunk_document
    from indexer.schema import Document

    chunking = pipeline.manifest.chunking or {}
    settings = ChunkSettings(target_words=int(chunking.get("target_words", 200)), overlap_words=int(chunking.get("overlap_words", 0)))
    passages = chunk_document(Document(doc_id="live", text=page.text, title=page.title), settings)
    return [Span(p.ordinal, p.start, p.end, p.text) for p in passages]


# ----------------------------------------------------------------------------------------- handler


@dataclass
class FetchContext:
    """What answering a fetch needs: the served pipeline and build version, the live fetcher, a way to
    run blocking work off the event loop, and the query cap."""

    pipeline: Any
    version: str
    fetcher: Any  # service.fetch_live.LiveFetcher
    run: Callable[..., Awaitable[Any]]
    max_query_chars: int | None


async def fetch_items(st: FetchContext, body: FetchRequest, request_id: str) -> dict[str, Any]:
    """Answer every item; unknown ids are a 404 for the request, live-fetch outcomes are per item."""
    from crawler.urls import canonicalize_url, doc_id_for
    from ranker.format import authority_dict
    from ranker.query import clean_query, termless_error
    from service.errors import ApiError
    from service.fetch_live import FetchFailure

    started = time.perf_counter()
    pipeline = st.pipeline
    for i, item in enumerate(body.items):
        if item.query is not None:
            item.query = str(clean_query(item.query, field=f"items[{i}].query", max_chars=st.max_query_chars))

    def resolve_targets() -> list[tuple[dict[str, Any] | None, int]]:
        """Each item's indexed document (None: a URL to fetch live) and the ordinal a read in order starts from."""
        for i, item in enumerate(body.items):  # refused as /v1/search refuses it: its ranking has a lexical leg too
            if item.query is not None and not pipeline.lexical.terms(item.query):
                raise termless_error(f"items[{i}].query")
        targets: list[tuple[dict[str, Any] | None, int]] = []
        for i, item in enumerate(body.items):
            if item.passage_id is not None:
                passage = pipeline.store.passage(item.passage_id)
                if passage is None:
                    raise ApiError(404, "not_found", f"unknown passage id {echo(item.passage_id)}", f"items[{i}].passage_id")
                targets.append((pipeline.store.document(passage.doc_id), passage.ordinal))
                continue
            # A URL is an indexed document's when one has it as its url, or as its id (ids may be URLs)
            doc_id = item.doc_id or pipeline.store.doc_id_for_url(item.url) or item.url
            doc = pipeline.store.document(doc_id)
            if item.doc_id is not None and doc is None:
                raise ApiError(404, "not_found", f"unknown document id {echo(item.doc_id)}", f"items[{i}].doc_id")
            targets.append((doc, 0))
        return targets

    targets = await st.run(resolve_targets)

    def authority(host: str | None) -> dict[str, Any] | None:
        return authority_dict(pipeline.authority.lookup(host)) if host else None

    async def one(item: FetchItem, doc: dict[str, Any] | None, first: int) -> dict[str, Any]:
        if doc is not None:
            base = {"source": "index", "doc_id": doc["doc_id"], "url": doc.get("url"), "title": doc["title"],
                    "domain": doc.get("domain"), "published": doc.get("published"),
                    "language": doc.get("language") or (doc.get("metadata") or {}).get("language"),  # stored or detected
                    "authority": authority(doc.get("url") or doc.get("domain"))}  # fmt: skip
            return await st.run(lambda: assemble(pipeline, item=item, title=doc["title"], spans=indexed_spans(doc), base=base, first=first))
        try:
            page, cached = await st.fetcher.fetch(item.url, lambda h: pipeline.authority.lookup(h) is not None)
        except FetchFailure as exc:  # a live fetch that failed: still the live source, and whose host it is
            host = urlsplit(item.url).hostname
            return {"ok": False, "source": "live", "url": item.url, "domain": host, "authority": authority(host),
                    "error": {"code": exc.code, "message": exc.message}}  # fmt: skip
        host = urlsplit(page.url).hostname
        base = {"source": "live", "doc_id": doc_id_for(canonicalize_url(page.url)), "url": page.url, "title": page.title,
                "domain": host, "published": page.published, "language": page.language, "authority": authority(host),
                "cached": cached}  # fmt: skip
        return await st.run(lambda: assemble(pipeline, item=item, title=page.title, spans=live_spans(pipeline, page), base=base))

    results = await asyncio.gather(*(one(item, doc, first) for item, (doc, first) in zip(body.items, targets)))
    return {"request_id": request_id, "index_version": st.version,
            "took_ms": round((time.perf_counter() - started) * 1000.0, 3), "results": results}  # fmt: skip
