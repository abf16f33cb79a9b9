"""Search-R1 compatibility: `POST /retrieve` with the request and response shapes of Search-R1's
retrieval server, so RL training code written against it runs against drsearch unchanged.

Mapping: each query is searched with the index's default mode and default options; a hit becomes
`{"id": passage_id, "contents": '"<title>"\\n<passage text>'}` (the layout of Search-R1's wiki-18
corpus, whose first line is the quoted title), `score` is drsearch's final ranking score.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ranker.options import UnicodeText
from service.api_models import MAX_K, MAX_QUERIES, error_responses

DEFAULT_TOPK = 3  # Search-R1's retrieval_topk default
# Search-R1's trainer posts all of a step's searches at once (train_grpo.sh: 512 prompts x 5 rollouts);
# its server takes any number. Larger than /v1/search's cap, searched in slices of MAX_QUERIES.
MAX_RETRIEVE_QUERIES = 8192


class RetrieveRequest(BaseModel):
    """Search-R1's `QueryRequest`: a batch of queries, `topk` results each, scores on request."""

    model_config = ConfigDict(extra="ignore")  # Search-R1 clients may send fields of newer versions

    # Search-R1's trainer posts every step's searches, none in a step where every rollout answered.
    queries: list[UnicodeText] = Field(..., max_length=MAX_RETRIEVE_QUERIES, description="Plain-text queries (none: no results)")
    # Lax types, as Search-R1's own model reads them ("3" and 3.0 are 3, "true" is true).
    topk: int | None = Field(None, ge=0, le=MAX_K, description=f"Results per query (0 or none: {DEFAULT_TOPK})")
    return_scores: bool = Field(False, description="Wrap each document as {document, score}")


class R1Document(BaseModel):
    id: str
    contents: str = Field(description='"<title>"\\n<passage text>')


class R1ScoredDocument(BaseModel):
    document: R1Document
    score: float


class RetrieveResponse(BaseModel):
    result: list[list[R1ScoredDocument]] | list[list[R1Document]]


def contents(title: str, text: str) -> str:
    """Search-R1's corpus layout: the quoted title on the first line, then the text. The title is made
    one line: Search-R1's client takes everything before the first newline as the title."""
    return f'"{" ".join(title.split())}"\n{text}'


def to_search_r1(results: list[list[Any]], return_scores: bool) -> dict[str, Any]:
    """Pipeline results (lists of `ranker.pipeline.Result`) in Search-R1's response shape."""
    out = []
    for rows in results:
        docs = [{"id": r.hit.passage_id, "contents": contents(r.passage.title, r.passage.text)} for r in rows]
        if return_scores:
            out.append([{"document": d, "score": float(r.hit.score)} for d, r in zip(docs, rows)])
        else:
            out.append(docs)
    return {"result": out}


def within(query: str, cap: int | None) -> str:
    """`query` (stripped) cut to at most `cap` characters, at the last whitespace inside when there is one."""
    query = query.strip()
    if cap is None or len(query) <= cap:
        return query
    cut = query[: cap + 1]
    space = max(cut.rfind(c) for c in " \t\n")
    return (cut[:space] if space > 0 else cut[:cap]).rstrip()


def search_searchable(pipeline: Any, texts: list[str | None], options: Any) -> list[list[Any]]:
    """`pipeline.batch_search` of the texts, those of stopwords only (which it refuses) and the None ones
    (nothing to search at all) left without results."""
    from indexer.errors import QueryError

    live = [i for i, text in enumerate(texts) if text is not None]
    try:
        found = pipeline.batch_search([texts[i] for i in live], options)
    except QueryError:  # rare: found out by the search; the analyzer asked per query only then
        live = [i for i in live if pipeline.lexical.terms(str(texts[i]))]  # a plain str for the JVM
        found = pipeline.batch_search([texts[i] for i in live], options) if live else []
    results: list[list[Any]] = [[] for _ in texts]
    for i, hits in zip(live, found):
        results[i] = hits
    return results


def router(require_api_key: Any) -> APIRouter:
    """The `/retrieve` route (the API key dependency is the app's)."""
    from service.app import _queued, _rate_limit, _snapshot, _svc

    api = APIRouter()

    @api.post(
        "/retrieve", response_model=RetrieveResponse, tags=["compat"],
        responses=error_responses(400, 401, 408, 413, 415, 422, 429, 500, 503, 504), dependencies=[Depends(require_api_key)],
    )  # fmt: skip
    async def retrieve(request: Request, body: RetrieveRequest) -> Any:
        """Search-R1-compatible batch retrieval (`{"result": [[...], ...]}`, one list per query)."""
        from ranker.pipeline import SearchOptions
        from ranker.query import clean_query, has_words

        st = _svc(request)
        # A rollout's empty search (`<search></search>`) or one of symbols only has nothing to search: it
        # gets no documents, as from Search-R1's retrievers, instead of failing every rollout's batch.
        # One longer than the server's query cap is searched by its first words, as Search-R1's retrievers
        # read a query up to their encoder's length, not refused with every rollout's batch.
        cap = st.settings.max_query_chars
        cut = [within(q, cap) for q in body.queries]
        texts = [clean_query(q, field=f"queries[{i}]", max_chars=cap) if has_words(q) else None
                 for i, q in enumerate(cut)]  # fmt: skip
        request.state.n_queries = len(texts)
        if not any(texts):
            return to_search_r1([[] for _ in texts], body.return_scores)
        _rate_limit(st, request.headers.get("x-api-key", ""), len(texts))  # every query counts, once
        with _snapshot(st) as snap:
            k = body.topk or DEFAULT_TOPK
            mode = request.state.mode = snap.pipeline.resolve_mode(None)
            results: list[list[Any]] = []
            # Slices of /v1/search's size, one after another: each passes the admission queue and is bounded
            # by the server's deadline (504 deadline_exceeded) as a request of that size is, so a rollout
            # step's thousands of queries neither take the queue alone nor need a deadline of their own.
            for start in range(0, len(texts), MAX_QUERIES):
                part = texts[start : start + MAX_QUERIES]
                if not any(part):
                    results += [[] for _ in part]
                    continue
                results += await _queued(st, sum(map(bool, part)), k, mode, lambda bounds, part=part: st.run(
                    search_searchable, snap.pipeline, part, SearchOptions(k=k, **bounds)))  # fmt: skip
        return to_search_r1(results, body.return_scores)

    return api
