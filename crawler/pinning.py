"""Where the crawler connects: every host is looked up once, checked, and connections use exactly the
checked address (no DNS-rebinding window between the safety check and the connect).

With a host map, mapped hosts go to their target without any DNS lookup and unmapped hosts are
refused unless `--allow-dns`, so a "local mirror" crawl never reaches the real site. `PinnedResolver`
is Scrapy's TWISTED_DNS_RESOLVER; `SafetyMiddleware` asks the same `AddressBook` first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from crawler.urls import AddressRefused, allowed_addresses, connect_addresses, is_localhost_name, literal_ip

Resolve = Callable[[str], list[str]]


class AddressBook:
    """host -> (checked address or None, refusal reason); one lookup per host and crawl."""

    def __init__(self, host_map: dict[str, Any], resolve: Resolve, *, allow_loopback: bool, allow_dns: bool):
        self.host_map = {h.lower(): (str(v[0]), int(v[1])) for h, v in (host_map or {}).items()}
        self.resolve = resolve
        self.allow_loopback = allow_loopback
        self.allow_dns = allow_dns or not self.host_map
        self._known: dict[str, tuple[str | None, str]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> "AddressBook":
        """The crawl's one book (the resolver is built by the process, the middleware by the crawler: one crawl per process)."""
        global _shared
        if _shared is None:
            from scrapy.utils.misc import load_object

            resolve = settings.get("DRSEARCH_RESOLVE") or "crawler.urls.system_resolve"
            _shared = cls(settings.getdict("DRSEARCH_HOST_MAP"), load_object(resolve) if isinstance(resolve, str) else resolve,
                          allow_loopback=settings.getbool("DRSEARCH_ALLOW_PRIVATE"),
                          allow_dns=settings.getbool("DRSEARCH_ALLOW_DNS"))  # fmt: skip
        return _shared

    def mapped(self, host: str) -> tuple[str, int] | None:
        return self.host_map.get(host.lower())

    def needs_dns(self, host: str) -> bool:
        """Whether `lookup` would query DNS (else it answers at once: mapped, literal, localhost or refused)."""
        host = host.lower()
        return (host not in self._known and self.allow_dns and self.mapped(host) is None
                and literal_ip(host) is None and not is_localhost_name(host))  # fmt: skip

    def known(self, host: str) -> tuple[str | None, str] | None:
        return self._known.get(host.lower())

    def lookup(self, host: str) -> tuple[str | None, str]:
        """(address to connect to, "") or (None, reason: unmapped_host | private_address | dns_error). Blocking."""
        host = host.lower()
        if (hit := self._known.get(host)) is None:
            hit = self._known[host] = self._check(host)
        return hit

    def _check(self, host: str) -> tuple[str | None, str]:
        target = self.mapped(host)
        if target is None and not self.allow_dns and literal_ip(host) is None and not is_localhost_name(host):
            return None, "unmapped_host"
        try:
            if target is not None:
                addresses = allowed_addresses([target[0]], allow_loopback=self.allow_loopback)
            else:
                addresses = connect_addresses(host, self.resolve, allow_loopback=self.allow_loopback)
        except AddressRefused:
            return None, "private_address"
        except OSError:
            return None, "dns_error"
        return addresses[0], ""


_shared: AddressBook | None = None


@implementer(IResolverSimple)
class PinnedResolver:
    """Twisted resolver answering from the `AddressBook`: the address the safety check accepted, or a DNS error."""

    def __init__(self, reactor: Any, book: AddressBook):
        self.reactor, self.book = reactor, book

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> "PinnedResolver":
        return cls(reactor, AddressBook.from_settings(crawler.settings))

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred:
        d = threads.deferToThread(self.book.lookup, name) if self.book.needs_dns(name) else defer.succeed(self.book.lookup(name))
        return d.addCallback(self._answer, name)

    @staticmethod
    def _answer(hit: tuple[str | None, str], name: str) -> str:
        address, reason = hit
        if address is None:
            raise DNSLookupError(f"{name}: refused ({reason})")
        return address
