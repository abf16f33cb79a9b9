"""The MCP server with the official SDK's own client, over streamable HTTP (mounted at /mcp on the
real server) and over stdio (`drsearch mcp` as a subprocess)."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest

import indexer

from tests.conftest import REPO

SEARCH_ARGS = {"queries": ["moon tides sea levels", "vaccine clinical trials"], "k": 3, "mode": "bm25"}


async def _session(client) -> dict:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search", "fetch"}
    assert tools["search"].input_schema["properties"]["queries"]["maxItems"] == 64
    assert tools["fetch"].input_schema["properties"]["items"]["maxItems"] == 16
    found = await client.call_tool("search", SEARCH_ARGS)
    assert not found.is_error, found.content
    hits = found.structured_content["results"][0]["hits"]
    assert hits[0]["doc_id"] == "tides"
    text = found.content[0].text
    assert "1. Ocean tides" in text and "fetch: doc_id=tides" in text and "undated" in text
    opened = await client.call_tool("fetch", {"items": [{"doc_id": "nih-vaccines", "query": "clinical trial phases"}]})
    assert not opened.is_error and opened.structured_content["results"][0]["passages"]
    assert "tier 1 National Institutes of Health" in opened.content[0].text
    missing = await client.call_tool("fetch", {"items": [{"url": "https://not-on-the-list.example/page"}]})
    failed = missing.structured_content["results"][0]
    assert not failed["ok"] and failed["error"]["code"]
    from service.fetch import FetchResult  # every field of a result, failed or not, as /v1/fetch answers

    assert set(failed) == set(opened.structured_content["results"][0]) == set(FetchResult.model_fields)
    unencodable = await client.call_tool("fetch", {"items": [{"url": "http://\u2603.cdc.gov/"}]})
    assert unencodable.is_error and "malformed URL" in unencodable.content[0].text  # not a JSON-RPC error
    bad = await client.call_tool("fetch", {"items": [{"url": "file:///etc/passwd"}]})
    assert bad.is_error and "items[0].url" in bad.content[0].text
    # the API's error object, as over HTTP: a client tells a bad argument from a retry by its code
    assert bad.structured_content["error"]["code"] == "invalid_request" and bad.structured_content["error"]["field"] == "items[0].url"
    # what the published schema refuses (additionalProperties false, queries required) is refused
    schema = tools["search"].input_schema
    for args, fragment, field in (({"queries": ["tides"], "return_text": True}, "unknown argument 'return_text'", None),
                                  ({"query": "tides"}, "unknown argument 'query'", None),
                                  ({}, "invalid argument queries: Field required", "queries")):  # fmt: skip
        assert not set(args) <= set(schema["properties"]) or not set(schema["required"]) <= set(args)
        refused = await client.call_tool("search", args)
        assert refused.is_error and fragment in refused.content[0].text, refused.content[0].text
        assert refused.structured_content["error"]["code"] == "invalid_request"
        assert refused.structured_content["error"]["field"] == field
    paged = await client.call_tool("search", {"queries": ["tides"], "offset": 500, "mode": "bm25"})
    assert paged.is_error and "offset" in paged.content[0].text
    error = paged.structured_content["error"]
    assert error["code"] == "invalid_query" and error["field"] == "offset" and error["message"].startswith("offset 500 is beyond")
    return found.structured_content


def test_mcp_over_streamable_http(agent_live, agent_client):
    from mcp import Client

    async def run() -> dict:
        async with Client(f"{agent_live.base_url}/mcp") as client:
            return await _session(client)

    structured = asyncio.run(run())
    # Stateless JSON mode pushes nothing: a GET's event stream would stay open and empty for good.
    for method in ("GET", "DELETE"):
        r = httpx.request(method, f"{agent_live.base_url}/mcp", headers={"accept": "text/event-stream"}, timeout=5)
        assert r.status_code == 405 and r.headers["allow"] == "POST", (method, r.status_code, r.text)
    http = agent_client.post("/v1/search", json=SEARCH_ARGS).json()  # same tool, same ranking as the HTTP API
    assert [h["passage_id"] for h in structured["results"][1]["hits"]] == [h["passage_id"] for h in http["results"][1]["hits"]]


@pytest.mark.parametrize("body", ["{}", "[]", '{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}', '{"jsonrpc": "2.0", "id": 1}'])
def test_a_body_that_is_no_json_rpc_message_is_one_line_invalid_request(agent_live, body):
    """The SDK answered with pydantic's many-line dump of its own classes, as -32602 (invalid params)."""
    r = httpx.post(f"{agent_live.base_url}/mcp", content=body, timeout=10,
                   headers={"content-type": "application/json", "accept": "application/json, text/event-stream"})  # fmt: skip
    assert r.status_code == 400 and int(r.headers["content-length"]) == len(r.content), r.text
    error = r.json()["error"]
    assert error["code"] == -32600 and error["message"].startswith("Invalid Request: not a JSON-RPC 2.0 message"), error
    assert "\n" not in error["message"] and "pydantic" not in error["message"]


