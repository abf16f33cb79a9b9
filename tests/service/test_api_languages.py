"""Languages over HTTP and the CLI: the `languages` filter, `mode_used`, and Chinese bad input as one line."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import drsearch
from tests.service.conftest import start_server
from tests.service.test_cli import assert_one_line_error


@pytest.fixture(scope="module")
def server(mixed_zh):
    live = start_server(index=mixed_zh["root"])
    yield live
    live.stop()


def test_languages_filter_and_mode_used(server):
    with server.client() as c:
        body = {"queries": ["RCEP 成员国", "ALDH1 expression and breast cancer prognosis"], "k": 5}
        res = c.post("/v1/search", json=body).json()
        assert res["mode"] == "hybrid"
        assert [r["mode_used"] for r in res["results"]] == ["bm25", "hybrid"]
        assert all(h["scores"]["dense"] is None for h in res["results"][0]["hits"])
        docs = [h["doc_id"] for h in c.post("/v1/search", json={**body, "languages": ["zh-CN"]}).json()["results"][1]["hits"]]
        assert docs and all(c.get(f"/v1/documents/{d}").json()["language"] == "zh" for d in docs)
        bad = c.post("/v1/search", json={**body, "languages": ["Chinese!"]})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "languages"
        stop = c.post("/v1/search", json={"query": "的了吗？"})
        assert stop.status_code == 400 and "no searchable terms" in stop.json()["error"]["message"]


def test_cli_language_option_and_index_info(mixed_zh):
    info = drsearch("index", "info", mixed_zh["root"], check=True).stdout
    mix = next(line for line in info.splitlines() if line.startswith("languages "))
    assert re.search(r"\bzh \d+", mix) and re.search(r"\ben \d+", mix) and "languages=['en']" in info
    out = json.loads(drsearch("search", "RCEP 成员国", "--index", mixed_zh["root"], "--language", "zh", "--json",
                              check=True).stdout)  # fmt: skip
    assert out["mode"] == "hybrid" and out["mode_used"] == "bm25" and out["hits"]
    assert_one_line_error(drsearch("search", "是什么呢？", "--index", mixed_zh["root"]), "no searchable terms")
