"""API keys: search/fetch keys are off unless DRSEARCH_API_KEY is set; admin is off unless DRSEARCH_ADMIN_KEY is set."""

from __future__ import annotations

import time

import pytest

from tests.service.conftest import new_version, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

USER_KEY = "user-secret-for-tests"


@pytest.fixture(scope="module")
def keyed(service_root):
    """A second server: search key required, admin disabled, micro-batching off, no cache, follows `current`."""
    srv = start_server(index=service_root, api_key=USER_KEY, admin_key=None, batching=False, cache_size=0,
                       threads=2, warmup=False, watch_s=0.3)  # fmt: skip
    yield srv
    srv.stop()


def test_search_key_off_by_default(client):
    assert client.post("/v1/search", json={"query": "wing flutter", "k": 1}).status_code == 200


def test_search_and_fetch_need_the_key(keyed):
    with keyed.client() as c:
        body = {"query": "wing flutter", "k": 2, "mode": "bm25"}
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
            r = c.post("/v1/search", json=body, headers=headers)
            assert r.status_code == 401, r.text
            assert r.json()["error"] == {"code": "unauthorized", "message": "missing or wrong X-API-Key", "field": "X-API-Key"}
            assert c.get("/v1/documents/1", headers=headers).status_code == 401
            assert c.get("/v1/passages/1%230", headers=headers).status_code == 401
        ok = c.post("/v1/search", json=body, headers={"X-API-Key": USER_KEY})
        assert ok.status_code == 200 and ok.json()["cached"] is False
        again = c.post("/v1/search", json=body, headers={"X-API-Key": USER_KEY})
        assert again.json()["cached"] is False  # cache_size=0
        assert again.json()["results"] == ok.json()["results"]
        assert c.get("/v1/documents/1", headers={"X-API-Key": USER_KEY}).status_code == 200
        # ops endpoints stay open
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200 and c.get("/v1/tool-schema").status_code == 200


def test_admin_disabled_without_admin_key(keyed):
    with keyed.client() as c:
        for headers in ({}, {"X-API-Key": USER_KEY}, {"X-API-Key": "anything"}):
            r = c.post("/v1/admin/reload", headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"


def test_watcher_follows_current(keyed, service_root):
    with keyed.client() as c:
        before = c.get("/readyz").json()["index_version"]
        version = new_version(service_root)
        deadline = time.monotonic() + 60
        while c.get("/readyz").json()["index_version"] != version:
            assert time.monotonic() < deadline, "watcher did not pick up the new build"
            time.sleep(0.2)
        r = c.post("/v1/search", json={"query": "wing flutter", "k": 1}, headers={"X-API-Key": USER_KEY})
        assert r.status_code == 200 and r.json()["index_version"] == version != before
