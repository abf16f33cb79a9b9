"""The HTTP search API: a FastAPI app built by `create_app(settings)`; all state lives on `app.state`.

Run it with `drsearch serve --index DIR` (or `uvicorn service.app:app_from_env --factory`,
settings from DRSEARCH_SERVE_* env vars).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response

from backends.lucene.jvm import heap_bytes as jvm_heap_bytes
from backends.lucene.jvm import start_jvm
from backends.threads import set_budget, worker_budget
from indexer import layout
from indexer.errors import QueryError, echo
from indexer.lifeline import die_with_parent
from ranker.budget import DeadlineExceeded, RankedList
from ranker.query import as_listed, check_length
from service import malloc
from service.api_models import (
    DocumentResponse,
    HealthResponse,
    PassageResponse,
    ReloadRequest,
    ReloadResponse,
    SearchRequest,
    SearchResponse,
    error_responses,
)
from service.admission import Admission, RateLimiter, request_cost
from service.auth import require_admin_key, require_api_key
from service.batching import MicroBatcher, search_together
from service.priority import bulk_executor
from service.guard import deadline_for, within
from service.errors import ApiError, SafeJSONResponse, install_error_handlers
from service.fetch import FetchRequest, FetchResponse
from service.index_state import IndexState, LRUCache, Snapshot, public_manifest
from service.metrics import Metrics
from service.middleware import RequestMiddleware, StartupErrorMiddleware
from service.page import router as page_router
from service.settings import ServiceSettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger("drsearch.service")

API_VERSION = "1"
GAUGE_SAMPLE_S = 1.0  # how stale another worker's gauges may be in a scrape (serve --workers N)
T = TypeVar("T")


# --------------------------------------------------------------------------------------------- state


@dataclass
class ServiceState:
    settings: ServiceSettings
    metrics: Metrics
    cache: LRUCache
    admission: Admission
    limiter: RateLimiter | None = None
    executor: ThreadPoolExecutor | None = None
    bulk: ThreadPoolExecutor | None = None  # large requests, at a lower priority (service.priority)
    index: IndexState | None = None
    batcher: MicroBatcher | None = None
    fetcher: Any = None  # service.fetch_live.LiveFetcher

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args))

    async def run_bulk(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.bulk, partial(fn, *args))


def _open_pipeline(build: Path, *, warmup: bool):
    """The build's pipeline once every leg opened and answered a warm-up query (else IndexInvalidError)."""
    from service.validate import open_validated

    return open_validated(build, load_model=warmup)


def _configure_logging() -> None:
    for name in ("drsearch.access", "drsearch.service"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s" if name == "drsearch.access" else
                                                   "%(asctime)s %(levelname)s %(name)s: %(message)s"))  # fmt: skip
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(logging.INFO)
    # The MCP SDK logs a refused Host or Origin header's value (3,000 characters of it, unformatted and
    # without a request id); headers are never logged here. The refusal is in the access log (403, 421).
    logging.getLogger("mcp.server.transport_security").setLevel(logging.ERROR)


# --------------------------------------------------------------------------------------------- app


