"""The crawler's DNS resolver: every address is checked before Twisted may connect to it.

Why a resolver: a check made on the URL before the request (or when a tip is reported) can be
defeated by DNS that answers differently at connect time (rebinding), by a redirect, or by a link in
a fetched page. Twisted connects only to the addresses its name resolver hands it, so checking them
*here* - after the one and only resolution, before the connection - means the crawler connects to the
checked address and nothing else. Installed with ``installNameResolver``, it serves both Twisted paths:
``HostnameEndpoint`` (the HTTP agent, IP literals included) and ``reactor.resolve`` (``connectTCP`` of
the proxy tunnel).

A host with any forbidden address gets no address at all (the request fails with ``DNSLookupError``);
the reason is kept in ``refusals`` so ``crawlers.middlewares.netguard`` can report it in one line
instead of a misleading "DNS lookup failed".

Usage (crawlers/settings.py)::

    TWISTED_DNS_RESOLVER = "crawlers.resolver.GuardedResolver"
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from core.netguard import TargetPolicy, UnsafeTarget, parse_networks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.settings import BaseSettings

__all__ = ["GuardedResolver", "policy_from_settings", "refusals"]

log = logging.getLogger(__name__)

#: Host name -> why its resolution was refused ("blocked: evil.example resolves to 10.0.0.1 ...").
refusals: dict[str, str] = {}


def policy_from_settings(settings: BaseSettings) -> TargetPolicy:
    """The run's policy from its Scrapy settings (crawlers.run fills them from the operator's settings).

    Default (a crawl started outside crawlers.run): private targets refused.
    """
    return TargetPolicy(
        allow_private=settings.getbool("LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", False),
        allow_networks=parse_networks(settings.getlist("LEAKSENTINEL_CRAWL_ALLOW_NETWORKS")),
        block_networks=parse_networks(settings.getlist("LEAKSENTINEL_CRAWL_BLOCK_NETWORKS")),
    )


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - Twisted never cancels a TCP resolution today
        pass


@implementer(IHostnameResolver)
class GuardedResolver:
    """``getaddrinfo`` in the reactor's thread pool, then the policy on every address (all or nothing)."""

    def __init__(self, reactor: Any, policy: TargetPolicy) -> None:
        self.reactor = reactor
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        # Scrapy passes the CrawlerProcess here; only its settings are used.
        return cls(reactor, policy_from_settings(crawler.settings))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def _lookup(self, host: str, port: int, family: int) -> list[tuple[int, tuple[Any, ...]]]:
        """Runs in a thread: resolve once, check every address; [] when refused or unresolvable."""
        try:
            infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        addrs: list[tuple[int, tuple[Any, ...]]] = [
            (int(info[0]), tuple(info[4])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)
        ]
        if not self.policy.checks_addresses:
            return addrs
        for _, sockaddr in addrs:
            reason = self.policy.refusal(str(sockaddr[0]))
            if reason is not None:
                shown = reason if str(sockaddr[0]) == host else f"{host}: {reason}"
                refusals[host] = f"blocked: {shown}"
                return []
        if not addrs:
            refusals[host] = f"blocked: {host} resolves to no address"
        return addrs

    def resolveHostName(
        self,
        resolutionReceiver: Any,  # an IResolutionReceiver (zope interfaces do not type-check)
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[Any]] | None = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        types = set(addressTypes or (IPv4Address, IPv6Address))
        if types == {IPv4Address}:
            family = socket.AF_INET
        elif types == {IPv6Address}:
            family = socket.AF_INET6
        else:
            family = socket.AF_UNSPEC
        deferred = deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self._lookup, hostName, portNumber, family
        )

        def deliver(addrs: list[tuple[int, tuple[Any, ...]]]) -> None:
            for fam, sockaddr in addrs:
                if fam == socket.AF_INET6:
                    resolutionReceiver.addressResolved(IPv6Address("TCP", *sockaddr))
                else:
                    resolutionReceiver.addressResolved(IPv4Address("TCP", *sockaddr))
            resolutionReceiver.resolutionComplete()

        def failed(failure: Any) -> None:
            log.error("name resolution of %s failed: %s", hostName, failure.getErrorMessage())
            resolutionReceiver.resolutionComplete()

        deferred.addCallbacks(deliver, failed)
        return resolution


def check_host_now(policy: TargetPolicy, host: str, port: int) -> None:
    """Raise ``UnsafeTarget`` when ``host`` (a name or literal) may not be reached (used for proxies)."""
    try:
        policy.resolve(host, port)
    except OSError as exc:
        raise UnsafeTarget(f"cannot resolve {host}: {exc}") from None