def test_the_sdks_own_protocol_errors_keep_their_code(agent_live):
    """The rewrite of the API's refusals into JSON-RPC errors took the SDK's own -32700 for the API's
    shape and wrote it as -32600 with `data: {"code": "-32700"}`."""
    r = httpx.post(f"{agent_live.base_url}/mcp", content="{bad", timeout=10,
                   headers={"content-type": "application/json", "accept": "application/json, text/event-stream"})  # fmt: skip
    error = r.json()["error"]
    assert r.status_code == 400 and error["code"] == -32700 and "data" not in error, r.text


def _stdio_server(agent_root, **env: str):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable, args=["-m", "service.cli", "mcp", "--index", str(agent_root)], cwd=str(REPO),
        env={**{k: v for k, v in os.environ.items() if k.startswith(("DRSEARCH", "HF_", "TRANSFORMERS", "JAVA", "PATH", "HOME"))}, **env},
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_mcp_over_stdio_answers_every_line_it_cannot_read(agent_root):
    """The SDK's stdio transport dropped such lines without a word, and a client waited for ever."""
    import json
    import subprocess

    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip
    lines = [json.dumps(init), '{"jsonrpc": "2.0", "method": "notifications/initialized"}', "{not json",
             '{"jsonrpc": "1.0", "id": 2, "method": "ping"}', "[]",
             '{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"queries": ["a\\ud800b"]}}}',
             '{"jsonrpc": "2.0", "id": 4, "method": "ping"}']  # fmt: skip
    params = _stdio_server(agent_root)
    proc = subprocess.Popen([params.command, *params.args], cwd=params.cwd, env=params.env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        proc.stdin.write("".join(line + "\n" for line in lines))
        proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for _ in range(6)]  # each answered: a hang fails the timeout
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert [a["id"] for a in answers] == [1, None, None, None, 3, 4]
    assert [a["error"]["code"] for a in answers[1:5]] == [-32700, -32600, -32600, -32700]
    assert "lone UTF-16 surrogate" in answers[4]["error"]["message"] and answers[5]["result"] == {}
    info = answers[0]["result"]["serverInfo"]
    assert (info["name"], info["version"]) == ("drsearch", indexer.__version__)


def test_both_transports_name_drsearchs_version(agent_live):
    """Over HTTP `serverInfo.version` was empty; over stdio it was the index build's version."""
    r = httpx.post(f"{agent_live.base_url}/mcp", timeout=30, headers={"accept": "application/json, text/event-stream"},
                   json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                       "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})  # fmt: skip
    assert r.status_code == 200 and r.json()["result"]["serverInfo"]["version"] == indexer.__version__, r.text


def test_mcp_over_stdio(agent_root):
    from mcp import Client

    async def run() -> dict:
        async with Client(_stdio_server(agent_root)) as client:
            return await _session(client)

    asyncio.run(run())


def test_mcp_over_stdio_keeps_the_servers_search_deadline(agent_root):
    """`drsearch mcp` bounds a search by DRSEARCH_SERVE_DEADLINE_MS as `serve` does: past it, an
    `isError` result with the API's `deadline_exceeded` code; the process keeps serving."""
    from mcp import Client

    async def run():
        async with Client(_stdio_server(agent_root, DRSEARCH_SERVE_DEADLINE_MS="0.001")) as client:
            late = await client.call_tool("search", SEARCH_ARGS)
            opened = await client.call_tool("fetch", {"items": [{"doc_id": "tides"}]})
            return late, opened

    late, opened = asyncio.run(run())
    assert late.is_error and late.content[0].text.startswith("search did not finish within the server's deadline")
    assert late.structured_content["error"]["code"] == "deadline_exceeded"
    assert not opened.is_error and opened.structured_content["results"][0]["ok"]


def test_mcp_over_stdio_loads_the_query_encoder_before_its_first_search(agent_root):
    """`drsearch mcp` warms up as `serve` does before it answers: left to the first hybrid search, loading
    the query encoder counted against that search's deadline (DRSEARCH_SERVE_DEADLINE_MS), and on a busy
    machine the first call failed with `deadline_exceeded`."""
    from service.agent_tools import standalone
    from service.settings import ServiceSettings

    async def run() -> bool:
        async with standalone(agent_root, ServiceSettings(index=agent_root), validated=True) as tools:
            with tools.context() as ctx:
                return ctx.pipeline.dense._model is not None

    assert asyncio.run(run())


def test_mcp_checks_every_leg_before_it_answers(agent_root, tmp_path):
    """As `serve` does, `drsearch mcp` opens and warms up every leg, the query model included, before
    it reads its first message: a damaged dense leg is refused at start in one line (exit 2), not on an
    agent's first dense search, and that first search loads nothing inside the server's deadline."""
    import shutil
    import subprocess

    build = tmp_path / "build"
    shutil.copytree(os.path.realpath(agent_root / "current"), build)
    os.truncate(build / "dense" / "index.faiss", 100)
    proc = subprocess.run([sys.executable, "-m", "service.cli", "mcp", "--index", str(build)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("drsearch: error: ") and f"{build / 'dense'}" in lines[0]
