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

Usage::

    url = check_url(user_url, allow_private=settings_allow_private)
    with httpx.Client(transport=guarded_transport(allow_private=False), trust_env=False) as c: ...
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import typing
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpcore
import httpx

from core.errors import BadInput

__all__ = ["UnsafeTarget", "check_url", "guarded_transport", "is_public_address", "resolve_public"]

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


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` normalised (lower-case scheme and host, IDNA host, no fragment), or ``UnsafeTarget``.

    With ``allow_private`` False the host is resolved now and must be public (see ``resolve_public``).
    """
    if (
        not isinstance(url, str)
        or not url
        or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url)
    ):
        raise UnsafeTarget(f"not a valid URL: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {url!r} ({exc})") from None
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
    if not allow_private:
        try:
            resolve_public(ascii_host, port or (443 if scheme == "https" else 80))
        except OSError as exc:
            raise UnsafeTarget(f"cannot resolve host {ascii_host}: {exc}") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc = f"{netloc}:{port}"
    userinfo, sep, _ = parts.netloc.rpartition("@")
    if sep:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


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


def guarded_transport(allow_private: bool) -> httpx.HTTPTransport:
    """An httpx transport that refuses, at connect time, hosts resolving to non-public addresses.

    With ``allow_private`` True it is a plain transport (the embedded default posts to local receivers).
    Use it with ``trust_env=False`` and without redirects so neither a proxy nor a 3xx bypasses it.
    """
    if allow_private:
        return httpx.HTTPTransport(trust_env=False, verify=_ssl_context())
    return _GuardedTransport()


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~40 ms, every send reused it."""
    return ssl.create_default_context(cafile=certifi.where())
