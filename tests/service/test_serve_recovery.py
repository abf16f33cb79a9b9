"""Crash-only recovery (issue 16): `serve --workers 2` replaces a killed worker while /healthz keeps
answering, `kill -9` of the master leaves no process holding the port, and a killed build's Lucene
indexer does not linger. Real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from indexer.process_dirs import process_alive as alive
from service.metrics import remove_orphaned_shared_dirs
from tests.conftest import REPO, data_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def children(pid: int) -> set[int]:
    """Live (not zombie) child pids of `pid`, from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            out.add(int(entry.name))
    return out


def workers_of(master: int) -> set[int]:
    """uvicorn's worker processes (spawned by multiprocessing; not its resource tracker)."""
    out = set()
    for pid in children(master):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.add(pid)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def healthy(base: str) -> bool:
    try:  # a generous timeout: a refused or reset connection fails at once, a busy shared machine is slow
        return httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def stop(master: subprocess.Popen) -> None:
    """SIGTERM to a `serve` master; its whole session (master and workers) killed if it has not exited in 30 s."""
    if alive(master.pid):
        master.send_signal(signal.SIGTERM)
    try:
        master.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait(timeout=10)


def port_bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def jvm_files(pids: set[int], since: float) -> list[Path]:
    """What HotSpot makes in /tmp (whatever TMPDIR says) for a JVM in process PID and removes only if
    its exit handlers run: the attach socket and the statistics file. Those of `pids` made since
    `since` (a stale one of an earlier process with a reused pid is older)."""
    user = pwd.getpwuid(os.getuid()).pw_name
    found = []
    for pid in pids:
        for path in (Path(f"/tmp/.java_pid{pid}"), Path(f"/tmp/hsperfdata_{user}/{pid}")):
            try:
                if path.stat().st_mtime >= since - 1:
                    found.append(path)
            except OSError:
                continue
    return found


def start_two_workers(index: Path, log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """`serve --workers 2` on INDEX, logging to LOG: (the master, its port) once both workers serve."""
    port = free_port()
    with open(log, "wb") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--index", str(index), "--port", str(port), "--workers", "2"],
            cwd=REPO, stdout=out, stderr=out, start_new_session=True, env={**os.environ, **(env or {})},
        )  # fmt: skip
    try:
        wait_until(lambda: log.read_text().count("Application startup complete") == 2, 120, "server did not start")
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}") and len(workers_of(master.pid)) >= 2, 60, "server did not start")
    except BaseException:
        os.killpg(master.pid, signal.SIGKILL)  # the master and its workers (a session of their own)
        raise
    return master, port


