"""The crawler's network guard as downloader middlewares: no request reaches a forbidden address.

Why two places: every request Scrapy makes - start URLs, item pages, pagination, 3xx and meta-refresh
redirects (their new requests pass through the downloader middlewares again), robots.txt (fetched
through the engine, so through these middlewares too), links from feeds and tips - goes through the
downloader middlewares before it is fetched.

* ``NetGuardMiddleware`` (early, right after the per-source options) reads the URL with the very parser
  the fetcher uses (``urlparse_cached`` on the Request's w3lib-cleaned URL, which is what the HTTP
  handler connects to), refuses non-http(s) schemes and IP literals in forbidden networks (Twisted
  does not consult a resolver for those), and checks the proxy.
* ``NetGuardLateMiddleware`` (last before the download handler) checks again what Scrapy's own
  middlewares may have changed (a proxy from the environment set by ``HttpProxyMiddleware``) and turns a
  resolution refused by ``crawlers.resolver.GuardedResolver`` (host names: every address checked at
  connect time) into ``IgnoreRequest`` with its reason, before ``RetryMiddleware`` would retry it.

Through a proxy: the proxy's own address is checked (literal or resolved); the target's host name is
resolved by the proxy, so only target IP literals (including numeric forms such as ``2130706433``) can
be checked here - a name the proxy resolves to an internal address of the proxy's network is not.

A refusal is counted in the ``leaksentinel/blocked`` stat, kept as ``leaksentinel/first_blocked`` and
logged once per reason.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import DNSLookupError

from core.netguard import TargetPolicy, UnsafeTarget
from crawlers.resolver import policy_from_settings, refusals

__all__ = ["BLOCKED_STAT", "NetGuardLateMiddleware", "NetGuardMiddleware", "literal_address"]

log = logging.getLogger(__name__)

BLOCKED_STAT = "leaksentinel/blocked"
FIRST_BLOCKED_STAT = "leaksentinel/first_blocked"
_SCHEMES = frozenset({"http", "https"})


def literal_address(host: str) -> str | None:
    """The IP address ``host`` spells, also in the numeric forms C resolvers accept (``127.1``, ``0x7f.1``)."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))  # what getaddrinfo would make of it
        except OSError:
            return None
    return None


class NetGuardMiddleware:
    """Refuses, before any connection, URLs and proxies the policy forbids (see the module docstring)."""

    def __init__(self, crawler: Any, policy: TargetPolicy) -> None:
        self.crawler = crawler
        self.policy = policy
        self._logged: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> NetGuardMiddleware:
        return cls(crawler, policy_from_settings(crawler.settings))

    def refusal(self, request: Request) -> str | None:
        """Why ``request`` may not be fetched, or None."""
        parsed = urlparse_cached(request)
        scheme = (parsed.scheme or "").lower()
        if scheme not in _SCHEMES:
            return f"blocked: {scheme or 'no'} scheme is not crawled ({request.url[:200]})"
        host = parsed.hostname or ""
        if not host:
            return f"blocked: URL has no host ({request.url[:200]})"
        proxy = request.meta.get("proxy")
        if proxy:
            reason = self._proxy_refusal(str(proxy))
            if reason:
                return reason
        ip = literal_address(host)
        if ip is not None:
            reason = self.policy.refusal(ip)
            if reason:
                return f"blocked: {reason}"
        # Host names: GuardedResolver checks every address at connect time (when not proxied).
        return None

    def _proxy_refusal(self, proxy: str) -> str | None:
        try:
            parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return f"blocked: not a valid proxy URL {proxy!r}"
        if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
            return f"blocked: not an http(s) proxy {proxy!r}"
        if not self.policy.checks_addresses:
            return None
        host = literal_address(parts.hostname) or parts.hostname
        try:
            self.policy.resolve(host, port)
        except UnsafeTarget as exc:
            return f"blocked: proxy {parts.hostname}: {str(exc).removeprefix('blocked: ')}"
        except OSError as exc:
            return f"blocked: cannot resolve proxy {parts.hostname}: {exc}"
        return None

    def block(self, request: Request, reason: str) -> IgnoreRequest:
        stats = getattr(self.crawler, "stats", None)
        if stats is not None:
            stats.inc_value(BLOCKED_STAT)
            if stats.get_value(FIRST_BLOCKED_STAT) is None:
                stats.set_value(FIRST_BLOCKED_STAT, reason)
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning("%s (refused %s)", reason, request.url[:300], extra={"leaksentinel_error": reason})
        return IgnoreRequest(reason)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        reason = self.refusal(request)
        if reason is not None:
            raise self.block(request, reason)


class NetGuardLateMiddleware(NetGuardMiddleware):
    """The same check last before the download, and resolver refusals reported with their reason."""

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        """A rendered page's final URL is checked too: Chromium follows HTTP redirects without asking."""
        if not request.meta.get("playwright") or response.url == request.url:
            return response
        host = urlsplit(response.url).hostname or ""
        if not host or not self.policy.checks_addresses:
            return response
        try:
            self.policy.resolve(literal_address(host) or host, 80)
        except UnsafeTarget as exc:
            raise self.block(
                request, str(exc) if str(exc).startswith("blocked:") else f"blocked: {exc}"
            ) from None
        except OSError as exc:
            raise self.block(request, f"blocked: cannot resolve {host}: {exc}") from None
        return response

    def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> None:
        if not isinstance(exception, CannotResolveHostError | DNSLookupError):
            return None
        hosts = [urlparse_cached(request).hostname or ""]
        if request.meta.get("proxy"):
            proxy = str(request.meta["proxy"])
            hosts.insert(0, urlsplit(proxy if "://" in proxy else f"http://{proxy}").hostname or "")
        for host in hosts:
            reason = refusals.get(host)
            if reason is not None:
                raise self.block(request, reason)
        return None
