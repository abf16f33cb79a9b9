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

from service.api_models import MAX_QUERIES, error_responses

DEFAULT_TOPK = 3  # Search-R1's retrieval_topk default


class RetrieveRequest(BaseModel):
    """Search-R1's `QueryRequest`: a batch of queries, `topk` results each, scores on request."""

    model_config = ConfigDict(extra="ignore")  # Search-R1 clients may send fields of newer versions

    queries: list[str] = Field(..., min_length=1, max_length=MAX_QUERIES, description="Plain-text queries")
    topk: int | None = Field(None, strict=True, ge=1, le=100, description=f"Results per query (default {DEFAULT_TOPK})")
    return_scores: bool = Field(False, strict=True, description="Wrap each document as {document, score}")


class R1Document(BaseModel):
    id: str
    contents: str = Field(description='"<title>"\\n<passage text>')


class R1ScoredDocument(BaseModel):
    document: R1Document
    score: float


class RetrieveResponse(BaseModel):
    result: list[list[R1ScoredDocument]] | list[list[R1Document]]


def contents(title: str, text: str) -> str:
    """Search-R1's corpus layout: the quoted title on the first line, then the text."""
    return f'"{title}"\n{text}'


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


def router(require_api_key: Any) -> APIRouter:
    """The `/retrieve` route (the API key dependency is the app's)."""
    from service.app import _admitted, _snapshot, _svc

    api = APIRouter()

    @api.post(
        "/retrieve", response_model=RetrieveResponse, tags=["compat"],
        responses=error_responses(400, 401, 413, 422, 429, 500, 503, 504), dependencies=[Depends(require_api_key)],
    )  # fmt: skip
    async def retrieve(request: Request, body: RetrieveRequest) -> Any:
        """Search-R1-compatible batch retrieval (`{"result": [[...], ...]}`, one list per query)."""
        from indexer.errors import QueryError
        from ranker.pipeline import SearchOptions
        from ranker.query import as_listed, clean_query

        st = _svc(request)
        texts = [clean_query(q, field=f"queries[{i}]", max_chars=st.settings.max_query_chars)
                 for i, q in enumerate(body.queries)]  # fmt: skip
        request.state.n_queries = len(texts)
        with _snapshot(st) as snap:
            k = body.topk or DEFAULT_TOPK
            mode = request.state.mode = snap.pipeline.resolve_mode(None)
            with _admitted(st, request.headers.get("x-api-key", ""), len(texts), k, mode) as bounds:
                try:
                    results = await st.run(snap.pipeline.batch_search, texts, SearchOptions(k=k, **bounds))
                except QueryError as exc:  # e.g. a query without searchable terms
                    raise as_listed(exc) from None
        return to_search_r1(results, body.return_scores)

    return api
