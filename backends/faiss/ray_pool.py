"""Passage encoding spread over a Ray cluster: one encoder actor per GPU (or per CPU slot where there is none).

Each actor loads the model once and encodes whole shards with `encode_shard`, the function a local build
uses; the driver writes every returned shard into the embedding cache. A shard whose actor died is put
back in the queue and handed to the next free actor (Ray restarts the dead one, which then rejoins),
so a lost worker costs time, never vectors. `ray` is imported only here, inside functions: it is the
optional extra `drsearch[distributed]`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backends.faiss.encoder import model_path
from indexer.errors import ConfigError, DrsearchError
from indexer.settings import DenseSettings

Shard = tuple[list[bytes], list[str]]  # (text keys, embedded texts)
LOCAL = "local"  # --ray local: start a one-machine cluster bound to 127.0.0.1 inside this process


class EncoderActor:
    """Runs inside a Ray worker process: one loaded model, many shards."""

    def __init__(self, settings: dict[str, Any], threads: int):
        from backends.faiss.encoder import load_encoder
        from backends.threads import set_budget

        set_budget(max(1, threads))  # one CPU slot per actor (torch, FAISS, ONNX Runtime): do not oversubscribe the node
        self.settings = DenseSettings(**settings)
        self.model = load_encoder(self.settings)

    def info(self) -> dict[str, Any]:
        from backends.faiss.encoder import encoder_info

        return encoder_info(self.model, self.settings)

    def pid(self) -> int:
        return os.getpid()

    def encode(self, texts: list[str]) -> np.ndarray:
        from backends.faiss.cache import encode_shard

        return encode_shard(self.model, texts, self.settings)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the optional Ray dependency: pip install -e '.[distributed]'") from None
    return ray


# `ray start` turns token authentication on where ~/.ray/auth_token exists; a joining driver does not.
_AUTH_HINT = " (if the cluster uses token authentication, set RAY_AUTH_MODE=token)"


def connect(address: str, *, num_cpus: int | None = None) -> Any:
    """Join the cluster at `address` ('auto' = the one `ray start` runs here), or start a local one on 127.0.0.1."""
    if address == LOCAL or _is_loopback(address):
        # Ray resolves 127.0.0.1 to the machine's external address unless it believes clusters are off; with
        # this setting a local cluster binds to loopback only, and a loopback HOST:PORT is dialled as given.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    _check_reachable(address)
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as exc:  # unreachable address, version mismatch, bad token: one line
        hint = "" if address == LOCAL or os.environ.get("RAY_AUTH_MODE") else _AUTH_HINT
        raise ConfigError(f"cannot join the Ray cluster: {_first_line(exc)}{hint}", field="ray", where=address) from None
    return ray


def _is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on a HOST:PORT where no Ray head answers: Ray itself retries such an address for minutes.

    A Ray head's GCS is a gRPC (HTTP/2) server, which answers a client's connection preface with its
    own SETTINGS frame at once; a closed port, a silent listener or another protocol does not."""
    host, sep, port = address.rpartition(":")
    if address in (LOCAL, "auto") or "://" in address or not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", ""):  # TLS: the handshake comes first
                conn.sendall(_HTTP2_PREFACE)
                header = _read_exactly(conn, 9)
                if len(header) < 9 or header[3] != _HTTP2_SETTINGS:
                    raise ConfigError(
                        "no Ray cluster answers there (the port accepts connections but does not speak gRPC)",
                        field="ray", where=address,
                    )  # fmt: skip
    except TimeoutError:
        raise ConfigError(
            f"no Ray cluster answers there (nothing came back within {timeout_s:.0f} s)", field="ray", where=address
        ) from None
    except OSError as exc:
        raise ConfigError(f"no Ray cluster answers there ({exc.strerror or exc})", field="ray", where=address) from None


_HTTP2_SETTINGS = 0x4
# The HTTP/2 client connection preface followed by an empty SETTINGS frame (RFC 9113, section 3.4).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, _HTTP2_SETTINGS, 0, 0, 0, 0, 0])


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _remote_cause(exc: BaseException) -> str:
    """The error a Ray task or actor raised: the last line of the traceback Ray's message carries (its
    first line only names the actor)."""
    return (_ANSI.sub("", str(exc)).strip().splitlines() or [type(exc).__name__])[-1].strip()[:300]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class _Job:
    number: int
    keys: list[bytes]
    texts: list[str]
    attempts: int = 0
    failed_on: set[int] = field(default_factory=set)  # actors that died holding this shard


@dataclass
class PoolStats:
    shards: int = 0
    retried: int = 0  # shard submissions repeated because their actor died
    actor_failures: dict[int, int] = field(default_factory=dict)  # actor position -> deaths seen


