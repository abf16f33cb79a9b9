"""Typed request and response bodies of the HTTP API (they are what OpenAPI describes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from indexer.errors import QueryError, echo
from ranker.options import RequestOptions, UnicodeText
from ranker.query import MAX_QUERY_CHARS, clean_query

MAX_QUERIES = 64
MAX_OFFSET = 900
MAX_K = 100  # results per query: SearchRequest.k, `/retrieve`'s topk and `drsearch search -k`


class SearchRequest(RequestOptions):
    """A batch of queries sharing one set of options. Give `queries`, or `query` for a single one.

    The search options are inherited from `ranker.options.RequestOptions` (declared once, shared
    with the CLI and the pipeline); this adds the queries and what only changes the response's shape.
    Query text is cleaned here, once: the pipeline does not check it again.
    """

    model_config = ConfigDict(extra="forbid", frozen=False, json_schema_extra={"examples": [
        {"queries": ["smoking and coronary heart disease", "vitamin D supplementation and bone fractures"], "k": 5},
        {"queries": ["influenza vaccine effectiveness"], "k": 5, "offset": 5, "max_total_chars": 2000},
        {"queries": ["consumer price inflation outlook"], "time_range": "year", "now": "2026-11-30T12:00:00Z",
         "countries": ["us", "gb"], "languages": ["en"], "include_undated": True, "max_chars_per_hit": 300},
    ]})  # fmt: skip

    queries: list[UnicodeText] | None = Field(
        None, min_length=1, max_length=MAX_QUERIES,
        description=f"1-{MAX_QUERIES} plain-text queries (each non-empty, at most {MAX_QUERY_CHARS} characters by default)",
    )  # fmt: skip
    query: UnicodeText | None = Field(None, description="Shortcut for `queries: [query]`; give exactly one of the two")
    k: int = Field(10, strict=True, ge=1, le=MAX_K, description="Results per query")
    snippet_chars: int = Field(240, strict=True, ge=40, le=2000, description="Snippet length in characters")
    return_text: bool = Field(False, strict=True, description="Include each hit's full passage text")
    dedupe_across_queries: bool = Field(
        False, strict=True, description="Drop a passage already returned for an earlier query of this request, "
        "with dedupe_text one whose text was (lists refilled to k; not with offset)"
    )
    timeout_ms: int | None = Field(
        None, strict=True, ge=1, le=600_000, description="Deadline for this request in ms; the server's limit applies when it is lower "
        "(504 deadline_exceeded when passed)",
    )  # fmt: skip
    allow_partial: bool = Field(
        False, strict=True, description="At the deadline, return the hits ranked so far (lists flagged `partial`) instead of a 504"
    )

    offset: int = Field(0, strict=True, ge=0, le=MAX_OFFSET, description="Skip this many ranks: page 2 of k is offset=k (ranks k+1..2k)")
    max_chars_per_hit: int | None = Field(
        None, strict=True, ge=1, le=100_000, description="Trim each hit's snippet (and text) to this many characters, at whole words"
    )
    max_total_chars: int | None = Field(
        None, strict=True, ge=1, le=1_000_000,
        description="Characters of snippets and texts in the whole response, filled in rank order across queries; "
        "hits left without text are dropped",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_of_query_queries(self) -> "SearchRequest":
        if (self.queries is None) == (self.query is None):
            raise ValueError("give exactly one of `queries` (a list) or `query` (a string)")
        if self.queries is not None:
            self.queries = [clean_query(q, field=f"queries[{i}]") for i, q in enumerate(self.queries)]
            if self.dedupe_across_queries and self.offset and len(self.queries) > 1:
                # What a query's later page may show depends on what earlier queries showed on every page before.
                raise QueryError("offset cannot page lists deduplicated across queries (dedupe_across_queries): "
                                 "their pages would repeat or skip passages; ask for a larger k instead", field="offset")  # fmt: skip
        else:
            self.query = clean_query(self.query, field="query")
        return self

    @property
    def query_list(self) -> list[str]:
        return list(self.queries) if self.queries is not None else [self.query or ""]


# Fields an agent sets when it calls search as a tool (the rest are display/batching knobs).
AGENT_FIELDS = (
    "queries", "k", "mode", "include_domains", "exclude_domains", "min_tier", "categories",
    "published_after", "published_before", "max_per_domain", "offset", "max_chars_per_hit", "max_total_chars",
    "time_range", "now", "languages", "countries", "include_undated",
)  # fmt: skip


class ToolSearchRequest(SearchRequest):
    """The search tool's arguments (MCP): exactly what its published schema allows, the `AGENT_FIELDS`
    with `queries` required, so a call the schema refuses is refused here too."""

    queries: list[UnicodeText] = Field(  # type: ignore[assignment]  # required here: a missing one is named
        min_length=1, max_length=MAX_QUERIES, description=SearchRequest.model_fields["queries"].description,
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _published_arguments_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [name for name in data if name not in AGENT_FIELDS]
            if unknown:
                raise ValueError(f"unknown argument {echo(str(unknown[0]))} (the search tool takes {', '.join(AGENT_FIELDS)})")
        return data


class Authority(BaseModel):
    name: str
    category: str
    tier: int
    country: str | None = None


class Scores(BaseModel):
    bm25: float | None = None
    dense: float | None = None
    fused: float | None = None
    authority: float | None = None
    final: float


class Ranks(BaseModel):
    bm25: int | None = None
    dense: int | None = None


class SearchHit(BaseModel):
    rank: int
    passage_id: str
    doc_id: str
    title: str
    url: str | None = None
    domain: str | None = None
    authority: Authority | None = None
    published: str | None = None
    snippet: str
    text: str | None = Field(None, description="Only when return_text is true")
    scores: Scores
    ranks: Ranks | None = None


class QueryResult(BaseModel):
    query: str
    mode_used: str = Field(description="The mode this query ran in: hybrid runs BM25 alone for a query in a "
                           "language the dense model does not cover")
    hits: list[SearchHit]
    exhausted: bool = Field(True, description="False: fewer than k hits because the candidate cap (or the deadline) "
                            "stopped the search; more matches may exist")  # fmt: skip
    candidates_examined: int | None = Field(None, description="Candidates ranked and filtered for this query")
    partial: bool = Field(False, description="Only with allow_partial: the deadline passed and these are the hits so far")
    undated_dropped: int = Field(0, description="Candidate documents a date bound dropped for having no date")


class Budget(BaseModel):
    used_chars: int = Field(description="Characters of snippets and texts returned")
    dropped_hits: int = Field(description="Hits left out because max_total_chars was spent")


class SearchResponse(BaseModel):
    request_id: str
    index_version: str
    took_ms: float
    mode: str
    cached: bool = False
    results: list[QueryResult]
    budget: Budget | None = Field(None, description="Only with max_chars_per_hit or max_total_chars")


class PassageRef(BaseModel):
    passage_id: str
    ordinal: int
    start: int = Field(description="Character offset of the passage in the document text")
    end: int


class DocumentResponse(BaseModel):
    doc_id: str
    title: str
    url: str | None = None
    domain: str | None = None
    published: str | None = None
    source: str | None = None
    language: str | None = Field(None, description="ISO 639-1 code, detected at build time unless the corpus gave one")
    authority: Authority | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    text: str
    passages: list[PassageRef]
    index_version: str


class PassageResponse(BaseModel):
    passage_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str
    url: str | None = None
    domain: str | None = None
    published: str | None = None
    authority: Authority | None = None
    index_version: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_request, invalid_query, not_found")
    message: str
    field: str | None = Field(None, description="The request field at fault, when there is one")


class ErrorResponse(BaseModel):
    error: ErrorBody


class ReloadRequest(BaseModel):
    """`POST /v1/admin/reload`'s optional JSON body: the same switch as its `?force=true`."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, strict=True, description="Reopen even if `current` is unchanged (as `?force=true`)")


class ReloadResponse(BaseModel):
    reloaded: bool
    old_version: str
    new_version: str
    took_ms: float


class HealthResponse(BaseModel):
    status: str
    index_version: str | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the error shape."""
    text = {
        400: "Unusable query or option", 401: "Missing or wrong X-API-Key", 403: "Admin endpoints disabled",
        404: "Unknown id", 408: "Request head or body too slow", 409: "Build refused (index_invalid)",
        413: "Request body too large", 415: "Body not sent as JSON (content-type: application/json or a +json type)", 422: "Invalid request body or parameters", 429: "Overloaded: retry after Retry-After",
        500: "Internal error or index data fault", 503: "Index not loaded", 504: "Deadline exceeded",
    }  # fmt: skip
    return {c: {"model": ErrorResponse, "description": text.get(c, "Error")} for c in codes}
