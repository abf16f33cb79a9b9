"""Tool definitions generated from the request models, so the HTTP endpoints, the OpenAI
function-calling schemas and the MCP tools can never drift apart (no hand-written copies)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.api_models import AGENT_FIELDS, SearchRequest
from service.fetch import FetchRequest

SEARCH_DESCRIPTION = (
    "Search a curated library of authoritative documents (paragraph-level hybrid BM25 + dense retrieval, "
    "authority-aware ranking). Send several phrasings or sub-questions at once in `queries`; each gets its own "
    "ranked list of passages with title, url, domain, authority (name, category, tier, country), publication date "
    "and a snippet. Page with `offset`, bound the output with `max_chars_per_hit` / `max_total_chars`, restrict "
    "with `time_range`, `countries`, `languages`. Open a hit with the `fetch` tool (its doc_id)."
)
FETCH_DESCRIPTION = (
    "Open 1-16 documents: a search hit's `doc_id`, or any `url` (pages not in the library are fetched live "
    "from authoritative hosts, HTML or PDF). With `query`, only the passages most relevant to it come back, best "
    "first, with character offsets; `max_chars` caps the text in whole passages and says what was left out. "
    "To read a long document on, give `passage_id` (a hit's, or `omitted.next_passage_id`): the document from "
    "that passage, in order. "
    "A page that cannot be fetched gets an error code of its own (blocked_by_robots, host_not_allowed, too_large, "
    "timeout, not_html_or_pdf, fetch_failed) without failing the others."
)


def _strip(schema: Any) -> Any:
    """JSON schema without titles and with Optional[X] collapsed to X (what function-calling APIs expect)."""
    if isinstance(schema, dict):
        any_of = schema.get("anyOf")
        if isinstance(any_of, list):
            non_null = [s for s in any_of if s != {"type": "null"}]
            if len(non_null) == 1:
                merged = {**{k: v for k, v in schema.items() if k != "anyOf"}, **non_null[0]}
                return _strip(merged)
        return {k: _strip(v) for k, v in schema.items() if k != "title" and not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [_strip(s) for s in schema]
    return schema


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """`$ref: #/$defs/X` replaced by X's schema (function-calling clients do not all resolve refs)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline({**defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in schema.items() if k != "$ref"}}, defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(s, defs) for s in schema]
    return schema


def parameters(model: type[BaseModel], fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The model's JSON schema as function parameters: refs inlined, titles dropped, only `fields`."""
    full = model.model_json_schema()
    full = _inline(full, full.get("$defs", {}))
    props = full["properties"]
    names = fields or tuple(props)
    out: dict[str, Any] = {
        "type": "object", "properties": {n: _strip(props[n]) for n in names},
        "required": [n for n in full.get("required", []) if n in names], "additionalProperties": False,
    }  # fmt: skip
    if "examples" in full:
        out["examples"] = full["examples"]
    return out


def search_parameters() -> dict[str, Any]:
    params = parameters(SearchRequest, AGENT_FIELDS)
    params["required"] = ["queries"]  # `query` is an HTTP shortcut; tools always send `queries`
    return params


def fetch_parameters() -> dict[str, Any]:
    return parameters(FetchRequest)


def openai_tools() -> list[dict[str, Any]]:
    """Both tools in the OpenAI function-calling format; the arguments post as they are to the endpoints."""
    return [
        {"type": "function", "function": {"name": "search", "description": SEARCH_DESCRIPTION, "parameters": search_parameters()}},
        {"type": "function", "function": {"name": "fetch", "description": FETCH_DESCRIPTION, "parameters": fetch_parameters()}},
    ]  # fmt: skip