class RayEncoderPool:
    """Encoder actors on the connected Ray cluster (ray.init already called)."""

    def __init__(
        self, settings: DenseSettings, *, workers: int | None = None, max_restarts: int = 2,
        max_attempts: int = 4, start_timeout_s: float = 600, shard_timeout_s: float = 3600,
    ):  # fmt: skip
        ray = import_ray()
        self.ray = ray
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 0))
        device = settings.device or ("cuda" if gpus else "cpu")
        if device.startswith("cuda") and not gpus:
            raise ConfigError("--device cuda: the Ray cluster has no GPUs; use --device cpu", field="device")
        on_gpu = device.startswith("cuda")
        count = workers or (gpus if on_gpu else cpus)
        if count < 1:
            raise ConfigError("the Ray cluster offers no CPU or GPU slot for an encoder", field="ray")
        options = {"num_gpus": 1, "num_cpus": 0} if on_gpu else {"num_cpus": 1}
        remote = ray.remote(max_restarts=max_restarts, max_task_retries=0, **options)(EncoderActor)
        # The model path as the driver resolves it: the actors run in other folders, maybe on other hosts.
        model = str(model_path(settings)) if settings.model else None
        payload = settings.model_copy(update={"device": device, "model": model}).model_dump()
        self.actors = [remote.remote(payload, 1) for _ in range(count)]
        self.max_restarts, self.max_attempts, self.shard_timeout_s = max_restarts, max_attempts, shard_timeout_s
        self.device = device
        try:
            infos = ray.get([a.info.remote() for a in self.actors], timeout=start_timeout_s)
            self._pids = ray.get([a.pid.remote() for a in self.actors], timeout=start_timeout_s)
        except Exception as exc:  # the model failed to load on a worker (bad path there, CUDA error, ...)
            self.close()
            raise ConfigError(f"encoder actors failed to start: {_remote_cause(exc)}", field="ray") from None
        self.encoder_info = infos[0]

    def pids(self) -> list[int]:
        """Process id of each actor as it started (position i = actor i)."""
        return list(self._pids)

    def run(
        self, shards: Iterable[Shard], write: Callable[[list[bytes], np.ndarray], None],
        *, on_submit: Callable[[int, int], None] | None = None,
    ) -> PoolStats:  # fmt: skip
        """Encode every shard on the actors and `write(keys, vectors)` each one in the driver.

        At most one shard per actor is in flight, so the driver holds O(actors) shards of texts.
        `on_submit(shard_number, actor_position)` is called after each submission (progress, tests)."""
        ray = self.ray
        from ray.exceptions import RayActorError

        stats = PoolStats()
        source = iter(shards)
        retry: list[_Job] = []
        idle: deque[int] = deque(range(len(self.actors)))
        alive = set(idle)
        inflight: dict[Any, tuple[_Job, int]] = {}

        def submit(job: _Job, actor: int) -> None:
            idle.remove(actor)
            job.attempts += 1
            inflight[self.actors[actor].encode.remote(job.texts)] = (job, actor)
            if on_submit is not None:
                on_submit(job.number, actor)

        exhausted = False
        while True:
            for job in list(retry):  # a failed shard goes to an actor it has not failed on, when one lives
                avoid = job.failed_on if alive - job.failed_on else set()
                actor = next((a for a in idle if a not in avoid), None)
                if actor is not None:
                    retry.remove(job)
                    submit(job, actor)
            while idle and not exhausted:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                else:
                    submit(_Job(stats.shards, *nxt), idle[0])
                    stats.shards += 1
            if not inflight:
                if retry:  # cannot happen while an actor lives: every live actor is idle here
                    raise DrsearchError("no live encoder actor is left on the Ray cluster")
                return stats
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=self.shard_timeout_s)
            if not done:
                raise DrsearchError(f"no shard finished within {self.shard_timeout_s:.0f} s on the Ray cluster")
            job, actor = inflight.pop(done[0])
            try:
                vectors = ray.get(done[0])
            except RayActorError:
                stats.retried += 1
                job.failed_on.add(actor)
                deaths = stats.actor_failures[actor] = stats.actor_failures.get(actor, 0) + 1
                if deaths > self.max_restarts:
                    alive.discard(actor)  # out of restarts: Ray will not bring it back
                else:
                    idle.append(actor)  # Ray restarts it; calls to it queue until it is back
                if job.attempts >= self.max_attempts or not alive:
                    raise DrsearchError(
                        f"shard {job.number} failed on {job.attempts} encoder actors ({len(alive)} left alive)"
                    ) from None
                retry.append(job)
                continue
            except Exception as exc:  # an error inside encode: not retried, it would fail again
                raise DrsearchError(f"shard {job.number} failed on the Ray cluster: {_remote_cause(exc)}") from None
            write(job.keys, np.asarray(vectors, dtype=np.float32))
            idle.append(actor)

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
