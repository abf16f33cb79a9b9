"""Bounded load with concurrent clients, and a hot index reload in the middle of it: zero failed requests."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time

import httpx
import pytest

from tests.conftest import data_dir
from tests.service.conftest import ADMIN_KEY, new_version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CLIENTS = 32
BEFORE_S = 3.0  # load on the old build before the reload (and until every client has had an answer)
AFTER_S = 3.0  # load after the reload answered (and until every client has had an answer on the new build)


def _queries() -> list[str]:
    path = data_dir("cranfield") / "queries.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


async def _client(base: str, queries: list[str], seed: int, until: list[float], log: list) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as c:
        while time.monotonic() < until[0]:
            n = rng.choice((1, 1, 1, 4))
            body = {"queries": rng.sample(queries, n), "k": rng.choice((5, 10)), "mode": rng.choice(("hybrid", "bm25"))}
            started = time.monotonic()
            try:
                r = await c.post("/v1/search", json=body)
                payload = r.json()
                ok = r.status_code == 200 and len(payload["results"]) == n
                log.append((started, r.status_code, payload.get("index_version") if ok else r.text[:300], seed))
            except Exception as exc:  # noqa: BLE001 - any transport failure is a failed request
                log.append((started, -1, repr(exc), seed))


async def _admin_reload(base: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=120.0) as c:
        return await c.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})


def test_load_and_hot_reload(live, service_root):
    state = live.app.state.svc
    queries = _queries()
    old_snapshot = state.index.current
    old_version = old_snapshot.version
    log: list = []

    async def load_for(seconds: float, since: float) -> None:
        """At least `seconds`, and until every client has had an answer to a request it sent after `since`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or {entry[3] for entry in log if entry[0] > since} != set(range(CLIENTS)):
            await asyncio.sleep(0.05)

    async def main():
        started = time.monotonic()
        until = [started + 300.0]  # the clients stop once the load after the reload is done
        clients = [asyncio.create_task(_client(live.base_url, queries, i, until, log)) for i in range(CLIENTS)]
        await load_for(BEFORE_S, since=started)
        version = await asyncio.to_thread(new_version, service_root)
        reload = await _admin_reload(live.base_url)
        reloaded_at = time.monotonic()
        await load_for(AFTER_S, since=reloaded_at)
        until[0] = 0.0
        await asyncio.gather(*clients)
        return version, reload, reloaded_at, time.monotonic() - started

    swapped_before = _swapped(httpx.get(f"{live.base_url}/metrics").text)  # other tests share this server
    version, reload, reloaded_at, seconds = asyncio.run(main())
    assert reload.status_code == 200, reload.text
    assert reload.json() == {**reload.json(), "reloaded": True, "old_version": old_version, "new_version": version}

    failures = [entry for entry in log if entry[1] != 200]
    assert not failures, failures[:5]
    assert len(log) >= CLIENTS * 2, f"only {len(log)} requests completed"
    versions = {entry[2] for entry in log}
    assert versions == {old_version, version}
    assert all(entry[2] == version for entry in log if entry[0] > reloaded_at)  # new requests use the new build
    # every client was searching both before the swap and after it answered: the reload happened under full load
    assert {entry[3] for entry in log if entry[2] == old_version} == set(range(CLIENTS))
    assert {entry[3] for entry in log if entry[0] > reloaded_at} == set(range(CLIENTS))
    assert state.index.current.version == version
    assert old_snapshot.retired and old_snapshot.inflight == 0 and old_snapshot.closed
    qps = len(log) / seconds
    print(f"\n{len(log)} requests by {CLIENTS} clients in {seconds:.0f} s ({qps:.1f} req/s), reload took "
          f"{reload.json()['took_ms']:.0f} ms")  # fmt: skip

    metrics = httpx.get(f"{live.base_url}/metrics").text
    assert _swapped(metrics) == swapped_before + 1
    assert f'version="{version}"' in metrics
    single = float(re.search(r'^drsearch_batch_calls_bucket\{le="1.0"\} (\S+)$', metrics, re.M).group(1))
    total = float(re.search(r"^drsearch_batch_calls_count (\S+)$", metrics, re.M).group(1))
    assert total > single, "the micro-batcher never merged two calls under load"


def _swapped(metrics: str) -> float:
    """drsearch_index_reloads_total{outcome="swapped"} (0 before the first swap)."""
    found = re.search(r'^drsearch_index_reloads_total\{outcome="swapped"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0
