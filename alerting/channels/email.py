"""Email channel: a text + HTML message per alert event, sent with smtplib.

Why it looks like this:

* Everything interpolated into the HTML is escaped, and only the console link is clickable: posting URLs
  come from hostile pages, so they are shown as text, never as links.
* ``Message-ID`` is derived from the event id, so the repeats that at-least-once delivery can produce are
  recognisable (and collapsed by many mail systems); ``X-Leaksentinel-Event-Id`` carries it verbatim.
* SMTP reply codes decide retries: 4xx and connection failures are transient, 5xx are not.
* ``starttls="auto"`` upgrades when the server offers STARTTLS and otherwise sends in clear (a local relay),
  but never sends credentials in clear: that case fails instead.

Usage::

    EmailChannel("soc@acme.example", SmtpConfig("smtp.example", 587, starttls="always")).send(event, event_id=eid)
"""

from __future__ import annotations

import hashlib
import html
import re
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, Literal, cast

from alerting.channels.base import DeliveryResult
from core.errors import BadInput

if TYPE_CHECKING:
    from core.settings import Settings

from alerting.digest import render_digest_html, render_digest_subject, render_digest_text

__all__ = ["EmailChannel", "SmtpConfig", "message_id", "render_html", "render_subject", "render_text"]

StartTls = Literal["never", "auto", "always"]
_STARTTLS_MODES = ("never", "auto", "always")
#: Findings listed in one message; the rest are counted (the console has them all).
MAX_FINDINGS_SHOWN = 50


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the outgoing mail server. ``ssl`` is implicit TLS (port 465) and excludes STARTTLS."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: StartTls = "auto"
    ssl: bool = False
    sender: str = "leaksentinel@localhost"
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.starttls not in _STARTTLS_MODES:
            raise BadInput(
                f"smtp starttls must be one of {', '.join(_STARTTLS_MODES)}, not {self.starttls!r}"
            )
        _parse_address(self.sender, "sender", allow_name=True)

    def __repr__(self) -> str:  # never show the password in logs
        return f"SmtpConfig(host={self.host!r}, port={self.port}, starttls={self.starttls!r}, ssl={self.ssl})"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """The ``smtp_*`` settings as a config (empty username/password mean none)."""
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            starttls=cast(StartTls, settings.smtp_starttls),
            ssl=settings.smtp_ssl,
            sender=settings.smtp_sender,
        )


def _parse_address(addr: str, what: str, *, allow_name: bool = False) -> Address:
    """One address (a display name only where allowed); CR/LF and lists are refused (header injection)."""
    if not isinstance(addr, str) or any(ord(ch) < 0x20 or ch == "\x7f" for ch in addr):
        raise BadInput(f"invalid {what} email address: {addr!r}")
    name, spec = parseaddr(addr)
    if (name and not allow_name) or "," in addr or spec.count("@") != 1 or not all(spec.split("@")):
        raise BadInput(f"invalid {what} email address: {addr!r}")
    try:
        return Address(display_name=name, addr_spec=spec)
    except (ValueError, MessageError):
        raise BadInput(f"invalid {what} email address: {addr!r}") from None


