"""Where a live fetch connects: each new connection looks its host up once, is refused when any of
the answers is private, loopback or link-local (loopback only when allowed, for tests), and goes to
exactly the address that was checked. The check sits at connect time, so nothing (DNS rebinding, a
second lookup by the HTTP client) can slip between check and connect, and every hop (robots.txt,
each redirect target) passes it. Host header, SNI and certificate check keep the original name.
"""

from __future__ import annotations

import typing
from collections.abc import Callable

import anyio
import httpcore
import httpx

from crawler.urls import AddressRefused, connect_addresses
from indexer.errors import echo

Resolve = Callable[[str], list[str]]


class BlockedAddress(Exception):
    """A connection refused because of where it would go (one line: the host and the address)."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked addresses."""

    def __init__(self, resolve: Resolve, *, allow_loopback: bool):
        self.resolve, self.allow_loopback = resolve, allow_loopback
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:  # fmt: skip
        try:
            with anyio.fail_after(timeout):
                addresses = await anyio.to_thread.run_sync(
                    lambda: connect_addresses(host, self.resolve, allow_loopback=self.allow_loopback), abandon_on_cancel=True
                )  # fmt: skip
        except AddressRefused as exc:
            raise BlockedAddress(f"{echo(host)}: {exc}") from None
        except UnicodeError as exc:  # the resolver's IDNA step: a label over 63 characters, say
            raise httpcore.ConnectError(f"{echo(host)} is not a valid host name ({exc})") from None
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"{echo(host)}: no address within {timeout:g} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"{echo(host)} does not resolve ({exc})") from None
        error: Exception | None = None
        for address in addresses:  # IPv4 first; every one of them was checked
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:  # fmt: skip
        raise BlockedAddress(f"unix socket {echo(path)}: live fetches connect over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def checked_transport(resolve: Resolve, *, allow_loopback: bool) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through `CheckedBackend` (no proxy, no environment)."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx 0.28 takes no network backend; its pool is replaced by the same pool built with ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
        network_backend=CheckedBackend(resolve, allow_loopback=allow_loopback),
    )  # fmt: skip
    return transport
