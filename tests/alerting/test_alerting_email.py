"""Email channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from alerting.channels import EmailChannel, SmtpConfig, build_channel
from alerting.channels.email import message_id, render_html, render_subject, render_text
from alerting.events import build_event
from core.errors import BadInput

FULL_VALUE = "john.smith@acme-bank.example"
MASKED = "j***.s***@a***-bank.example"
FULL_PHONE = "+44 20 7946 0958"
MASKED_PHONE = "+44 ** **** **58"


class Store:
    """aiosmtpd handler that keeps messages; ``rcpt_reply``/``data_reply`` script refusals."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rcpt_reply = "250 OK"
        self.data_reply = "250 Message accepted"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply.startswith("250"):
            msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            self.messages.append(msg)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return self.data_reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtpd() -> Iterator[tuple[Store, int]]:
    store = Store()
    port = free_port()
    controller = Controller(store, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield store, port
    finally:
        controller.stop()


def make_event(**alert_overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": 42,
        "tenant": "acme-bank",
        "severity": "high",
        "status": "new",
        "kinds": ["email", "phone"],
        "records": 12,
        "new_records": 3,
        "url": "http://paste.example/abc",
        "source": "pastebin",
        "first_seen": "2024-05-01T10:00:00+00:00",
        "sightings": ["http://paste.example/abc", "http://mirror.example/abc"],
        "findings": [
            {
                "kind": "email",
                "record_key": "cust-001",
                "fields": ["email"],
                "watch": "customers",
                "line": 3,
                "severity": "high",
                "masked": MASKED,
                "value": FULL_VALUE,
            },
            {
                "kind": "phone",
                "record_key": "cust-001",
                "fields": ["phone"],
                "watch": "customers",
                "line": 4,
                "severity": "medium",
                "masked": MASKED_PHONE,
                "raw": FULL_PHONE,
            },
        ],
    }
    alert.update(alert_overrides)
    return build_event(alert, event_id="alert-42-sub-3", console_url="http://127.0.0.1:8000/alerts/42")


def config(port: int, **kw: Any) -> SmtpConfig:
    return SmtpConfig("127.0.0.1", port, timeout_s=5.0, **kw)


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "both a text and an HTML part are required"
    return str(text.get_content()), str(html.get_content())


def test_sends_text_and_html_with_masked_values_only(smtpd: tuple[Store, int]) -> None:
    store, port = smtpd
    result = EmailChannel("soc@acme.example", config(port)).send(make_event(), event_id="alert-42-sub-3")
    assert result.ok and result.retryable is False and result.error is None
    [msg] = store.messages
    assert msg["Subject"] == "[leaksentinel] HIGH: 12 records of acme-bank found on pastebin"
    assert msg["To"] == "soc@acme.example"
    assert msg["X-Leaksentinel-Event-Id"] == "alert-42-sub-3"
    assert msg["Message-ID"] == "<leaksentinel.alert-42-sub-3@localhost>"
    assert store.envelopes == [("leaksentinel@localhost", ["soc@acme.example"])]
    text, html = parts(msg)
    for body in (text, html):
        assert MASKED in body and MASKED_PHONE in body
        assert "http://paste.example/abc" in body and "http://mirror.example/abc" in body
        assert "cust-001" in body
    assert "http://127.0.0.1:8000/alerts/42" in text
    assert '<a href="http://127.0.0.1:8000/alerts/42">' in html
    raw = msg.as_bytes()
    for secret in (FULL_VALUE, FULL_PHONE, "john.smith"):
        assert secret.encode() not in raw


def test_repeats_share_a_message_id(smtpd: tuple[Store, int]) -> None:
    store, port = smtpd
    ch = EmailChannel("soc@acme.example", config(port))
    assert ch.send(make_event(), event_id="alert-42-sub-3").ok
    assert ch.send(make_event(), event_id="alert-42-sub-3").ok
    assert ch.send(make_event(), event_id="alert-43-sub-3").ok
    ids = [m["Message-ID"] for m in store.messages]
    assert ids[0] == ids[1] != ids[2]


def test_starttls_auto_sends_in_clear_when_not_offered(smtpd: tuple[Store, int]) -> None:
    store, port = smtpd
    assert EmailChannel("soc@acme.example", config(port, starttls="auto")).send(make_event(), event_id="e").ok
    assert len(store.messages) == 1


def test_starttls_always_refuses_a_server_without_it(smtpd: tuple[Store, int]) -> None:
    store, port = smtpd
    result = EmailChannel("soc@acme.example", config(port, starttls="always")).send(
        make_event(), event_id="e"
    )
    assert not result.ok and not result.retryable and "STARTTLS" in (result.error or "")
    assert store.messages == []


def test_credentials_are_never_sent_in_clear(smtpd: tuple[Store, int]) -> None:
    store, port = smtpd
    cfg = config(port, username="u", password="hunter2")
    result = EmailChannel("soc@acme.example", cfg).send(make_event(), event_id="e")
    assert not result.ok and not result.retryable and "in clear" in (result.error or "")
    assert store.messages == []
    assert "hunter2" not in repr(cfg) and "hunter2" not in repr(EmailChannel("soc@acme.example", cfg))


@pytest.mark.parametrize(
    ("stage", "reply", "retryable"),
    [
        ("rcpt", "550 5.1.1 No such user", False),
        ("rcpt", "450 4.2.1 Mailbox busy", True),
        ("data", "554 5.7.1 Rejected as spam", False),
        ("data", "451 4.3.0 Try again later", True),
    ],
)
def test_smtp_refusals(smtpd: tuple[Store, int], stage: str, reply: str, retryable: bool) -> None:
    store, port = smtpd
    setattr(store, f"{stage}_reply", reply)
    result = EmailChannel("soc@acme.example", config(port)).send(make_event(), event_id="e")
    assert not result.ok and result.retryable is retryable
    assert result.status == int(reply[:3])
    assert store.messages == []


def test_connection_refused_is_retryable() -> None:
    result = EmailChannel("soc@acme.example", config(free_port())).send(make_event(), event_id="e")
    assert not result.ok and result.retryable and result.status is None


def test_html_escapes_everything_and_links_only_the_console() -> None:
    event = make_event(
        tenant="<script>alert(1)</script>",
        source='pastebin" onmouseover="x',
        url="javascript:alert(1)",
        sightings=["http://evil.example/<img src=x onerror=alert(1)>"],
    )
    event["alert"]["findings"][0]["masked"] = "<b>j***</b>"
    html = render_html(event)
    assert "<script>" not in html and "<img" not in html and "<b>j***" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;j***&lt;/b&gt;" in html
    assert html.count("<a ") == 1 and 'href="http://127.0.0.1:8000/alerts/42"' in html
    event["alert"]["console_url"] = "javascript:alert(1)"
    assert "<a " not in render_html(event)
    assert "Open in the console" not in render_text(event)


def test_subject_and_text_cannot_be_split_by_hostile_values() -> None:
    event = make_event(tenant="acme\r\nBcc: victim@example.com", records=1, severity="low")
    subject = render_subject(event)
    assert "\n" not in subject and "\r" not in subject
    assert subject == "[leaksentinel] LOW: 1 record of acme  Bcc: victim@example.com found on pastebin"
    assert not any(line.startswith("Bcc:") for line in render_text(event).splitlines())


def test_message_id_is_deterministic_and_safe() -> None:
    assert message_id("alert-1", "x@mail.example") == "<leaksentinel.alert-1@mail.example>"
    odd = message_id("a b>\r\n<c", "x@mail.example")
    assert odd == message_id("a b>\r\n<c", "x@mail.example")
    assert odd.count("<") == 1 and " " not in odd and "\n" not in odd


@pytest.mark.parametrize("addr", ["", "nobody", "a@b\r\nBcc: c@d", "a@b, c@d", "Name <a@b>", "@b", "a@"])
def test_bad_recipient_is_bad_input(addr: str) -> None:
    with pytest.raises(BadInput):
        EmailChannel(addr, SmtpConfig("127.0.0.1", 25))


def test_config_validation_and_display_name_sender(smtpd: tuple[Store, int]) -> None:
    with pytest.raises(BadInput):
        SmtpConfig("127.0.0.1", 25, starttls="sometimes")  # type: ignore[arg-type]
    store, port = smtpd
    cfg = config(port, sender="LeakSentinel <alerts@sentinel.example>")
    assert EmailChannel("soc@acme.example", cfg).send(make_event(), event_id="e").ok
    assert store.envelopes[0][0] == "alerts@sentinel.example"
    assert store.messages[0]["From"] == "LeakSentinel <alerts@sentinel.example>"


def test_build_channel_email(smtpd: tuple[Store, int]) -> None:
    store, port = smtpd
    ch = build_channel("email", "soc@acme.example", None, allow_private=False, smtp=config(port))
    assert isinstance(ch, EmailChannel) and ch.send(make_event(), event_id="e").ok
    assert len(store.messages) == 1
