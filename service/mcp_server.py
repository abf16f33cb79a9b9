"""MCP server (official `mcp` SDK, low-level server): tools `search` and `fetch` with the request models'
own JSON schemas as input schemas, answering structured content plus a compact text rendering.

Two transports: `drsearch mcp` (stdio, one index opened in-process) and streamable HTTP at `/mcp`
on the HTTP app (stateless, so any worker of `serve --workers N` can answer any call).
"""

from __future__ import annotations

import hmac
import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from pydantic import ValidationError

from indexer.errors import DrsearchError, echo
from ranker.query import surrogate_at
from service.agent_tools import AgentTools, render_fetch, render_search
from service.api_models import ToolSearchRequest
from service.fetch import FetchRequest
from service.tool_schemas import FETCH_DESCRIPTION, SEARCH_DESCRIPTION, fetch_parameters, search_parameters


def _error(code: str, message: str, field: str | None = None, text: str | None = None) -> types.CallToolResult:
    """An `isError` result: one line for the model (`text`, by default the field and the message),
    and the API's error object (`code`, as over HTTP) as structured content, so that a client can
    tell a retry (`overloaded`, `deadline_exceeded`) from a bad argument without reading the text."""
    text = text or (f"{field}: {message}" if field else message)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True,
                                structured_content={"error": {"code": code, "message": message, "field": field}})  # fmt: skip


def _validation_problem(exc: ValidationError) -> tuple[str | None, str]:
    """The first problem's field path (None for the arguments as a whole) and message."""
    from service.errors import field_path, problem_message

    err = exc.errors()[0]
    return field_path(err.get("loc", ())), problem_message(err)


def _validation_message(exc: ValidationError) -> str:
    from service.errors import shown_field

    field, msg = _validation_problem(exc)
    return f"invalid argument {shown_field(field)}: {msg}" if field else f"invalid arguments: {msg}"


def _invalid_arguments(exc: ValidationError) -> types.CallToolResult:
    field, msg = _validation_problem(exc)
    return _error("invalid_request", msg, field, text=_validation_message(exc))


def build_server(tools: AgentTools) -> Server:
    """The MCP server answering `tools/list` and `tools/call` through `tools`; its `serverInfo` names
    drsearch's version (the index's is in every result, `index_version`)."""
    import indexer

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name="search", description=SEARCH_DESCRIPTION, input_schema=search_parameters()),
            types.Tool(name="fetch", description=FETCH_DESCRIPTION, input_schema=fetch_parameters()),
        ])  # fmt: skip

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        from service.errors import ApiError, error_code

        args = dict(params.arguments or {})
        try:
            if params.name == "search":
                payload = await tools.search(ToolSearchRequest.model_validate(args))
                text = render_search(payload)
            elif params.name == "fetch":
                payload = await tools.fetch(FetchRequest.model_validate(args))
                text = render_fetch(payload)
            else:
                return _error("unknown_tool", f"unknown tool {echo(params.name)} (tools: search, fetch)")
        except ValidationError as exc:
            return _invalid_arguments(exc)
        except ApiError as exc:
            return _error(exc.code, exc.message, exc.field)
        except DrsearchError as exc:
            return _error(error_code(exc)[1], exc.message, exc.field)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=payload)

    return Server("drsearch", version=indexer.__version__, on_list_tools=list_tools, on_call_tool=call_tool)


class _RequireKey:
    """ASGI wrapper: 401 unless X-API-Key matches (when the server has a key), written by the request
    middleware as a JSON-RPC error, as every error on `/mcp` is (`service.errors.as_jsonrpc_errors`)."""

    def __init__(self, app: Any, key: str | None):
        self.app, self.key = app, key

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.key:
            given = dict(scope.get("headers") or []).get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.key.encode()):
                from service.errors import error_json

                await error_json(401, "unauthorized", "missing or wrong X-API-Key", "X-API-Key")(scope, receive, send)
                return
        await self.app(scope, receive, _envelope_errors_in_one_line(send))


NOT_JSON_RPC = ('Invalid Request: not a JSON-RPC 2.0 message (a JSON object with "jsonrpc": "2.0", and an "id" '
                'and a "method" for a request)')