def _line(value: Any) -> str:
    """One printable line: hostile text cannot add lines to a subject or a plain-text layout."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _alert(event: Mapping[str, Any]) -> Mapping[str, Any]:
    alert = event.get("alert")
    return alert if isinstance(alert, Mapping) else {}


def _join(values: Iterable[Any] | None) -> str:
    return ", ".join(_line(v) for v in values or ())


def render_subject(event: Mapping[str, Any]) -> str:
    """``[leaksentinel] HIGH: 12 records of acme-bank found on pastebin``."""
    a = _alert(event)
    records = a.get("records") or 0
    noun = "record" if records == 1 else "records"
    severity = _line(a.get("severity")).upper() or "ALERT"
    subject = f"[leaksentinel] {severity}: {records} {noun} of {_line(a.get('tenant'))} found on {_line(a.get('source'))}"
    return subject[:250]


def _finding_line(f: Mapping[str, Any]) -> str:
    parts = [_line(f.get("kind")), _line(f.get("masked"))]
    if f.get("record_key") is not None:
        parts.append(f"record {_line(f.get('record_key'))}")
    if f.get("line") is not None:
        parts.append(f"line {_line(f.get('line'))}")
    if f.get("severity"):
        parts.append(_line(f.get("severity")))
    if f.get("fields"):
        parts.append(f"fields: {_join(f.get('fields'))}")
    if f.get("watch"):
        parts.append(f"watch: {_line(f.get('watch'))}")
    return "  ".join(p for p in parts if p)


def _summary_rows(a: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        ("Severity", _line(a.get("severity")).upper()),
        ("Records", f"{_line(a.get('records'))} ({_line(a.get('new_records'))} new)"),
        ("Kinds", _join(a.get("kinds"))),
        ("Source", _line(a.get("source"))),
        ("Posting", _line(a.get("url"))),
        ("First seen", _line(a.get("first_seen"))),
        ("Alert", f"#{_line(a.get('id'))} ({_line(a.get('status'))})"),
    ]


def _findings(a: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], int]:
    findings = [f for f in a.get("findings") or () if isinstance(f, Mapping)]
    return findings[:MAX_FINDINGS_SHOWN], max(0, len(findings) - MAX_FINDINGS_SHOWN)


def _console_url(a: Mapping[str, Any]) -> str | None:
    url = a.get("console_url")
    # Only an http(s) link is made clickable: a javascript: or data: URL must never become one.
    if isinstance(url, str) and re.match(r"(?i)https?://", url):
        return _line(url)
    return None


def render_text(event: Mapping[str, Any]) -> str:
    """The plain-text part."""
    a = _alert(event)
    out = [f"leaksentinel found data of {_line(a.get('tenant'))} on {_line(a.get('source'))}.", ""]
    out += [f"{label + ':':<12} {value}" for label, value in _summary_rows(a)]
    sightings = [_line(s) for s in a.get("sightings") or ()]
    if sightings:
        out += ["", "Sightings:", *(f"  - {s}" for s in sightings)]
    shown, more = _findings(a)
    if shown:
        out += ["", "Findings (values masked):", *(f"  - {_finding_line(f)}" for f in shown)]
        if more:
            out.append(f"  ... and {more} more")
    console = _console_url(a)
    if console:
        out += ["", f"Open in the console: {console}"]
    out += ["", f"Event id: {_line(event.get('event_id'))}"]
    return "\n".join(out) + "\n"


def render_html(event: Mapping[str, Any]) -> str:
    """The HTML part; every interpolated value is escaped and only the console link is a link."""
    e = html.escape
    a = _alert(event)
    rows = "".join(
        f'<tr><th align="left">{e(label)}</th><td>{e(value)}</td></tr>' for label, value in _summary_rows(a)
    )
    parts = [
        "<!DOCTYPE html><html><body>",
        f"<p>leaksentinel found data of <b>{e(_line(a.get('tenant')))}</b> on {e(_line(a.get('source')))}.</p>",
        f"<table>{rows}</table>",
    ]
    sightings = [_line(s) for s in a.get("sightings") or ()]
    if sightings:
        parts.append("<h3>Sightings</h3><ul>" + "".join(f"<li>{e(s)}</li>" for s in sightings) + "</ul>")
    shown, more = _findings(a)
    if shown:
        items = "".join(f"<li><code>{e(_finding_line(f))}</code></li>" for f in shown)
        tail = f"<li>... and {more} more</li>" if more else ""
        parts.append(f"<h3>Findings (values masked)</h3><ul>{items}{tail}</ul>")
    console = _console_url(a)
    if console:
        parts.append(f'<p><a href="{e(console, quote=True)}">Open this alert in the console</a></p>')
    parts.append(f"<p><small>Event id: {e(_line(event.get('event_id')))}</small></p></body></html>")
    return "\n".join(parts) + "\n"


def message_id(event_id: str, sender: str) -> str:
    """A ``Message-ID`` that is the same for every retry of ``event_id``."""
    left = event_id if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", event_id or "") else None
    left = left or hashlib.sha256(str(event_id).encode("utf-8", "replace")).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "leaksentinel.invalid"
    return f"<leaksentinel.{left}@{domain}>"


class EmailChannel:
    """Mails events to one address ``to`` through ``smtp``."""

    def __init__(self, to: str, smtp: SmtpConfig) -> None:
        self.to = _parse_address(to, "recipient").addr_spec
        self.smtp = smtp
        self._sender = _parse_address(smtp.sender, "sender", allow_name=True)

    def __repr__(self) -> str:
        return f"EmailChannel({self.to!r}, {self.smtp!r})"

    def build_message(self, event: Mapping[str, Any], *, event_id: str) -> EmailMessage:
        """The message ``send`` would send (separately testable, no network)."""
        msg = EmailMessage()
        kind = str(event.get("type") or "")
        if kind.startswith("source."):  # an operator event: one line says it all
            text = _line(str(event.get("message") or kind))
            msg["Subject"] = f"[leaksentinel] operator: {text}"[:200]
            msg["From"] = self._sender
            msg["To"] = Address(addr_spec=self.to)
            msg["Message-ID"] = message_id(event_id, self._sender.addr_spec)
            msg["X-Leaksentinel-Event-Id"] = _line(event_id)
            msg.set_content(f"{text}\n\n(event {kind}, {_line(str(event.get('at') or ''))})\n")
            msg.add_alternative(
                f"<p>{html.escape(text)}</p><p><small>{html.escape(kind)}</small></p>", subtype="html"
            )
            return msg
        digest = kind == "alert.digest"
        msg["Subject"] = render_digest_subject(event) if digest else render_subject(event)
        msg["From"] = self._sender
        msg["To"] = Address(addr_spec=self.to)
        msg["Message-ID"] = message_id(event_id, self._sender.addr_spec)
        msg["X-Leaksentinel-Event-Id"] = _line(event_id)
        msg.set_content(render_digest_text(event) if digest else render_text(event))
        msg.add_alternative(render_digest_html(event) if digest else render_html(event), subtype="html")
        return msg

    def send(self, event: Mapping[str, Any], *, event_id: str) -> DeliveryResult:
        """One SMTP attempt; never raises for a server or network problem."""
        msg = self.build_message(event, event_id=event_id)
        cfg = self.smtp
        context = ssl.create_default_context()
        try:
            client: smtplib.SMTP
            if cfg.ssl:
                client = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
            with client:
                client.ehlo()
                tls = cfg.ssl
                if not cfg.ssl and cfg.starttls != "never" and client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                    tls = True
                if not tls and cfg.starttls == "always":
                    return DeliveryResult.failure(f"{cfg.host} does not offer STARTTLS", retryable=False)
                if cfg.username:
                    if not tls:
                        return DeliveryResult.failure(
                            f"refusing to send SMTP credentials in clear to {cfg.host}", retryable=False
                        )
                    client.login(cfg.username, cfg.password or "")
                client.send_message(msg, from_addr=self._sender.addr_spec, to_addrs=[self.to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(
                f"{code} {_line(text.decode('utf-8', 'replace'))}" for code, text in exc.recipients.values()
            )
            transient = bool(codes) and all(400 <= c < 500 for c in codes)
            return DeliveryResult.failure(
                f"recipient refused: {detail}", retryable=transient, status=codes[0] if codes else None
            )
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            return DeliveryResult.failure(
                f"SMTP {exc.smtp_code} {_line(text)}",
                retryable=400 <= exc.smtp_code < 500 or exc.smtp_code < 0,
                status=exc.smtp_code,
            )
        except smtplib.SMTPServerDisconnected as exc:
            return DeliveryResult.failure(f"server disconnected: {_line(exc)}", retryable=True)
        except smtplib.SMTPException as exc:  # e.g. SMTPNotSupportedError: a configuration problem
            return DeliveryResult.failure(f"{type(exc).__name__}: {_line(exc)}", retryable=False)
        except OSError as exc:  # refused, unreachable, timeout, TLS failure
            return DeliveryResult.failure(f"{type(exc).__name__}: {_line(exc)}", retryable=True)
        return DeliveryResult.success(250)
