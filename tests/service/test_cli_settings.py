"""The real `drsearch serve` / `drsearch search` in subprocesses: a flag given beats its DRSEARCH_SERVE_*
variable, which beats the built-in default; a bad variable is one line naming it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import REPO
from tests.service.test_cli import assert_one_line_error

pytestmark = pytest.mark.timeout(300)

LONG_QUERY = "volcano eruption magma lava flows"  # 33 characters
FAST = {"DRSEARCH_SERVE_WARMUP": "false"}  # the legs are still validated; only the dense model's warm-up is skipped


def cli(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`drsearch ARGS` with exactly these DRSEARCH_SERVE_* variables (none inherited)."""
    return subprocess.run([sys.executable, "-m", "service.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=_env(env))  # fmt: skip


def _env(env: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DRSEARCH_SERVE_")}, **env}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(*args: object, env: dict[str, str]) -> Iterator[tuple[httpx.Client, str]]:
    """`drsearch serve ARGS` until it listens: (a client of it, what it logged while starting)."""
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", *map(str, args)], cwd=REPO,
                            env=_env({**FAST, **env}), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    log = []
    try:
        for line in proc.stderr:
            log.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError(f"serve exited with {proc.wait()}:\n{''.join(log)}")
        url = re.search(r"http://[0-9.]+:\d+", log[-1])[0]
        with httpx.Client(base_url=url, timeout=60.0) as client:
            yield client, "".join(log)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def search_status(client: httpx.Client, query: str) -> int:
    return client.post("/v1/search", json={"query": query, "k": 1, "mode": "bm25"}).status_code


def test_flag_beats_env(tiny_bm25_root):
    env = {"DRSEARCH_SERVE_THREADS": "3", "DRSEARCH_SERVE_MAX_QUERY_CHARS": "20", "DRSEARCH_SERVE_INDEX": "/nowhere"}
    with serving("--index", tiny_bm25_root, "--port", free_port(), "--threads", "2", "--max-query-chars", "0", env=env) as (c, log):
        assert f"({tiny_bm25_root}) on 2 thread(s)" in log
        assert search_status(c, LONG_QUERY) == 200  # --max-query-chars 0 (no cap) over the variable's 20


def test_env_beats_default(tiny_bm25_root):
    port = free_port()
    env = {"DRSEARCH_SERVE_THREADS": "3", "DRSEARCH_SERVE_MAX_QUERY_CHARS": "20", "DRSEARCH_SERVE_PORT": str(port)}
    with serving("--index", tiny_bm25_root, env=env) as (c, log):
        assert f"127.0.0.1:{port}" in str(c.base_url)
        assert f"({tiny_bm25_root}) on 3 thread(s)" in log
        r = c.post("/v1/search", json={"query": LONG_QUERY, "k": 1})
        assert r.status_code == 400 and "longer than 20 characters" in r.json()["error"]["message"]
        assert search_status(c, "volcano") == 200


def test_index_from_env_and_built_in_defaults(tiny_bm25_root):
    with serving("--port", free_port(), env={"DRSEARCH_SERVE_INDEX": str(tiny_bm25_root)}) as (c, log):
        assert f"({tiny_bm25_root}) on 4 thread(s)" in log  # the built-in default where neither flag nor variable
        assert search_status(c, LONG_QUERY) == 200
    assert_one_line_error(cli("serve", env={}), "missing option '--index' (or set DRSEARCH_SERVE_INDEX)")


def test_search_honours_the_query_cap_from_env(tiny_bm25_root):
    capped = {"DRSEARCH_SERVE_MAX_QUERY_CHARS": "20"}
    assert_one_line_error(cli("search", LONG_QUERY, "--index", tiny_bm25_root, env=capped), "longer than 20 characters")
    out = cli("search", LONG_QUERY, "--index", tiny_bm25_root, "-k", "1", env={})  # the default cap: 10,000
    assert out.returncode == 0 and "volcano" in out.stdout, out.stderr
    flag = cli("search", LONG_QUERY, "--index", tiny_bm25_root, "-k", "1", "--max-query-chars", "40", env=capped)
    assert flag.returncode == 0 and "volcano" in flag.stdout, flag.stderr  # the flag beats the variable


@pytest.mark.parametrize(("command", "env", "fragments"), [
    (["serve"], {"DRSEARCH_SERVE_THREADS": "four"}, ["invalid DRSEARCH_SERVE_THREADS: ", "valid integer", "got 'four'"]),
    (["serve"], {"DRSEARCH_SERVE_BATCHING": "maybe"}, ["invalid DRSEARCH_SERVE_BATCHING: ", "got 'maybe'"]),
    (["serve"], {"DRSEARCH_SERVE_FETCH_ALLOW_HOSTS": "example.org"}, ["invalid DRSEARCH_SERVE_FETCH_ALLOW_HOSTS: ", "JSON"]),
    (["search", "volcano"], {"DRSEARCH_SERVE_MAX_QUERY_CHARS": "-5"}, ["invalid DRSEARCH_SERVE_MAX_QUERY_CHARS: ", "got '-5'"]),
    (["fetch", "volcano"], {"DRSEARCH_SERVE_MAX_QUERY_CHARS": "many"}, ["invalid DRSEARCH_SERVE_MAX_QUERY_CHARS: "]),
    # the ranking's own DRSEARCH_* variables, which every command that ranks reads
    (["serve"], {"DRSEARCH_MODE": "bogus"}, ["invalid DRSEARCH_MODE: ", "got 'bogus'"]),
    (["serve"], {"DRSEARCH_AUTHORITY_WEIGHT": "2"}, ["invalid DRSEARCH_AUTHORITY_WEIGHT: ", "got '2'"]),
    (["mcp"], {"DRSEARCH_FUSION": "x"}, ["invalid DRSEARCH_FUSION: ", "got 'x'"]),
    (["fetch", "volcano"], {"DRSEARCH_K0": "0"}, ["invalid DRSEARCH_K0: "]),
    (["search", "volcano"], {"DRSEARCH_MODE": "bogus"}, ["invalid DRSEARCH_MODE: "]),  # not --mode, which was not given
    # an empty host bound every interface; a key with spaces around it no HTTP header can carry
    (["serve"], {"DRSEARCH_SERVE_HOST": ""}, ["invalid DRSEARCH_SERVE_HOST: ", "is empty"]),
    (["serve"], {"DRSEARCH_API_KEY": "k1 "}, ["DRSEARCH_API_KEY begins or ends with whitespace"]),
    (["serve"], {"DRSEARCH_SERVE_FETCH_ALLOW_HOSTS": '["http://127.0.0.1:8000/"]'}, ["is not a host name or IP address"]),
    # JVM settings: the JVM refused them as it started, with a traceback or in its own words
    (["serve"], {"DRSEARCH_SERVE_JVM_HEAP": "0"}, ["invalid DRSEARCH_SERVE_JVM_HEAP: ", "more than 32m"]),
    (["search", "volcano"], {"DRSEARCH_JVM_HEAP": "abc"}, ["DRSEARCH_JVM_HEAP must be a size as -Xmx takes it", "'abc'"]),
    (["search", "volcano"], {"DRSEARCH_JAVA_HOME": "/nonexistent"}, ["DRSEARCH_JAVA_HOME='/nonexistent' is no Java runtime"]),
    (["search", "volcano"], {"DRSEARCH_THREADS": "four"}, ["DRSEARCH_THREADS must be a whole number", "'four'"]),  # was ignored
])  # fmt: skip
def test_bad_env_value_is_one_line_naming_the_variable(tiny_bm25_root, command, env, fragments):
    assert_one_line_error(cli(*command, "--index", tiny_bm25_root, env=env), *fragments)


def test_options_the_jvm_refuses_are_one_line_and_every_worker_failing_is_exit_3(tiny_bm25_root):
    bad = {"DRSEARCH_JVM_GC_OPTIONS": "-XX:+NoSuchFlag"}
    search = cli("search", "volcano", "--index", tiny_bm25_root, env=bad)
    assert search.returncode == 2 and "Traceback" not in search.stderr
    assert search.stderr.splitlines()[-1].startswith("drsearch: error: cannot start the JVM"), search.stderr
    served = cli("serve", "--index", tiny_bm25_root, "--port", free_port(), "--workers", "2", env={**FAST, **bad})
    assert served.returncode == 3, served.stderr  # uvicorn's supervisor returned as after a clean stop: exit 0
    assert "drsearch: cannot serve: cannot start the JVM" in served.stderr and "Traceback" not in served.stderr


def test_an_empty_authority_list_variable_is_unset(tiny_bm25_root, tmp_path):
    """It named the current folder: search and serve ranked with whatever CSV files were there."""
    (tmp_path / "stray.csv").write_text("domain,tier\nnot a list,\n")
    out = subprocess.run([sys.executable, "-m", "service.cli", "search", "volcano", "--index", tiny_bm25_root],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**_env({}), "DRSEARCH_AUTHORITY_LIST": "", "PYTHONPATH": str(REPO)})  # fmt: skip
    assert out.returncode == 0 and "volcano" in out.stdout, out.stderr


def test_no_fetch_any_host_turns_the_variable_off(tiny_bm25_root):
    """`.example` never resolves: allowed to fetch any host, the fetch fails on DNS; refused, it names the list."""
    url, on = "https://unlisted.example/page", {"DRSEARCH_SERVE_FETCH_ANY_HOST": "true"}
    assert "does not resolve" in cli("fetch", url, "--index", tiny_bm25_root, env=on).stdout
    off = cli("fetch", url, "--index", tiny_bm25_root, "--no-fetch-any-host", env=on)
    assert "host_not_allowed" in off.stdout and "not on the authority list" in off.stdout, off.stdout + off.stderr
