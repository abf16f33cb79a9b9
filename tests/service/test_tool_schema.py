"""`GET /v1/tool-schema`: both tools, generated from the endpoints' request models; every example in
the schemas is a valid request to its endpoint."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tools(agent_client) -> dict[str, dict]:
    body = agent_client.get("/v1/tool-schema").json()
    return {t["function"]["name"]: t["function"] for t in body["tools"]}


def test_both_tools_in_openai_function_format(tools):
    assert set(tools) == {"search", "fetch"}
    for fn in tools.values():
        params = fn["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False and len(fn["description"]) > 80
        assert "$ref" not in str(params) and "anyOf" not in str(params) and "title" not in params["properties"]
    search = tools["search"]["parameters"]["properties"]
    assert {"offset", "max_total_chars", "time_range", "now", "countries", "languages", "include_undated"} <= set(search)
    assert search["offset"]["minimum"] == 0 and set(search["time_range"]["enum"]) == {"day", "week", "month", "year"}
    item = tools["fetch"]["parameters"]["properties"]["items"]
    assert item["maxItems"] == 16 and set(item["items"]["properties"]) == {"doc_id", "url", "passage_id", "query", "max_chars"}


def test_every_bound_is_a_json_schema_keyword(tools):
    """Bounds of optional counts were written out as pydantic's `ge`/`le`, which JSON Schema and the
    models reading a tool schema do not know: the limits were invisible to agents."""
    import json

    text = json.dumps(tools)
    assert '"ge"' not in text and '"le"' not in text and '"gt"' not in text and '"lt"' not in text
    search = tools["search"]["parameters"]["properties"]
    assert (search["min_tier"]["minimum"], search["min_tier"]["maximum"]) == (1, 3)
    assert tools["fetch"]["parameters"]["properties"]["items"]["items"]["properties"]["max_chars"]["minimum"] == 1


def test_schemas_follow_the_request_models(tools):
    from service.api_models import SearchRequest
    from service.fetch import FetchItem

    search = tools["search"]["parameters"]["properties"]
    assert search["k"]["maximum"] == SearchRequest.model_json_schema()["properties"]["k"]["maximum"] == 100
    assert tools["fetch"]["parameters"]["properties"]["items"]["items"]["properties"]["max_chars"]["maximum"] == \
        FetchItem.model_json_schema()["properties"]["max_chars"]["anyOf"][0]["maximum"]


def test_every_example_posts_to_its_endpoint(tools, agent_client):
    endpoints = {"search": "/v1/search", "fetch": "/v1/fetch"}
    for name, fn in tools.items():
        examples = fn["parameters"]["examples"]
        assert examples, name
        for example in examples:
            r = agent_client.post(endpoints[name], json=example)
            assert r.status_code == 200, (name, example, r.text)
            if name == "fetch":  # no network here: each item answers on its own, ok or with its error code
                assert all(x["ok"] or x["error"]["code"] for x in r.json()["results"])
