"""The two agent tools (search, fetch) as plain async calls over one served index, for the MCP
server: the same request models, options and output shapes as `POST /v1/search` and `/v1/fetch`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from service.api_models import SearchRequest
from service.fetch import FetchContext, FetchRequest, FetchResponse, fetch_items


T = TypeVar("T")
Admit = Callable[[int, int, str, Callable[[dict[str, Any]], Awaitable[Any]]], Awaitable[Any]]


async def unlimited(n_queries: int, k: int, mode: str, search: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
    return await search({})


class AgentTools:
    """`context()` enters one consistent view of the index and yields a `FetchContext` for it;
    `admit(n_queries, k, mode, search)` runs `search(bounds)` in a server's rate limit and admission queue
    (429 at once), giving it the options that bound its work (deadline, candidate cap), and answers by
    that deadline (DeadlineExceeded, 504 over HTTP). `request_id` is what fetch answers name as theirs
    (MCP calls carry none of their own)."""

    def __init__(self, context: Callable[[], AbstractContextManager[FetchContext]], admit: Admit = unlimited,
                 request_id: str = "mcp"):  # fmt: skip
        self.context, self.admit, self.request_id = context, admit, request_id

    async def search(self, body: SearchRequest) -> dict[str, Any]:
        from indexer.errors import QueryError
        from ranker.query import as_listed, clean_query
        from service.app import _format, _options

        started = time.perf_counter()
        with self.context() as ctx:
            texts = [clean_query(q, field=f"queries[{i}]" if body.queries is not None else "query",
                                 max_chars=ctx.max_query_chars) for i, q in enumerate(body.query_list)]  # fmt: skip
            mode = ctx.pipeline.resolve_mode(body.mode)
            k = body.k * len(texts) if body.dedupe_across_queries and len(texts) > 1 else body.k
            undated = [0] * len(texts)
            try:
                results = await self.admit(len(texts), body.k, mode, lambda bounds: ctx.run(
                    ctx.pipeline.batch_search, texts, _options(body, mode, k, **bounds), None, undated))
            except QueryError as exc:  # e.g. a query without searchable terms
                raise as_listed(exc) if body.queries is not None else exc
            modes = [ctx.pipeline.mode_used(t, mode) for t in texts]
            payload = await ctx.run(_format, results, texts, body, undated, modes)
            return {"index_version": ctx.version, "mode": mode,
                    "took_ms": round((time.perf_counter() - started) * 1000.0, 3), **payload}  # fmt: skip

    async def fetch(self, body: FetchRequest) -> dict[str, Any]:
        with self.context() as ctx:
            payload = await fetch_items(ctx, body, request_id=self.request_id)
        # Every field of every item, as `/v1/fetch` answers through its response model (a failed item too).
        return FetchResponse.model_validate(payload).model_dump(mode="json")


@asynccontextmanager
async def standalone(index: Path, settings: Any, *, validated: bool = False,
                     request_id: str = "mcp") -> AsyncIterator[AgentTools]:  # fmt: skip
    """The tools over an index opened in this process (`drsearch mcp`, `drsearch fetch`);
    `settings` is a `service.settings.ServiceSettings` (fetch limits, query cap). `validated`: every leg
    opened, checked and warmed up first, the query model loaded, as `serve` does (`drsearch mcp`, whose
    searches run under the server's deadline: a first search loading the JVM and the model ran past it)."""
    from indexer import layout
    from ranker.pipeline import SearchPipeline
    from service.app import _fetcher, bounded
    from service.validate import open_validated

    opened = await asyncio.to_thread(layout.resolve_build, index) if validated else index
    opener = partial(open_validated, load_model=settings.warmup) if validated else SearchPipeline.open
    pipeline = await asyncio.to_thread(opener, opened)
    fetcher = _fetcher(settings)

    async def run(fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    ctx = FetchContext(pipeline, pipeline.version, fetcher, run, settings.max_query_chars)
    try:
        yield AgentTools(lambda: nullcontext(ctx), admit=partial(bounded, settings), request_id=request_id)
    finally:
        await fetcher.close()
        pipeline.close()


def render_search(payload: dict[str, Any]) -> str:
    """A compact rendering for a model's context: per query, rank, title, domain, tier, date, snippet, ids."""
    lines = []
    for r in payload["results"]:
        lines.append(f"## {r['query']}")
        if not r["hits"]:
            lines.append("(no results)")
        for h in r["hits"]:
            auth = h.get("authority") or {}
            tier = f"tier {auth['tier']} {auth['name']}" if auth else "unlisted source"
            meta = " | ".join(x for x in (h.get("domain") or "", tier, h.get("published") or "undated") if x)
            lines.append(f"{h['rank']}. {h['title']} [{meta}]")
            lines.append(f"   {h.get('text') or h['snippet']}")
            lines.append(f"   fetch: doc_id={h['doc_id']} passage_id={h['passage_id']}")
        if r.get("undated_dropped"):
            lines.append(f"({r['undated_dropped']} undated document(s) dropped by the date filter)")
    return "\n".join(lines)


def render_fetch(payload: dict[str, Any]) -> str:
    lines = []
    for i, r in enumerate(payload["results"], 1):
        if not r["ok"]:
            lines.append(f"[{i}] {r.get('url')}: error {r['error']['code']}: {r['error']['message']}")
            continue
        auth = r.get("authority") or {}
        tier = f", tier {auth['tier']} {auth['name']}" if auth else ""
        lines.append(f"[{i}] {r['title']} ({r.get('url') or r['doc_id']}; {r['source']}{tier}; {r.get('published') or 'undated'})")
        lines.append(r["text"] or "")
    return "\n\n".join(lines)