def create_app(settings: ServiceSettings) -> FastAPI:
    """A FastAPI app serving `settings.index`; the index is opened by the lifespan, once."""
    _configure_logging()

    stack = AsyncExitStack()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        st: ServiceState = app.state.svc
        malloc.tune()  # before the model and the index allocate anything
        # One thread budget per worker for torch (its own count, `torch_threads`), FAISS, ONNX Runtime and Lucene
        # (docs/OPERATIONS.md).
        set_budget(worker_budget(settings.workers), torch_threads=settings.torch_threads)
        st.executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="drsearch-search")
        st.bulk = bulk_executor(max(1, settings.threads // 2), settings.bulk_nice)
        st.index = IndexState(settings.index, partial(_open_pipeline, warmup=settings.warmup), st.executor)
        st.index.on_swap.append(lambda snap: _on_swap(st, snap))
        st.fetcher = _fetcher(settings)
        watcher = sampler = None
        try:
            await asyncio.get_running_loop().run_in_executor(st.executor, start_jvm, settings.jvm_heap)
            await stack.enter_async_context(mcp_sessions)
            await asyncio.get_running_loop().run_in_executor(st.executor, st.index.load)
            st.batcher = MicroBatcher(
                st.executor, window_s=settings.batch_window_ms / 1000.0, max_queries=settings.batch_max_queries,
                max_batches=settings.batch_max_inflight, on_batch=st.metrics.observe_batch,
                run_batch=malloc.then_release(search_together),
            )  # fmt: skip
            snap = st.index.current
            log.info("serving index %s (%s) on %d thread(s)", snap.version if snap else "?", settings.index, settings.threads)
            if settings.watch_s > 0:
                watcher = asyncio.create_task(_watch(st, settings.watch_s))
            if st.metrics.shared_dir:
                sampler = asyncio.create_task(_sample_gauges_every(st, GAUGE_SAMPLE_S))
            yield
        finally:
            for task in (watcher, sampler):
                if task is not None:
                    task.cancel()
            index, st.index = st.index, None
            index.close()
            await st.fetcher.close()
            st.executor.shutdown(wait=False, cancel_futures=True)
            st.bulk.shutdown(wait=False, cancel_futures=True)
            await stack.aclose()
            if onnx := sys.modules.get("backends.faiss.onnx"):  # loaded only by an index with an ONNX encoder
                onnx.remove_process_folder()

    app = FastAPI(
        title="drsearch", version=API_VERSION, lifespan=lifespan, default_response_class=SafeJSONResponse,
        redirect_slashes=False,  # `/v1/search/` is answered as `/v1/search` (service.middleware), not redirected
        description="Batch-first paragraph-level hybrid search with authority-aware ranking. "
        "Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`.",
    )  # fmt: skip
    metrics = Metrics()
    limiter = RateLimiter(settings.rate_limit_qps, settings.rate_limit_burst) if settings.rate_limit_qps and settings.api_key else None
    app.state.svc = ServiceState(settings=settings, metrics=metrics, cache=LRUCache(settings.cache_size, settings.cache_max_bytes),
                                 admission=Admission(settings.queue_units, settings.retry_after_s), limiter=limiter)  # fmt: skip
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics,
                       body_timeout_s=settings.body_timeout_s, api_key=settings.api_key, admin_key=settings.admin_key)  # fmt: skip
    app.add_middleware(StartupErrorMiddleware)
    _add_routes(app)
    app.include_router(page_router)  # GET /: the search page for people
    from service import mcp_server, search_r1

    app.include_router(search_r1.router(require_api_key))
    mcp_sessions = mcp_server.mount(app, _agent_tools(app.state.svc), settings.host, settings.api_key)
    return app


def _fetcher(settings: ServiceSettings):
    from service.fetch_live import FetchLimits, LiveFetcher

    limits = FetchLimits(
        any_host=settings.fetch_any_host, allow_loopback=settings.fetch_allow_loopback,
        extra_hosts=tuple(h.lower() for h in settings.fetch_allow_hosts), timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.fetch_max_bytes, max_redirects=settings.fetch_max_redirects, cache_ttl_s=settings.fetch_cache_ttl_s,
        extract_threads=settings.fetch_extract_threads,
    )  # fmt: skip
    return LiveFetcher(limits)


def _agent_tools(st: ServiceState):
    """The MCP tools over this app's served index (one snapshot per call)."""
    from service.agent_tools import AgentTools

    @contextmanager
    def context():
        with _snapshot(st) as snap:
            yield _fetch_context(st, snap)

    # MCP over HTTP passes the server's one API key (service.mcp_server), so its calls share that key's bucket.
    return AgentTools(context, admit=partial(_admitted, st, st.settings.api_key or ""))


def _fetch_context(st: ServiceState, snap: Snapshot):
    from service.fetch import FetchContext

    return FetchContext(snap.pipeline, snap.version, st.fetcher, st.run, st.settings.max_query_chars)


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory` / multi-worker serving: settings from the environment.

    A worker process of `serve --workers N` dies with its master, so a killed master leaves no
    worker holding the port; uvicorn's supervisor restarts a worker that dies.
    """
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None:
        die_with_parent(parent.pid)
    return create_app(ServiceSettings())


async def _watch(st: ServiceState, every_s: float) -> None:
    """Follow `current`: reload when it points at another build (each worker process does this itself)."""
    last_failure = ""
    while True:
        await asyncio.sleep(every_s)
        if st.index is None:
            return
        try:
            swapped, old, new = await st.index.reload()
        except Exception as exc:  # noqa: BLE001 - a broken new build must not stop the serving one
            if str(exc) != last_failure:  # the same refused build: counted and logged once, not every tick
                last_failure = str(exc)
                st.metrics.reloads.labels("failed").inc()
                log.warning("watch: build refused, still serving the loaded one: %s", exc)
            continue
        last_failure = ""
        if swapped:
            st.metrics.reloads.labels("swapped").inc()
            log.info("watch: reloaded %s -> %s", old, new)


def _on_swap(st: ServiceState, snap: Snapshot) -> None:
    st.cache.clear()
    p = snap.pipeline
    st.metrics.set_index(snap.version, f"{layout.BUILDS_DIR}/{Path(p.build_dir).name}", p.default_mode, p.authority_info["content_hash"] or "")


def _sample_gauges(st: ServiceState) -> None:
    """The gauges read off the live state: cache size, queue depth, JVM heap."""
    m = st.metrics
    m.cache_entries.set(len(st.cache))
    m.cache_bytes.set(st.cache.bytes)
    m.queue_units.set(st.admission.in_use)
    m.queue_requests.set(st.admission.requests)
    if (heap := jvm_heap_bytes()) is not None:
        m.jvm_heap.labels("used").set(heap[0])
        m.jvm_heap.labels("max").set(heap[1])


async def _sample_gauges_every(st: ServiceState, every_s: float) -> None:
    """With workers, a scrape sums every worker's gauges but samples only its own: the others sample theirs here."""
    while True:
        _sample_gauges(st)
        await asyncio.sleep(every_s)


def _svc(request: Request) -> ServiceState:
    return request.app.state.svc


@contextmanager
def _snapshot(st: ServiceState) -> Iterator[Snapshot]:
    """The current index snapshot, held for the whole request (a reload waits for it), or 503."""
    index = st.index
    snap = index.acquire() if index is not None else None
    if snap is None:
        raise ApiError(503, "unavailable", "index not loaded")
    try:
        yield snap
    finally:
        index.release(snap)


# --------------------------------------------------------------------------------------------- search


def _options(body: SearchRequest, mode: str, k: int, **changes: Any):
    """The pipeline's options for a request: its own, with k (dedupe included) past the offset, the mode
    resolved and the server's `changes` (candidate cap, deadline). Scored as a list of the request's own
    k: what the offset or the refill of lists deduplicated across queries adds ranks after it, so a query's
    hits and scores are the ones it gets alone."""
    return body.to_search(k=body.offset + k, page_size=body.k, mode=mode, **changes)


def _cache_key(version: str, body: SearchRequest, mode: str, options) -> str:
    """The request as the cache sees it: every field of the model (options included, domains
    already normalised, queries already cleaned), with the mode resolved and `query` as `queries`;
    not the deadline asked for; `now` enters as the date bound it implies (a time_range moves with the clock).
    Kept as its sha256: a request can be far larger than its answer (64 long queries, 2,000 domains),
    and the cache's byte bound counts its entries' answers."""
    key = body.model_dump(mode="json", exclude={"query", "queries", "timeout_ms", "now"})
    key.update(v=version, queries=body.query_list, mode=mode, after=options.filters.published_after)
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass")).hexdigest()  # fmt: skip


def _format(results: list[list[Any]], texts: list[str], body: SearchRequest, undated: list[int],
            modes: list[str]) -> dict[str, Any]:
    """Hits as `result_dicts`, the page `offset..offset+k` of each ranking, within the output budgets.

    With dedupe_across_queries, passages already returned are dropped and lists cut to k; with dedupe_text,
    passages whose text was returned too (a later query's best copy of a text may be another document's)."""
    from indexer.columns import text_hash
    from ranker.output_budget import apply_budgets
    from ranker.format import result_dicts

    pages = []
    seen: set[object] = set()
    shown_as = (lambda r: text_hash(r.passage.text)) if body.dedupe_text else (lambda r: r.hit.passage_id)
    if body.offset and all(len(rows) <= body.offset for rows in results):
        n = max(len(rows) for rows in results)
        raise ApiError(400, "invalid_query", f"offset {body.offset} is beyond the {n} ranked results", "offset")
    for ranked in results:
        rows = ranked[body.offset :]
        if body.dedupe_across_queries:
            keyed = [(shown_as(r), r) for r in rows]  # a text's hash computed once a row
            kept = [(key, r) for key, r in keyed if key not in seen][: body.k]
            seen.update(key for key, _ in kept)
            rows = [replace(r, hit=r.hit.with_(rank=body.offset + i)) for i, (_, r) in enumerate(kept, 1)]
        pages.append(rows)
    hits = iter(result_dicts([(r, text) for text, rows in zip(texts, pages) for r in rows],
                             snippet_chars=body.snippet_chars, return_text=body.return_text))  # fmt: skip
    out = []
    for text, ranked, rows, n_undated, mode_used in zip(texts, results, pages, undated, modes):
        entry = {"query": text, "mode_used": mode_used, "hits": list(islice(hits, len(rows))),
                 "exhausted": getattr(ranked, "exhausted", True), "candidates_examined": getattr(ranked, "examined", None),
                 "undated_dropped": n_undated}  # fmt: skip
        if getattr(ranked, "partial", False):
            entry["partial"] = True
        out.append(entry)
    payload: dict[str, Any] = {"results": out}
    if body.max_chars_per_hit is not None or body.max_total_chars is not None:
        payload["budget"] = apply_budgets(out, per_hit=body.max_chars_per_hit, total=body.max_total_chars)
    return payload


async def _search(request: Request, body: SearchRequest) -> Response:
    started = time.perf_counter()
    st = _svc(request)
    deadline, budget_s = deadline_for(body.timeout_ms, st.settings.deadline_ms)
    texts = body.query_list  # cleaned by the request model; the server's length cap applies here
    for i, q in enumerate(texts):
        check_length(q, st.settings.max_query_chars, field=f"queries[{i}]" if body.queries is not None else "query")
    request.state.n_queries = len(texts)
    with _snapshot(st) as snap:
        pipeline = snap.pipeline
        mode = pipeline.resolve_mode(body.mode)
        request.state.mode = mode
        k = body.k * len(texts) if body.dedupe_across_queries and len(texts) > 1 else body.k
        options = _options(body, mode, k, max_candidates=st.settings.max_candidates, deadline=deadline,
                           partial=body.allow_partial)  # fmt: skip
        key = _cache_key(snap.version, body, mode, options)
        _rate_limit(st, request.headers.get("x-api-key", ""), len(texts))  # a cached answer counts too
        payload = st.cache.get(key)
        if payload is not None:
            st.metrics.queries.labels(mode).inc(len(texts))
            st.metrics.cache_hits.inc()
            request.state.cache = "hit"
        else:
            st.metrics.cache_misses.inc()
            request.state.cache = "miss"
            cost = request_cost(len(texts), body.k, mode)
            release = _take_units(st, cost)
            st.metrics.queries.labels(mode).inc(len(texts))  # admitted: a 429 searched nothing
            bulk = st.admission.is_large(cost)  # computed on the low-priority threads (service.priority)
            run = st.run_bulk if bulk else st.run
            undated = [0] * len(texts)
            dated = bool(options.filters.published_after or options.filters.published_before)
            # The response is formatted on the thread that ranked it, right after: one trip to a thread per request.
            formatted = partial(_formatted, texts=texts, body=body, undated=undated, pipeline=pipeline, mode=mode)
            if st.settings.batching and st.batcher is not None and not dated and not bulk:
                work = asyncio.ensure_future(st.batcher.submit(pipeline, options, texts, then=formatted))
            else:  # no merging: a large request gains nothing from it; a date bound counts the undated documents it drops
                st.metrics.observe_batch(1, len(texts))
                ranked = partial(pipeline.batch_search, texts, options, None, undated)
                work = asyncio.ensure_future(run(malloc.then_release(lambda: formatted(ranked()))))
            try:
                answer = await _answer_within(work, release, deadline, budget_s, partial=body.allow_partial)
            except QueryError as exc:  # e.g. a query without searchable terms
                raise as_listed(exc) if body.queries is not None else exc
            except DeadlineExceeded:
                if not body.allow_partial:
                    raise
                # Nothing was ranked by the deadline (e.g. the queries were still being encoded): the
                # partial answer the caller asked for is an empty list per query, not a 504. Formatted
                # here: empty lists need no thread, and the threads may be busy well past the deadline.
                answer = formatted([RankedList.of([], examined=0, exhausted=False, partial=True) for _ in texts])
            entries, payload = answer
            # An answer of a build swapped out meanwhile is not kept: the swap emptied the cache, and a
            # forced reload of the same build (an edited authority list) keeps its version, so its key.
            current = st.index is not None and st.index.current is snap
            if current and not any(entry.get("partial") for entry in entries["results"]):
                st.cache.put(key, payload)
    meta = {"request_id": request.state.request_id, "index_version": snap.version,
            "took_ms": round((time.perf_counter() - started) * 1000.0, 3), "mode": mode, "cached": request.state.cache == "hit"}  # fmt: skip
    head = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))[:-1].encode()
    return Response(head + b"," + payload[1:], media_type="application/json")


def _formatted(results: list[list[Any]], *, texts: list[str], body: SearchRequest, undated: list[int],
               pipeline: Any, mode: str) -> tuple[dict[str, Any], bytes]:
    """`_format` and its `_encode` of a request's ranked `results` (on the thread that ranked them).
    Each query's `mode_used` is asked for after the ranking, which has found it by then (a single
    query's is found after its encode, not before it: `SearchPipeline.rank`)."""
    formatted = _format(results, texts, body, undated, [pipeline.mode_used(t, mode) for t in texts])
    return formatted, _encode(formatted)


def _encode(payload: dict[str, Any]) -> bytes:
    """The payload (`results`, `budget`) as a JSON object in bytes: what the byte-bounded cache holds
    and the response embeds after its own fields. orjson writes the bytes `json.dumps` would
    (compact, UTF-8) in about an eighth of the time (~0.25 against ~2.1 ms for 32 queries of 10
    hits); what it refuses (a lone surrogate, a number type of its own) goes to `json`, whose
    "backslashreplace" keeps such a text as its escape instead of failing the response."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


def _rate_limit(st: ServiceState, key: str, n_queries: int) -> None:
    """The per-key rate limit (when set): `n_queries` tokens from `key`'s bucket, or 429 at once."""
    if st.limiter is not None:
        try:
            st.limiter.take(key, n_queries)
        except ApiError as exc:
            st.metrics.rejected.labels(exc.code).inc()
            raise


def _take_units(st: ServiceState, cost: int) -> Callable[[], None]:
    """`cost` units of the admission queue -> their release, or 429 at once."""
    try:
        return st.admission.take(cost)
    except ApiError as exc:
        st.metrics.rejected.labels(exc.code).inc()
        raise


async def _answer_within(work: asyncio.Future, release: Callable[[], None], deadline: float, budget_s: float, *,
                         partial: bool = False) -> Any:  # fmt: skip
    """`work`'s result, or DeadlineExceeded (504 `deadline_exceeded`) when the deadline passes first; the
    queue units (`release`) stay held until the work really stops, not only until the 504."""
    work.add_done_callback(lambda _: release())
    try:
        return await within(deadline, budget_s, asyncio.shield(work), partial=partial)
    except BaseException:
        work.add_done_callback(_consume)
        raise


async def _admitted(st: ServiceState, key: str, n_queries: int, k: int, mode: str,
                    search: Callable[[dict[str, Any]], Awaitable[T]]) -> T:  # fmt: skip
    """The search behind `/retrieve` and MCP with the rate limit, admission and deadline `/v1/search` has:
    `search(bounds)`, given the options that bound its work (the server's deadline and candidate cap),
    answered by that deadline or DeadlineExceeded (504 `deadline_exceeded`)."""
    _rate_limit(st, key, n_queries)
    return await _queued(st, n_queries, k, mode, search)


async def _queued(st: ServiceState, n_queries: int, k: int, mode: str,
                  search: Callable[[dict[str, Any]], Awaitable[T]]) -> T:  # fmt: skip
    """`_admitted` without the rate limit: the admission queue's units and the deadline. Admitted queries
    count in `drsearch_search_queries_total` as /v1/search's do (those of /retrieve and MCP went uncounted)."""
    release = _take_units(st, request_cost(n_queries, k, mode))
    st.metrics.queries.labels(mode).inc(n_queries)
    return await _within_deadline(st.settings, search, release)


async def bounded(settings: ServiceSettings, n_queries: int, k: int, mode: str,
                  search: Callable[[dict[str, Any]], Awaitable[T]]) -> T:  # fmt: skip
    """The agent tools' admission in a process that serves one client (`drsearch mcp` on stdio): the
    deadline and candidate cap `serve` gives a search, without its rate limit and queue."""
    return await _within_deadline(settings, search)


async def _within_deadline(settings: ServiceSettings, search: Callable[[dict[str, Any]], Awaitable[T]],
                           release: Callable[[], None] = lambda: None) -> T:  # fmt: skip
    """`search(bounds)` given the deadline and candidate cap of `settings`, answered by that deadline or
    DeadlineExceeded; `release` (the queue units it holds) runs once the work really stops."""
    deadline, budget_s = deadline_for(None, settings.deadline_ms)
    try:
        work = asyncio.ensure_future(search({"deadline": deadline, "max_candidates": settings.max_candidates}))
    except BaseException:  # e.g. options refused before any work started
        release()
        raise
    try:
        return await _answer_within(work, release, deadline, budget_s)
    except DeadlineExceeded:  # said without /v1/search's timeout_ms and allow_partial, which these callers lack
        raise DeadlineExceeded(f"search did not finish within the server's deadline of {budget_s * 1000:.0f} ms "
                               "(DRSEARCH_SERVE_DEADLINE_MS); ask for fewer queries or fewer results") from None


def _consume(task: asyncio.Future) -> None:
    """Retrieve the outcome of work whose caller stopped waiting (no 'exception never retrieved' warning)."""
    if not task.cancelled():
        task.exception()


# --------------------------------------------------------------------------------------------- routes


def _add_routes(app: FastAPI) -> None:
    search_errors = error_responses(400, 401, 408, 413, 415, 422, 429, 500, 503, 504)

    @app.post(
        "/v1/search", response_model=None, tags=["search"],
        responses={200: {"model": SearchResponse, "description": "One ranked hit list per query, in request order"}, **search_errors},
        dependencies=[Depends(require_api_key)],
    )  # fmt: skip
    async def search(request: Request, body: SearchRequest) -> Response:
        """Search a batch of queries (1-64) sharing one set of options."""
        return await _search(request, body)

    @app.post(
        "/v1/fetch", response_model=FetchResponse, tags=["fetch"],
        responses=error_responses(400, 401, 404, 408, 413, 415, 422, 500, 503), dependencies=[Depends(require_api_key)],
    )  # fmt: skip
    async def fetch(request: Request, body: FetchRequest) -> Any:
        """Open 1-16 documents by id or URL (live fetch when not indexed), whole or focused on a query."""
        from service.fetch import fetch_items

        st = _svc(request)
        request.state.n_queries = len(body.items)
        with _snapshot(st) as snap:
            return await fetch_items(_fetch_context(st, snap), body, request.state.request_id)

    @app.get(
        "/v1/documents/{doc_id:path}", response_model=DocumentResponse, tags=["fetch"],
        responses=error_responses(401, 404, 422, 500, 503), dependencies=[Depends(require_api_key)],
    )  # fmt: skip
    async def get_document(request: Request, doc_id: str) -> Any:
        """A document's metadata, full text and passages with character offsets. URL-encode `#` as %23."""
        st = _svc(request)
        with _snapshot(st) as snap:
            doc = await st.run(snap.pipeline.document, doc_id)
            if doc is None:
                raise ApiError(404, "not_found", f"unknown document id {echo(doc_id)}", "doc_id")
            doc["index_version"] = snap.version
            return doc

    @app.get(
        "/v1/passages/{passage_id:path}", response_model=PassageResponse, tags=["fetch"],
        responses=error_responses(401, 404, 422, 500, 503), dependencies=[Depends(require_api_key)],
    )  # fmt: skip
    async def get_passage(request: Request, passage_id: str) -> Any:
        """One passage with its document's display fields. URL-encode `#` as %23."""
        st = _svc(request)
        with _snapshot(st) as snap:
            out = await st.run(snap.pipeline.passage, passage_id)
            if out is None:
                raise ApiError(404, "not_found", f"unknown passage id {echo(passage_id)}", "passage_id")
            out["index_version"] = snap.version
            return out

    @app.get("/healthz", response_model=HealthResponse, response_model_exclude_none=True, tags=["ops"])
    async def healthz() -> Any:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=HealthResponse, tags=["ops"], responses=error_responses(503))
    async def readyz(request: Request) -> Any:
        """200 once an index is loaded, else 503."""
        st = _svc(request)
        snap = st.index.current if st.index is not None else None
        if snap is None:
            raise ApiError(503, "unavailable", "index not loaded")
        return {"status": "ready", "index_version": snap.version}

    @app.get("/v1/index", tags=["ops"], responses=error_responses(503))
    async def index_info(request: Request) -> dict[str, Any]:
        """The served build's manifest, default mode and the authority list's content hash."""
        st = _svc(request)
        with _snapshot(st) as snap:
            p = snap.pipeline
            return {
                "version": snap.version, "build_dir": f"{layout.BUILDS_DIR}/{Path(p.build_dir).name}",
                "default_mode": p.default_mode, "has_dense": p.has_dense,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snap.loaded_at)),
                "authority": p.authority_info,
                "manifest": public_manifest(p.manifest.as_json()),
            }  # fmt: skip

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})  # fmt: skip
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (under `serve --workers N`, of every worker: see docs/API.md)."""
        st = _svc(request)
        _sample_gauges(st)
        return Response(st.metrics.render(), media_type=st.metrics.content_type)

    @app.get("/v1/tool-schema", tags=["search"])
    async def get_tool_schema() -> dict[str, Any]:
        """Both agent tools (`search`, `fetch`) in the OpenAI function-calling format, generated from the request models."""
        from service.tool_schemas import openai_tools

        return {"tools": openai_tools()}

    @app.post(
        "/v1/admin/reload", response_model=ReloadResponse, tags=["admin"],
        responses=error_responses(401, 403, 409, 422, 500, 503), dependencies=[Depends(require_admin_key)],
    )  # fmt: skip
    async def reload(request: Request, force: bool = Query(False, description="Reopen even if `current` is unchanged"),
                     body: ReloadRequest | None = None) -> Any:  # fmt: skip
        """Open the newest `current` build and swap it in atomically; in-flight requests finish on the old one.
        `force` may come as `?force=true` or in a JSON body, `{"force": true}`; no body is needed."""
        from service.validate import IndexInvalidError

        st = _svc(request)
        if st.index is None:
            raise ApiError(503, "unavailable", "index not loaded")
        started = time.perf_counter()
        try:
            swapped, old, new = await st.index.reload(force=force or (body is not None and body.force), retry_refused=True)
        except Exception as exc:  # refused (409 index_invalid) or unexpected (500): the old build keeps serving either way
            st.metrics.reloads.labels("failed").inc()
            if isinstance(exc, IndexInvalidError):  # an unexpected error is logged with its traceback by the middleware
                log.warning("reload (request_id %s): build refused, still serving the loaded one: %s", request.state.request_id, exc)
            raise
        st.metrics.reloads.labels("swapped" if swapped else "unchanged").inc()
        log.info("reload: %s -> %s (swapped=%s)", old, new, swapped)
        return {"reloaded": swapped, "old_version": old, "new_version": new,
                "took_ms": round((time.perf_counter() - started) * 1000.0, 3)}  # fmt: skip
