"""Running the API under uvicorn: one process, or N worker processes configured through env vars."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from typing import Any

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process as UvicornProcess

from indexer import layout
from indexer.errors import ConfigError
from service.metrics import SHARED_DIR_ENV, new_shared_dir
from service.settings import ServiceSettings

uvicorn_log = logging.getLogger("uvicorn.error")  # the supervisor's own log, as uvicorn writes it


def uvicorn_options(settings: ServiceSettings, *, in_process: bool = True) -> dict[str, Any]:
    """uvicorn settings shared by `serve` and the tests: the guarded h11 protocol (head timeout, JSON
    400s), the idle keep-alive timeout and the bound on draining at shutdown. Worker processes read the head timeout from the env."""
    from service.http_protocol import GuardedH11Protocol

    http: Any = "service.http_protocol:GuardedH11Protocol"
    if in_process:
        http = type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": settings.header_timeout_s})
    return dict(http=http, timeout_keep_alive=settings.idle_timeout_s, h11_max_incomplete_event_size=64 * 1024,
                timeout_graceful_shutdown=settings.drain_timeout_s)


def check_address(host: str, port: int) -> None:
    """ConfigError (one line) when HOST:PORT cannot be listened on: in use by another server, not an address
    of this machine, a port below 1024 for a user who may not bind it. A single uvicorn process binds only
    once the app has started, after the whole index has loaded (minutes for a large one), and then failed
    with its own log line after `Application startup complete`; the port is bound again by uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn binds it
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            raise ConfigError(f"cannot listen on {address} ({exc.strerror or exc})", field="port") from None


def serve(settings: ServiceSettings) -> None:
    """Serve until interrupted. Checks the index, the authority list and the address first, so a bad path,
    a malformed list or a port in use is a one-line error before any process starts or the index loads."""
    import uvicorn

    from ranker.authority import AuthorityList
    from ranker.settings import SearchSettings

    layout.resolve_build(settings.index)
    AuthorityList.load(SearchSettings().authority_list)  # names file, line and field of the first problem
    check_address(settings.host, settings.port)
    common = dict(host=settings.host, port=settings.port, log_level="info", access_log=False, lifespan="on")
    if settings.workers <= 1:
        from service.app import create_app

        _hangup_drains()
        uvicorn.run(create_app(settings), **common, **uvicorn_options(settings))
        return
    # Worker processes import the app by name and rebuild the settings from the environment.
    # Each worker follows `current` itself (an admin reload reaches only the worker that receives it).
    watch_s = settings.watch_s or 5.0
    # Made absolute for the workers; resolving ROOT/current itself would pin them to the build it names now.
    index = layout.current_link_as_root(settings.index).resolve()
    os.environ.update(settings.model_copy(update={"index": index, "watch_s": watch_s}).to_env())
    # /metrics shows every worker's counts whichever worker answers (service.metrics); a fresh directory
    # each start, as prometheus_client requires, removed at exit.
    shared = new_shared_dir()
    try:
        os.environ[SHARED_DIR_ENV] = str(shared)
        config = uvicorn.Config("service.app:app_from_env", factory=True, workers=settings.workers, **common,
                                **uvicorn_options(settings, in_process=False))  # fmt: skip
        supervisor = PortReleasingSupervisor(config, sockets=[config.bind_socket()])
        supervisor.run()  # what uvicorn.run does for workers
        if supervisor.failed_to_start:  # uvicorn's supervisor returns as after a clean stop
            raise SystemExit(STARTUP_FAILURE)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _hangup_drains() -> None:
    """SIGHUP (say, the terminal that started `serve` closed) stops one process as SIGTERM does, letting
    the requests in flight finish; its default killed the process mid-request. Where SIGHUP is ignored
    (`nohup`) or already handled, it is left so. Under `--workers N`, uvicorn's supervisor takes SIGHUP
    as a rolling restart of the workers instead."""
    if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, lambda *_: signal.raise_signal(signal.SIGTERM))


class PortReleasingSupervisor(Multiprocess):
    """uvicorn's worker supervisor, with two changes.

    It closes its own copy of the listening socket before it stops the workers. Each worker closes its
    copy as its drain begins, so the port is then released and new connections are refused at once;
    with the master's copy open they waited in the backlog, unanswered, until the master exited, and
    were reset then.

    A worker that fails to start while others serve (one that died and whose build was pruned since, or
    whose `current` build the others refuse) leaves them serving and is tried again every
    `RESTART_RETRY_S`; uvicorn's stopped the whole server. Only when no worker is left does it stop."""

    RESTART_RETRY_S = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # worker slot -> when its next start is tried, and the process that failed there (a SIGHUP's rolling
        # restart or SIGTTOU/SIGTTIN may have put another in the slot since: that one is left alone)
        self._retry_at: dict[int, tuple[float, UvicornProcess]] = {}
        self.failed_to_start = False  # no worker could start: `serve` exits 3, as a single process does

    def keep_subprocess_alive(self) -> None:
        for idx in [idx for idx, (_, failed) in self._retry_at.items() if idx >= len(self.processes) or self.processes[idx] is not failed]:
            del self._retry_at[idx]
        for idx, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if idx in self._retry_at:
                if time.monotonic() >= self._retry_at[idx][0]:
                    del self._retry_at[idx]
                    self._start(idx)
                continue
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or dead already
            process.join()
            if self.should_exit.is_set():
                return
            if process.exitcode != STARTUP_FAILURE:
                uvicorn_log.info("Child process [%s] died", process.pid)
                self._start(idx)
            elif any(other.is_ready(timeout=1) for i, other in enumerate(self.processes) if i != idx and i not in self._retry_at):
                # serving, not merely alive: workers still starting may fail as this one did
                uvicorn_log.error("Child process [%s] failed to start; the other workers keep serving; trying again "
                                  "in %g s", process.pid, self.RESTART_RETRY_S)  # fmt: skip
                self._retry_at[idx] = (time.monotonic() + self.RESTART_RETRY_S, process)
            else:
                uvicorn_log.error("Child process [%s] failed to start and no worker is serving: stopping", process.pid)
                self.failed_to_start = True
                self.should_exit.set()
                return

    def _start(self, idx: int) -> None:
        process = UvicornProcess(self.config, self.sockets)
        process.start()
        self.processes[idx] = process

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
