"""SSRF guard: which addresses and URLs are refused, at check time and at connect time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import core.netguard as netguard
from core.errors import BadInput
from core.netguard import (
    TargetPolicy,
    UnsafeTarget,
    check_url,
    fetcher_url,
    guarded_transport,
    is_public_address,
    parse_networks,
)

NON_PUBLIC = [
    "127.0.0.1",
    "127.9.9.9",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:db8::1",
    "not-an-ip",
    "",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("ip", NON_PUBLIC)
def test_non_public_addresses(ip: str) -> None:
    assert is_public_address(ip) is False


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses(ip: str) -> None:
    assert is_public_address(ip) is True


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> list[str]:
    """Route getaddrinfo through ``table``; returns the list of names looked up."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for ip in table[host]:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, int(port or 0), 0, 0) if fam == socket.AF_INET6 else (ip, int(port or 0))
            out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    monkeypatch.setattr(netguard.socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://[fe80::1]/",
        "http://2130706433/",  # 127.0.0.1 as a decimal integer
        "http://0x7f.1/",
        "https://internal.example/hook",
        "https://mixed.example/hook",
    ],
)
def test_private_targets_are_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    real = socket.getaddrinfo
    fake_dns(monkeypatch, {"internal.example": ["10.0.0.7"], "mixed.example": ["8.8.8.8", "192.168.0.1"]})
    if "example" not in url:
        monkeypatch.setattr(netguard.socket, "getaddrinfo", real)  # literal forms resolve without DNS
    with pytest.raises(UnsafeTarget):
        check_url(url, allow_private=False)


def test_allow_private_lets_loopback_through_without_resolving(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_dns(monkeypatch, {})
    assert check_url("http://127.0.0.1:8000/hook", allow_private=True) == "http://127.0.0.1:8000/hook"
    assert check_url("http://localhost/x", allow_private=True) == "http://localhost/x"
    assert asked == []


def test_public_target_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"], "xn--bcher-kva.example": ["8.8.8.8"]})
    assert (
        check_url("HTTPS://Hooks.Example.COM/a?b=1#frag", allow_private=False)
        == "https://hooks.example.com/a?b=1"
    )
    assert check_url("https://bücher.example", allow_private=False) == "https://xn--bcher-kva.example/"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/",
        "javascript:alert(1)",
        "example.com/hook",
        "http:///nohost",
        "http://exa mple.com/",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com:99999/",
        "",
    ],
)
def test_bad_urls_are_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_url(url, allow_private=True)


def test_unsafe_target_is_bad_input_and_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with pytest.raises(BadInput, match="cannot resolve"):
        check_url("https://nowhere.invalid/", allow_private=False)
    assert issubclass(UnsafeTarget, BadInput)


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("Host") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_guarded_transport_refuses_loopback_at_connect_time(echo_port: int) -> None:
    with httpx.Client(transport=guarded_transport(allow_private=True)) as client:
        assert client.get(f"http://127.0.0.1:{echo_port}/").status_code == 200
    with (
        httpx.Client(transport=guarded_transport(allow_private=False)) as client,
        pytest.raises(UnsafeTarget),
    ):
        client.get(f"http://127.0.0.1:{echo_port}/")
    with (
        httpx.Client(transport=guarded_transport(allow_private=False)) as client,
        pytest.raises(UnsafeTarget),
    ):
        client.get(f"http://localhost:{echo_port}/")


def test_dns_rebinding_between_check_and_connect_is_caught(
    monkeypatch: pytest.MonkeyPatch, echo_port: int
) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public when checked, loopback when connecting
    monkeypatch.setattr(
        netguard.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in next(answers)
        ],
    )
    url = check_url(f"http://rebind.example:{echo_port}/", allow_private=False)
    with (
        httpx.Client(transport=guarded_transport(allow_private=False)) as client,
        pytest.raises(UnsafeTarget),
    ):
        client.get(url)