def test_workers_are_replaced_and_die_with_the_master(tiny_bm25_root, tmp_path):
    log = tmp_path / "serve.log"
    temp = tmp_path / "temp"  # the master's temporary folder, where its workers' metrics directory goes
    temp.mkdir()
    # both workers serving, so that the survivor answers while the other is replaced
    master, port = start_two_workers(tiny_bm25_root, log, {"TMPDIR": str(temp)})
    base = f"http://127.0.0.1:{port}"
    workers: set[int] = set()
    try:
        workers = workers_of(master.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        answered = 0
        deadline = time.monotonic() + 60
        while True:  # /healthz answers throughout, from the surviving worker and then the new one
            assert healthy(base), "healthz failed while a worker restarted"
            answered += 1
            now = workers_of(master.pid)
            if victim not in now and len(now) >= 2:
                break
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.05)
        replacement = workers_of(master.pid) - workers
        assert len(replacement) == 1 and answered > 0
        wait_until(lambda: healthy(base), 30, "not healthy after the restart")
        workers = children(master.pid)  # workers and the resource tracker

        master.send_signal(signal.SIGKILL)  # the master dies hard: its workers must follow
        master.wait(timeout=10)
        wait_until(lambda: not any(alive(w) for w in workers), 20, "workers outlived the master")
        wait_until(lambda: port_bindable(port), 20, "the port is still held")
        # Killed outright, the master left its metrics directory; the next master's start removes it.
        left = list(temp.glob(f"drsearch-metrics-{master.pid}-*"))
        assert len(left) == 1 and list(left[0].glob("*.db"))
        assert remove_orphaned_shared_dirs(temp) == left and not left[0].exists()
    finally:
        for pid in workers | {master.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_killed_build_takes_its_lucene_indexer_with_it(tmp_path):
    corpus = data_dir("scifact")
    build = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"),
         "--no-dense", "--chunk-words", "0", "--quiet"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    java: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not java:
            assert build.poll() is None, "the build finished before its Lucene child was seen"
            assert time.monotonic() < deadline, "no Lucene child appeared"
            java = {p for p in children(build.pid) if b"java" in Path(f"/proc/{p}/cmdline").read_bytes()}
            time.sleep(0.01)
        for pid in java:  # hold it (a stopped process still gets SIGKILL) so it cannot just finish or die of SIGPIPE
            os.kill(pid, signal.SIGSTOP)
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=10)
        wait_until(lambda: not any(alive(p) for p in java), 20, "the Lucene indexer outlived its build")
    finally:
        for pid in java | {build.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_new_connections_are_refused_while_workers_drain(tiny_bm25_root, tmp_path):
    """After SIGTERM, while a worker drains a request still in flight, a new connection is refused at
    once (a load balancer tries another server). The master kept its copy of the listening socket
    open, so connections waited in the backlog, unanswered, until it exited, and were reset then."""
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--index", str(tiny_bm25_root), "--port", str(port),
             "--workers", "2"], cwd=REPO, stdout=out, stderr=out, start_new_session=True,
            env={**os.environ, "DRSEARCH_SERVE_DRAIN_TIMEOUT_S": "8"},
        )  # fmt: skip
    try:
        # both workers serving: one still loading holds its copy of the socket until it has loaded
        wait_until(lambda: log.read_text().count("Application startup complete") == 2, 120, "server did not start")
        in_flight = socket.create_connection(("127.0.0.1", port))  # half a body: its worker drains until it ends
        in_flight.sendall(b"POST /v1/search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          b"content-length: 100\r\n\r\n{\"queries\"")  # fmt: skip
        time.sleep(0.5)
        master.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_until(refused, 4, "a new connection was accepted while the workers drained")
        assert master.poll() is None and time.monotonic() - signalled < 5  # still draining: refused, not gone
        in_flight.close()
        assert master.wait(timeout=60) in (0, -signal.SIGTERM), log.read_text()[-3000:]
    finally:
        stop(master)


@pytest.mark.parametrize("workers, stop_signal", [(1, signal.SIGTERM), (2, signal.SIGTERM), (1, signal.SIGHUP)],
                         ids=["sigterm-1", "sigterm-2", "sighup-1"])  # fmt: skip
def test_sigterm_drains_in_flight_searches_and_exits_cleanly(tiny_bm25_root, tmp_path, workers, stop_signal):
    """SIGTERM mid-search: the answers in flight arrive, the lifespan shuts down and the process exits.
    The JVM must leave the signal to Python: with its own handler the server hung mid-request.
    SIGHUP stops one process the same way (it killed it mid-request); under workers it restarts them."""
    import threading

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--index", str(tiny_bm25_root), "--port", str(port),
             "--workers", str(workers)], cwd=REPO, stdout=out, stderr=out, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),  # as under a terminal, not nohup
        )  # fmt: skip
    started = time.time()
    statuses: list[int | str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=20) as c:
            while not stop.is_set():
                try:
                    statuses.append(c.post("/v1/search", json={"queries": ["lava volcano"] * 16, "k": 5}).status_code)
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                    return  # closed: the listener, or an idle keep-alive connection the next request raced
                except httpx.HTTPError as exc:  # a timeout: the server hung
                    statuses.append(type(exc).__name__)
                    return

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        wait_until(lambda: healthy(base), 120, "server did not start")
        for t in threads:
            t.start()
        wait_until(lambda: len(statuses) >= 12, 60, "no searches answered")
        with_jvm = {master.pid} | workers_of(master.pid)
        master.send_signal(stop_signal)
        # after its graceful shutdown uvicorn raises the signal again, as a process killed by it would end
        try:
            code = master.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit within 60 s of {stop_signal.name}:\n{log.read_text()[-4000:]}")
        assert code in (0, -signal.SIGTERM), log.read_text()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if master.poll() is None:
            os.killpg(master.pid, signal.SIGKILL)
    text = log.read_text()
    assert set(statuses) == {200}, (statuses[-10:], text[-2000:])  # no request left hanging
    served = [json.loads(line) for line in text.splitlines() if line.startswith('{"ts"')]
    searched = [r["status"] for r in served if r["path"] == "/v1/search"]
    assert searched == [200] * len(statuses), text[-2000:]  # every search the server took was answered and received
    assert text.count("Application shutdown complete") == workers and "Traceback" not in text, text[-3000:]
    # ended by the re-raised signal, no exit handler ran: the JVMs must have made nothing that needs one
    assert jvm_files(with_jvm, started) == []


