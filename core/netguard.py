"""SSRF guard: no URL from a tenant or a crawled page makes the service call into private networks.

Two checks, both needed:

* ``check_url`` when a URL enters the system (``subscribe``, a source definition): scheme, host, and -
  unless private targets are allowed - every address the host resolves to must be public. It gives the
  user a clear error up front.
* ``guarded_transport`` when the service actually connects. A name that resolved to a public address at
  subscribe time may resolve to ``127.0.0.1`` now (DNS rebinding), so the check is repeated *inside the
  connect*: the transport's network backend resolves the host once, refuses if any address is not public,
  and opens the TCP connection to that very IP. Only the TCP target changes: httpx still sends the
  original ``Host`` header and uses the original name for TLS SNI and certificate checks, so nothing
  about the request differs and there is no window between check and use.

The crawler applies the same rules through a ``TargetPolicy`` (``crawlers.resolver`` checks every address a
host resolves to before Twisted connects to it; ``crawlers.middlewares.netguard`` refuses forbidden URLs and
IP literals; the browser of ``--render`` sources is checked request by request). A policy can allow some
private networks (``allow_networks``: the operator's own intranet site, the tests' loopback site) and always
refuse others (``block_networks``), so "allow these, block those" needs no fake DNS.

Usage::

    url = check_url(user_url, allow_private=settings_allow_private)
    policy = TargetPolicy(allow_private=False, allow_networks=parse_networks("127.0.0.1/32"))
    policy.resolve("paste.example", 443)   # every address, each checked, or UnsafeTarget
    with httpx.Client(transport=guarded_transport(allow_private=False), trust_env=False) as c: ...
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import certifi
from w3lib.url import safe_url_string

from core.errors import BadInput

if typing.TYPE_CHECKING:
    import httpx

    from core.settings import Settings

__all__ = [
    "ALLOW_NETWORKS_ENV",
    "BLOCK_NETWORKS_ENV",
    "TargetPolicy",
    "UnsafeTarget",
    "address_kind",
    "check_url",
    "fetcher_url",
    "guarded_transport",
    "is_public_address",
    "parse_networks",
    "resolve_public",
]

#: Environment variables (until core.settings has them) naming networks a crawl may reach although they
#: are private (``127.0.0.1/32,10.1.0.0/16``) and networks it may never reach, even with private allowed.
ALLOW_NETWORKS_ENV = "LEAKSENTINEL_CRAWL_ALLOW_NETWORKS"
BLOCK_NETWORKS_ENV = "LEAKSENTINEL_CRAWL_BLOCK_NETWORKS"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(BadInput):
    """A URL or address the service must not call (wrong scheme, or a non-public network)."""


def is_public_address(ip: str) -> bool:
    """True only for a globally routable unicast address; False for anything unparsable.

    IPv6 forms that embed an IPv4 address (``::ffff:a.b.c.d``, 6to4, NAT64) are judged by that address.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
        if addr.is_site_local:
            return False
    elif addr in _CGNAT:
        return False
    return not (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


def resolve_public(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, or ``UnsafeTarget`` if any of them is not public.

    All must be public because a client may try any of them. Resolution failures raise ``OSError``
    (``socket.gaierror``) unchanged, so callers can treat them as transient.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
    bad = [ip for ip in ips if not is_public_address(ip)]
    if bad or not ips:
        raise UnsafeTarget(f"refusing {host}: resolves to a non-public address ({', '.join(bad) or 'none'})")
    return ips


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    embedded = addr.ipv4_mapped or addr.sixtofour
    if embedded is None and addr in _NAT64:
        embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return embedded


def address_kind(ip: str) -> str:
    """Why an address is not public, in a word or two ("loopback", "private", "link-local" ...)."""
    addr = _address(ip)
    if addr is None:
        return "unparsable"
    if isinstance(addr, ipaddress.IPv6Address) and (embedded := _embedded_v4(addr)) is not None:
        return address_kind(str(embedded))
    for kind, flag in (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("carrier-grade NAT", isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT),
        ("private", addr.is_private),
        ("reserved", addr.is_reserved),
    ):
        if flag:
            return kind
    return "non-public" if not is_public_address(ip) else "public"


def parse_networks(value: str | Iterable[str] | None) -> tuple[Network, ...]:
    """Networks from ``"127.0.0.1/32, 10.1.0.0/16"`` (or a list); ``BadInput`` naming a malformed one."""
    if value is None:
        return ()
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    out: list[Network] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise BadInput(f"not a network: {text!r} (expected e.g. 10.1.0.0/16 or 127.0.0.1/32)") from None
    return tuple(out)


def _in_any(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[Network]) -> Network | None:
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [addr]
    if isinstance(addr, ipaddress.IPv6Address) and (embedded := _embedded_v4(addr)) is not None:
        candidates.append(embedded)  # ::ffff:10.0.0.1 is 10.0.0.1 to a dual-stack socket
    for net in nets:
        for cand in candidates:
            if cand.version == net.version and cand in net:
                return net
    return None


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses the service may connect to.

    Order: ``block_networks`` always refuse; then ``allow_private`` allows everything; then
    ``allow_networks`` allow those private networks only; anything else must be public.
    """

    allow_private: bool = False
    allow_networks: tuple[Network, ...] = ()
    block_networks: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> TargetPolicy:
        """The operator's decision: ``private_targets_allowed`` plus the networks of the settings
        ``crawl_allow_networks`` / ``crawl_block_networks`` (or, when ``environ`` is given, its variables)."""
        if environ is not None:
            allow, block = environ.get(ALLOW_NETWORKS_ENV), environ.get(BLOCK_NETWORKS_ENV)
        else:
            allow, block = settings.crawl_allow_networks, settings.crawl_block_networks
        return cls(
            allow_private=settings.private_targets_allowed,
            allow_networks=parse_networks(allow),
            block_networks=parse_networks(block),
        )

    @property
    def checks_addresses(self) -> bool:
        """False when every address is allowed (no resolution needed to decide)."""
        return not (self.allow_private and not self.block_networks)

    def refusal(self, ip: str) -> str | None:
        """None when ``ip`` may be connected to, else the reason ("10.0.0.1 is a private address")."""
        addr = _address(ip)
        if addr is None:
            return f"{ip!r} is not an IP address"
        blocked = _in_any(addr, self.block_networks)
        if blocked is not None:
            return f"{ip} is in the blocked network {blocked}"
        if self.allow_private or _in_any(addr, self.allow_networks) is not None:
            return None
        if is_public_address(ip):
            return None
        return f"{ip} is a {address_kind(ip)} address"

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, each allowed, or ``UnsafeTarget`` naming the first refused.

        All must pass because a client may try any of them. Resolution failures raise ``OSError``.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not ips:
            raise UnsafeTarget(f"{host} resolves to no address")
        for ip in ips:
            reason = self.refusal(ip)
            if reason is not None:
                shown = reason if ip == host else f"{host}: {reason}"
                raise UnsafeTarget(f"blocked: {shown}")
        return ips


def fetcher_url(url: str) -> str:
    """``url`` as the crawler's fetchers see it (w3lib's WHATWG-style cleanup, as every Scrapy Request does).

    Why: ``http://169.254.169.254\\@93.184.215.14/`` is host 93.184.215.14 to ``urllib`` but
    169.254.169.254 to Scrapy and to browsers (a backslash ends the authority). Checks must parse what
    the fetcher will fetch, not the raw string.
    """
    try:
        return str(safe_url_string(url))
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {url!r} ({exc})") from None


def _idna(host: str) -> str:
    try:
        return host.lower() if host.isascii() else host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host.lower()


def check_url(url: str, *, allow_private: bool = False, policy: TargetPolicy | None = None) -> str:
    """``url`` normalised (lower-case scheme and host, IDNA host, no fragment), or ``UnsafeTarget``.

    The URL is first read as the fetchers read it (``fetcher_url``); a URL whose host differs between
    that reading and ``urllib``'s is refused as ambiguous. With private targets not allowed the host is
    resolved now and every address must pass ``policy`` (by default: be public).
    """
    policy = policy or TargetPolicy(allow_private=allow_private)
    if (
        not isinstance(url, str)
        or not url
        or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url)
    ):
        raise UnsafeTarget(f"not a valid URL: {url!r}")
    fetched = fetcher_url(url)
    try:
        parts = urlsplit(fetched)
        port = parts.port
        raw_host = urlsplit(url).hostname
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {url!r} ({exc})") from None
    if _idna(raw_host or "") != _idna(parts.hostname or ""):
        raise UnsafeTarget(f"ambiguous URL (a backslash or a stray '@' hides its real host): {url!r}")
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise UnsafeTarget(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}: {url}")
    host = parts.hostname
    if not host:
        raise UnsafeTarget(f"URL has no host: {url}")
    try:
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeTarget(f"not a valid host name: {host!r}") from None
    if policy.checks_addresses:
        try:
            policy.resolve(ascii_host, port or (443 if scheme == "https" else 80))
        except OSError as exc:
            raise UnsafeTarget(f"cannot resolve host {ascii_host}: {exc}") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc = f"{netloc}:{port}"
    userinfo, sep, _ = parts.netloc.rpartition("@")
    if sep:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


@functools.lru_cache(maxsize=1)
def _guarded_transport_class() -> type[httpx.HTTPTransport]:
    """The transport class, built on first use: httpx and httpcore (with httpx's command line: click,
    rich, pygments) cost a crawl process ~100 ms and ~5 MB it never needs (Scrapy fetches, not httpx)."""
    import httpcore
    import httpx

    class _GuardedBackend(httpcore.SyncBackend):
        """Resolves, checks and connects to the checked IP in one step (see the module docstring)."""

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
        ) -> httpcore.NetworkStream:
            try:
                ips = resolve_public(host, port)
            except OSError as exc:  # resolution failed: a connect error, so transient
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            last: Exception | None = None
            for ip in ips:
                try:
                    return super().connect_tcp(ip, port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None
            raise last

    class _GuardedTransport(httpx.HTTPTransport):
        def __init__(self) -> None:
            super().__init__(trust_env=False, verify=_ssl_context())
            # httpx has no public hook for the network backend; swap in a pool built with ours (same defaults).
            self._pool = httpcore.ConnectionPool(
                ssl_context=_ssl_context(),
                max_connections=100,
                max_keepalive_connections=20,
                keepalive_expiry=5.0,
                network_backend=_GuardedBackend(),
            )

    return _GuardedTransport


def guarded_transport(allow_private: bool) -> httpx.HTTPTransport:
    """An httpx transport that refuses, at connect time, hosts resolving to non-public addresses.

    With ``allow_private`` True it is a plain transport (the embedded default posts to local receivers).
    Use it with ``trust_env=False`` and without redirects so neither a proxy nor a 3xx bypasses it.
    """
    if allow_private:
        import httpx

        return httpx.HTTPTransport(trust_env=False, verify=_ssl_context())
    return _guarded_transport_class()()


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~40 ms, every send reused it."""
    return ssl.create_default_context(cafile=certifi.where())
