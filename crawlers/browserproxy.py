"""The browser's egress proxy: every connection Chromium makes for a ``--render`` source goes through here.

Why: the route handler (crawlers/browserguard.py) sees each request once, before Chromium connects, so
two things escape it. Chromium follows an HTTP 3xx without routing the new request again, and it resolves
the host name itself after the handler checked it (a DNS answer that changes in between, "rebinding",
reaches an internal address). With Chromium pointed at this proxy (``--proxy-server``, loopback not
bypassed) Chromium resolves nothing: every request, redirects included, arrives here as an absolute-form
``GET http://host/...`` or a ``CONNECT host:443`` tunnel; the host is resolved *once*, every address is
checked with the run's ``TargetPolicy``, and the proxy connects to the checked IP itself. A refusal is a
``403`` with the reason (a failed tunnel for https), counted with the browser guard's refusals.

With an upstream proxy (a source's ``--proxy``) the request is chained through it (``CONNECT`` for
tunnels, absolute-form for http) and, as on the Scrapy path, only the upstream's address is checked: the
upstream resolves the target (target IP literals are still checked here).

Bounds: request head size and header count, one request per client connection (``Connection: close``),
request bodies only with a ``Content-Length`` up to ``max_body``, connect timeout, idle timeout on every
read, a cap on concurrent connections, and ``close()`` ends every open connection.

Usage::

    proxy = BrowserProxy(policy, upstream=source.proxy)
    server = proxy.start_in_thread()          # "http://127.0.0.1:PORT", for Playwright's launch options
    ...
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import threading
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.netguard import TargetPolicy
from crawlers.middlewares.netguard import literal_address

__all__ = ["BrowserProxy", "Upstream", "parse_upstream", "process_proxy", "stop_process_proxy"]

log = logging.getLogger(__name__)

#: Hop-by-hop headers: never forwarded (RFC 9110 7.6.1), plus the proxy-only ones browsers send.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
    }
)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Reply(Exception):
    """Answer the client with ``status`` and a one-line reason, then close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Upstream:
    """A source's own proxy, which the browser's requests are chained through."""

    scheme: str
    host: str
    port: int
    authorization: str | None  # "Basic ..." from the URL's user info, sent as Proxy-Authorization


def parse_upstream(url: str) -> Upstream:
    """``http(s)://[user:pass@]host[:port]`` (scheme optional, as Scrapy accepts), or ``ValueError``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"not an http(s) proxy: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    auth = None
    if parts.username is not None:
        creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + b64encode(creds.encode()).decode("ascii")
    return Upstream(scheme, parts.hostname, port, auth)


def _split_hostport(authority: str, default_port: int | None) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` -> (host, port); ``_Reply(400)`` when malformed."""
    host, port_text = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _Reply(400, f"bad authority {authority[:100]!r}")
        host, rest = authority[1:end], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _Reply(400, f"bad authority {authority[:100]!r}")
        port_text = rest[1:]
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _Reply(400, f"bad port in {authority[:100]!r}")
        port = int(port_text)
    elif default_port is None:
        raise _Reply(400, f"no port in {authority[:100]!r}")
    else:
        port = default_port
    if not host or any(c in host for c in "@/\\ ") or not host.isascii():
        raise _Reply(400, f"bad host in {authority[:100]!r}")
    return host.lower(), port