def test_a_worker_that_cannot_start_again_leaves_the_others_serving(tiny_bm25_root, tmp_path):
    """The build a `--workers` server pins is removed (as `prune` may); then a worker dies. Its replacement
    cannot open the build: uvicorn's supervisor stopped the whole server then, the healthy worker too."""
    import shutil

    from indexer import layout

    pinned = tmp_path / "pinned"
    shutil.copytree(layout.resolve_build(tiny_bm25_root), pinned)
    log = tmp_path / "serve.log"
    master, port = start_two_workers(pinned, log)
    base = f"http://127.0.0.1:{port}"
    workers: set[int] = set()
    try:
        workers = workers_of(master.pid)
        shutil.rmtree(pinned)
        os.kill(min(workers), signal.SIGKILL)
        wait_until(lambda: "the other workers keep serving" in log.read_text(), 60, "the replacement's failure was not logged")
        assert master.poll() is None, log.read_text()
        for _ in range(4):  # the surviving worker answers from the build it loaded
            found = httpx.post(f"{base}/v1/search", json={"queries": ["volcano"], "k": 1}, timeout=30)
            assert found.status_code == 200 and found.json()["results"][0]["hits"], found.text
    finally:
        stop(master)
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


class _Worker:
    """A stand-in for uvicorn's worker process: alive or dead (with an exit code), serving or starting."""

    def __init__(self, *, alive: bool, ready: bool = False, exitcode: int | None = None):
        self.alive, self.ready, self.exitcode, self.pid = alive, ready, exitcode, id(self)

    def is_alive(self, timeout: float = 5) -> bool:
        return self.alive

    def is_ready(self, timeout: float = 5) -> bool:
        return self.alive and self.ready

    def kill(self) -> None:
        self.alive = False

    def join(self) -> None:
        pass


def _supervisor(processes, monkeypatch):
    import threading
    from types import SimpleNamespace

    from service.server import PortReleasingSupervisor

    sup = PortReleasingSupervisor.__new__(PortReleasingSupervisor)  # no sockets, no signal handlers
    sup.config, sup.sockets, sup.processes = SimpleNamespace(timeout_worker_healthcheck=1), [], processes
    sup.should_exit, sup._retry_at, sup.failed_to_start, sup.started = threading.Event(), {}, False, []
    monkeypatch.setattr(sup, "_start", lambda idx: sup.started.append(idx))
    return sup


def test_a_slot_waiting_to_retry_that_a_rolling_restart_filled_is_left_to_its_new_worker(monkeypatch):
    """A SIGHUP's restart put a serving worker in the slot; the retry then replaced it, leaving that one
    unsupervised (and SIGTERM waiting on it forever)."""
    from uvicorn.config import STARTUP_FAILURE

    sup = _supervisor([_Worker(alive=False, exitcode=STARTUP_FAILURE), _Worker(alive=True, ready=True)], monkeypatch)
    sup.keep_subprocess_alive()
    assert 0 in sup._retry_at and not sup.should_exit.is_set()
    sup.processes[0] = _Worker(alive=True, ready=True)  # the rolling restart's new worker
    sup.RESTART_RETRY_S = 0.0
    sup._retry_at[0] = (0.0, sup._retry_at[0][1])
    sup.keep_subprocess_alive()
    assert sup.started == [] and sup._retry_at == {}


def test_only_a_serving_worker_keeps_a_server_whose_other_worker_cannot_start(monkeypatch):
    from uvicorn.config import STARTUP_FAILURE

    sup = _supervisor([_Worker(alive=False, exitcode=STARTUP_FAILURE), _Worker(alive=True, ready=False)], monkeypatch)
    sup.keep_subprocess_alive()  # the other is still starting, and may fail as this one did
    assert sup.should_exit.is_set() and sup.failed_to_start