def _envelope_errors_in_one_line(send: Any) -> Any:
    """`send` with the SDK's answer to a body that is JSON but no JSON-RPC message (`{}`, `[]`, a
    `"jsonrpc": "1.0"`) rewritten: it is a 400 whose message is pydantic's many-line dump naming the
    SDK's classes, under -32602; it becomes JSON-RPC's -32600 with one line that says what is wanted."""
    from service.errors import rewriting_error_bodies

    def one_line(status: int, body: bytes) -> bytes:
        try:
            answer = json.loads(body)
            if status == 400 and str(answer["error"]["message"]).startswith("Validation error:") and answer.get("id") is None:
                answer["error"] = {"code": -32600, "message": NOT_JSON_RPC}
                return json.dumps(answer).encode()
        except (ValueError, KeyError, TypeError):
            pass
        return body  # not the SDK's envelope error: passed on as it came

    return rewriting_error_bodies(send, one_line)


def mount(app: Any, tools: AgentTools, host: str, api_key: str | None) -> AbstractAsyncContextManager[None]:
    """Add the streamable HTTP endpoint `/mcp` to `app`; the returned context runs its session manager
    (enter it in the app's lifespan). DNS-rebinding protection is on when the server binds localhost."""
    from starlette.routing import Route

    server = build_server(tools)
    local = host in ("127.0.0.1", "localhost", "::1")
    sub = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                     host=host if local else "0.0.0.0")  # fmt: skip
    endpoint = next(r for r in sub.routes if getattr(r, "path", None) == "/mcp").endpoint
    # POST only: stateless JSON mode never pushes, so a GET's event stream would stay open, empty, past every
    # timeout (one descriptor per client), and there is no session for DELETE to end. Both are 405.
    app.router.routes.append(Route("/mcp", endpoint=_RequireKey(endpoint, api_key), methods=["POST"]))
    return server.session_manager.run()


async def serve_stdio(index: Path, settings: Any) -> None:
    """`drsearch mcp`: one index, opened here, served over stdin/stdout."""
    from mcp.server.stdio import stdio_server

    from service.agent_tools import standalone

    async with standalone(index, settings, validated=True) as tools:
        server = build_server(tools)
        async with stdio_server() as (read, write):
            await server.run(_AnsweringUnreadableLines(read, write), write, server.create_initialization_options())


class _AnsweringUnreadableLines:
    """The stdio transport's read stream, less the lines it could not read: the SDK hands such a line on
    as an exception, which its session drops, and the client would wait for an answer for ever. Each
    is answered here with its JSON-RPC error instead; every message passes as it came, in its turn."""

    def __init__(self, read: Any, write: Any):
        self._read, self._write = read, write

    async def receive(self) -> Any:
        while isinstance(item := await self._read.receive(), Exception):
            await self._write.send(_unreadable_line_error(item))
        return item

    def __aiter__(self) -> "_AnsweringUnreadableLines":
        return self

    async def __anext__(self) -> Any:
        import anyio

        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> "_AnsweringUnreadableLines":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._read.aclose()

    def __getattr__(self, name: str) -> Any:  # aclose, close, statistics, ... as the stream has them
        return getattr(self._read, name)


def _unreadable_line_error(exc: Exception) -> Any:
    """The JSON-RPC error for a stdio line the SDK could not read: -32700 for one that is no JSON to its
    parser (a lone surrogate, which Python's json reads, keeps the request's id), else -32600."""
    from mcp.shared.message import SessionMessage

    first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else {}
    code, message, request_id = -32600, NOT_JSON_RPC, None
    if first.get("type") == "json_invalid":
        code, message = -32700, f"Parse error: {str(first.get('msg', 'invalid JSON')).removeprefix('Invalid JSON: ')}"
        try:
            parsed = json.loads(str(first.get("input", "")))
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):  # JSON to Python, not to the SDK's parser (a lone surrogate, a NaN): its id is known
            request_id = parsed.get("id") if isinstance(parsed.get("id"), (int, str)) else None
            if surrogate_at(json.dumps(parsed, ensure_ascii=False)) is not None:
                message = "Parse error: the message holds a lone UTF-16 surrogate (\\ud800-\\udfff alone); send valid Unicode text"
    error = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))
    return SessionMessage(error)