class BrowserProxy:
    """A guarded forward HTTP proxy for one crawl run (see the module docstring)."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        upstream: str | None = None,
        max_connections: int = 64,
        max_head_bytes: int = 32_768,
        max_headers: int = 100,
        max_body: int = 16_000_000,
        connect_timeout: float = 10.0,
        idle_timeout: float = 60.0,
        on_refusal: Callable[[str, str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.upstream_url = upstream or None
        self.max_connections = max_connections
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers
        self.max_body = max_body
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.on_refusal = on_refusal
        #: Every refusal's reason, in order (bounded: the first 1000).
        self.refusals: list[str] = []
        #: Every target connected to ("host:port", through the upstream too), bounded like ``refusals``.
        self.forwarded: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen in the running loop; the proxy's URL (``http://127.0.0.1:PORT``)."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._accept, host, port, limit=self.max_head_bytes, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def start_in_thread(self, host: str = "127.0.0.1") -> str:
        """Run in a daemon thread with a loop of its own (independent of Twisted's); the proxy's URL."""
        started = threading.Event()
        result: dict[str, object] = {}

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                result["url"] = loop.run_until_complete(self.start(host))
            except BaseException as exc:  # reported to the caller below
                result["error"] = exc
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.close())
                loop.close()

        self._thread = threading.Thread(target=run, name="leaksentinel-browser-proxy", daemon=True)
        self._thread.start()
        started.wait(10)
        if "error" in result:
            raise RuntimeError(f"the browser proxy did not start: {result['error']}")
        if "url" not in result:
            raise RuntimeError("the browser proxy did not start within 10 s")
        return str(result["url"])

    def stop(self) -> None:
        """End the thread started by ``start_in_thread`` (and every connection)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None

    # -- one client connection -------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._tasks) >= self.max_connections:
            await self._reply(writer, 503, "too many connections to the browser proxy")
            return
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except _Reply as reply:
            await self._reply(writer, reply.status, reply.reason)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:  # never let one hostile request end the proxy
            log.exception("browser proxy: unexpected error")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, status: int, reason: str) -> None:
        body = (reason.replace("\r", " ").replace("\n", " ") + "\n").encode("utf-8", "replace")
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(Exception):
            writer.write(head.encode("ascii") + body)
            await asyncio.wait_for(writer.drain(), 5)
        writer.close()

    def _refuse(self, reason: str, target: str) -> _Reply:
        if len(self.refusals) < 1000:
            self.refusals.append(reason)
        if self.on_refusal is not None:
            try:
                self.on_refusal(reason, target)
            except Exception:
                log.exception("browser proxy: refusal callback failed")
        return _Reply(403, reason)

    def _note_forwarded(self, host: str, port: int) -> None:
        if len(self.forwarded) < 1000:
            self.forwarded.append(f"{host}:{port}")

    async def _read_head(self, reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
        """The request line and headers; ``_Reply`` (400/431) when malformed or too large."""
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except asyncio.LimitOverrunError:
            raise _Reply(431, f"request head over {self.max_head_bytes} bytes") from None
        except ValueError:  # the limit overrun surfaces as ValueError when the buffer is full
            raise _Reply(431, f"request head over {self.max_head_bytes} bytes") from None
        if len(raw) > self.max_head_bytes:
            raise _Reply(431, f"request head over {self.max_head_bytes} bytes")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _Reply(400, "request head is not ASCII") from None
        lines = text[:-4].split("\r\n")
        if len(lines) - 1 > self.max_headers:
            raise _Reply(431, f"more than {self.max_headers} header fields")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or any(c not in _TOKEN for c in name):
                raise _Reply(400, "malformed header field")
            value = value.strip(" \t")
            if any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in value):
                raise _Reply(400, "control character in a header field")
            headers.append((name, value))
        return lines[0], headers

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, headers = await self._read_head(reader)
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0]:
            raise _Reply(400, "malformed request line")
        method, target, _version = parts
        if any(c not in _TOKEN for c in method):
            raise _Reply(400, "malformed method")
        if method == "CONNECT":
            host, port = _split_hostport(target, None)
            await self._tunnel(host, port, reader, writer)
            return
        try:
            url = urlsplit(target)
            default = 80
            host, port = _split_hostport(url.netloc, default) if url.netloc else ("", 0)
        except ValueError:
            raise _Reply(400, "malformed request target") from None
        if url.scheme.lower() != "http" or not host:
            raise _Reply(400, "only absolute http:// requests and CONNECT tunnels are proxied")
        if "@" in url.netloc:
            raise _Reply(400, "user info in a proxied URL")
        await self._forward(method, target, host, port, headers, reader, writer)

    # -- checks and connections ------------------------------------------------------------------

    def _upstream(self) -> Upstream | None:
        if not self.upstream_url:
            return None
        try:
            return parse_upstream(self.upstream_url)
        except ValueError as exc:
            raise self._refuse(f"blocked: {exc}", self.upstream_url) from None

    async def _checked_addresses(self, host: str, port: int, what: str) -> list[str]:
        """Resolve ``host`` once; every address must pass the policy (and none may be this proxy)."""
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                self.connect_timeout,
            )
        except (OSError, UnicodeError, TimeoutError) as exc:
            # Not a refusal: there is no second lookup that could answer otherwise, and Chromium's own
            # background requests (update.googleapis.com ...) fail this way on a closed network.
            raise _Reply(502, f"cannot resolve {what}{host}: {exc or 'timed out'}") from None
        ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not ips:
            raise self._refuse(f"blocked: {what}{host} resolves to no address", f"{host}:{port}")
        for ip in ips:
            reason = self._own_address(ip, port)
            if reason is None and self.policy.checks_addresses:
                reason = self.policy.refusal(ip)
            if reason is not None:
                shown = reason if ip == host else f"{host}: {reason}"
                raise self._refuse(f"blocked: {what}{shown}", f"{host}:{port}")
        return ips

    def _own_address(self, ip: str, port: int) -> str | None:
        """The proxy itself is never a target (a request to it would loop through it forever)."""
        if port != self.port:
            return None
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if addr.is_loopback or addr.is_unspecified:
            return f"{ip}:{port} is the browser proxy itself"
        return None

    def _check_literal(self, host: str, port: int) -> None:
        """Through an upstream, target IP literals are still checked (names are the upstream's to resolve)."""
        ip = literal_address(host)
        if ip is None:
            return
        reason = self._own_address(ip, port)
        if reason is None and self.policy.checks_addresses:
            reason = self.policy.refusal(ip)
        if reason is not None:
            raise self._refuse(f"blocked: {reason}", f"{host}:{port}")

    async def _open(
        self, host: str, port: int, what: str = "", tls: bool = False
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to ``host`` at one of its checked addresses (never a second resolution)."""
        ips = await self._checked_addresses(host, port, what)
        context = ssl.create_default_context() if tls else None
        last: BaseException | None = None
        for ip in ips:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(
                        ip,
                        port,
                        ssl=context,
                        server_hostname=host if tls else None,
                        limit=self.max_head_bytes,
                    ),
                    self.connect_timeout,
                )
            except TimeoutError as exc:
                last = exc
            except OSError as exc:
                last = exc
        if isinstance(last, TimeoutError):
            raise _Reply(504, f"connecting to {what}{host}:{port} timed out")
        raise _Reply(502, f"cannot connect to {what}{host}:{port}: {last}")

    async def _open_upstream(self, upstream: Upstream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await self._open(upstream.host, upstream.port, "proxy ", tls=upstream.scheme == "https")

    # -- CONNECT ---------------------------------------------------------------------------------

    async def _tunnel(
        self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream = self._upstream()
        if upstream is None:
            up_reader, up_writer = await self._open(host, port)
        else:
            self._check_literal(host, port)
            up_reader, up_writer = await self._open_upstream(upstream)
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
            if upstream.authorization:
                head += f"Proxy-Authorization: {upstream.authorization}\r\n"
            up_writer.write((head + "\r\n").encode("ascii"))
            try:
                status_line, _ = await self._read_response_head(up_reader)
            except _Reply:
                up_writer.close()
                raise
            status = status_line.split(" ", 2)
            if len(status) < 2 or status[1] != "200":
                up_writer.close()
                raise _Reply(502, f"the upstream proxy refused the tunnel: {status_line[:100]}")
        self._note_forwarded(host, port)
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._pipe_both(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()

    # -- absolute-form requests ------------------------------------------------------------------

    async def _forward(
        self,
        method: str,
        target: str,
        host: str,
        port: int,
        headers: list[tuple[str, str]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        parts = urlsplit(target)
        lengths = [v for k, v in headers if k.lower() == "content-length"]
        if any(k.lower() == "transfer-encoding" for k, _ in headers):
            raise _Reply(411, "chunked request bodies are not proxied")
        if len(set(lengths)) > 1 or (lengths and not lengths[0].isdigit()):
            raise _Reply(400, "bad Content-Length")
        length = int(lengths[0]) if lengths else 0
        if length > self.max_body:
            raise _Reply(413, f"request body over {self.max_body} bytes")
        upstream = self._upstream()
        authority = parts.netloc
        if upstream is None:
            up_reader, up_writer = await self._open(host, port)
            line = f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1"
        else:
            self._check_literal(host, port)
            up_reader, up_writer = await self._open_upstream(upstream)
            line = f"{method} {target} HTTP/1.1"
        self._note_forwarded(host, port)
        try:
            out = [line, f"Host: {authority}"]
            out += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP and k.lower() != "host"]
            if upstream is not None and upstream.authorization:
                out.append(f"Proxy-Authorization: {upstream.authorization}")
            out.append("Connection: close")
            up_writer.write(("\r\n".join(out) + "\r\n\r\n").encode("ascii"))
            remaining = length
            while remaining:
                chunk = await asyncio.wait_for(reader.read(min(remaining, 65536)), self.idle_timeout)
                if not chunk:
                    return
                up_writer.write(chunk)
                remaining -= len(chunk)
            await asyncio.wait_for(up_writer.drain(), self.idle_timeout)
            status_line, resp_headers = await self._read_response_head(up_reader)
            kept = [f"{k}: {v}" for k, v in resp_headers if k.lower() not in _HOP - {"transfer-encoding"}]
            writer.write(
                ("\r\n".join([status_line, *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
            )
            await asyncio.wait_for(writer.drain(), self.idle_timeout)
            # The rest of the response as it comes; one request per connection, so the client's side
            # is only watched for its end (a second request on this connection is not forwarded).
            await self._pipe_both(reader, writer, up_reader, up_writer, client_may_send=False)
        finally:
            up_writer.close()

    async def _read_response_head(self, reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except (asyncio.LimitOverrunError, ValueError):
            raise _Reply(502, "response head too large") from None
        except asyncio.IncompleteReadError:
            raise _Reply(502, "the server closed the connection without a response") from None
        except TimeoutError:
            raise _Reply(504, "no response in time") from None
        lines = raw.decode("latin-1")[:-4].split("\r\n")
        if not lines[0].startswith("HTTP/1.") or len(lines) - 1 > self.max_headers:
            raise _Reply(502, "malformed response")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep and name and all(c in _TOKEN for c in name):
                headers.append((name, value.strip(" \t")))
        return lines[0], headers

    async def _pipe_both(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        client_may_send: bool = True,
    ) -> None:
        """Copy both ways until either side ends or stays idle past ``idle_timeout``."""

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter | None) -> None:
            while True:
                chunk = await asyncio.wait_for(src.read(65536), self.idle_timeout)
                if not chunk or dst is None:
                    return
                dst.write(chunk)
                await asyncio.wait_for(dst.drain(), self.idle_timeout)

        tasks = [
            asyncio.ensure_future(copy(client_reader, up_writer if client_may_send else None)),
            asyncio.ensure_future(copy(up_reader, client_writer)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


_process: BrowserProxy | None = None


def process_proxy(
    policy: TargetPolicy, upstream: str | None, on_refusal: Callable[[str, str], None] | None = None
) -> str:
    """Start this crawl process's browser proxy (one run per process) and return its URL."""
    global _process
    stop_process_proxy()
    _process = BrowserProxy(policy, upstream=upstream, on_refusal=on_refusal)
    return _process.start_in_thread()


def stop_process_proxy() -> None:
    """Stop the proxy started by ``process_proxy`` (no-op when none runs)."""
    global _process
    if _process is not None:
        _process.stop()
        _process = None