def test_guarded_transport_connects_to_the_checked_ip_and_keeps_the_host_header(
    monkeypatch: pytest.MonkeyPatch, echo_port: int
) -> None:
    # socket.create_connection looks the IP literal up too, so the fake table answers for it.
    asked = fake_dns(monkeypatch, {"hook.example": ["127.0.0.1"], "127.0.0.1": ["127.0.0.1"]})
    monkeypatch.setattr(netguard, "is_public_address", lambda ip: ip == "127.0.0.1")  # pretend it is public
    with httpx.Client(transport=guarded_transport(allow_private=False)) as client:
        response = client.get(f"http://hook.example:{echo_port}/")
    assert response.text == f"hook.example:{echo_port}"
    assert asked == [
        "hook.example",
        "127.0.0.1",
    ]  # the name is resolved once, by the guard; the socket gets the IP


def test_unresolvable_host_is_a_connect_error_at_send_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with (
        httpx.Client(transport=guarded_transport(allow_private=False)) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get("http://nowhere.invalid/")


def test_check_url_reads_the_url_as_the_fetcher_does() -> None:
    """``urllib`` sees host 93.184.215.14 where Scrapy and browsers see 169.254.169.254: refused."""
    for url in ("http://169.254.169.254\\@93.184.215.14/", "http://a@127.0.0.1\\@example.com/x"):
        with pytest.raises(UnsafeTarget, match="ambiguous"):
            check_url(url, allow_private=True)
        with pytest.raises(UnsafeTarget, match="ambiguous"):
            check_url(url, allow_private=False)
    assert fetcher_url("http://example.com\\path") == "http://example.com/path"


def test_policy_allows_named_networks_and_blocks_others() -> None:
    policy = TargetPolicy(allow_networks=parse_networks("127.0.0.1/32, 10.1.0.0/16"))
    assert policy.refusal("127.0.0.1") is None and policy.refusal("10.1.2.3") is None
    assert policy.refusal("127.0.0.2") == "127.0.0.2 is a loopback address"
    assert policy.refusal("10.2.0.1") == "10.2.0.1 is a private address"
    assert policy.refusal("169.254.169.254") == "169.254.169.254 is a link-local address"
    assert policy.refusal("::ffff:10.1.0.9") is None  # the mapped form is the same host
    assert policy.refusal("8.8.8.8") is None
    open_but_metadata = TargetPolicy(allow_private=True, block_networks=parse_networks(["169.254.0.0/16"]))
    assert open_but_metadata.refusal("10.0.0.1") is None
    assert (
        open_but_metadata.refusal("169.254.169.254")
        == "169.254.169.254 is in the blocked network 169.254.0.0/16"
    )
    assert open_but_metadata.checks_addresses and not TargetPolicy(allow_private=True).checks_addresses
    with pytest.raises(BadInput, match="not a network"):
        parse_networks("10.0.0.0/8, intranet")


def test_policy_resolve_checks_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.example": ["8.8.8.8", "10.0.0.7"], "ok.example": ["8.8.8.8"]})
    policy = TargetPolicy()
    assert policy.resolve("ok.example", 80) == ["8.8.8.8"]
    with pytest.raises(UnsafeTarget, match=r"^blocked: mixed.example: 10.0.0.7 is a private address$"):
        policy.resolve("mixed.example", 80)
    allowed = TargetPolicy(allow_networks=parse_networks("10.0.0.0/24"))
    assert check_url("http://mixed.example/x", policy=allowed) == "http://mixed.example/x"


def test_policy_from_settings_reads_the_operator_decision() -> None:
    from core.settings import Settings

    env = {"LEAKSENTINEL_CRAWL_ALLOW_NETWORKS": "127.0.0.1/32", "LEAKSENTINEL_CRAWL_BLOCK_NETWORKS": ""}
    embedded = TargetPolicy.from_settings(Settings(), env)
    assert embedded.allow_private is True  # the embedded default allows private targets
    server = TargetPolicy.from_settings(Settings(database_url="postgresql://db/x"), env)
    assert server.allow_private is False and [str(n) for n in server.allow_networks] == ["127.0.0.1/32"]
