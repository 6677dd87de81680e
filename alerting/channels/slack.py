"""Slack-compatible chat channel: an incoming-webhook message (``{"text", "blocks"}``) per alert or digest.

Why it looks like this:

* Chat is the noisiest, most widely read place an alert lands, so it carries the least: severity, tenant,
  counts, source, the posting URL and a console link. No record keys, no masked values.
* The posting URL comes from a hostile page. It is *defanged* (``hxxps[://]paste[.]example/x``) and sent
  as ``plain_text`` (and inside a code span in the fallback ``text``), so no chat client turns it into a
  link that someone clicks from their phone. Only the console URL, which is ours, is a button.
* Everything else interpolated into ``mrkdwn`` is escaped (``& < >``), so a hostile name cannot ping
  ``<!channel>`` or forge a link. Mattermost, Rocket.Chat and others read the ``text`` fallback alone.
* The webhook URL is the credential (``hooks.slack.com/services/T../B../secret``): it never appears in
  ``repr`` or in error messages.
* Transport and retry rules are the webhook channel's: guarded connect (no private targets unless
  allowed), no redirects, capped response read; 2xx ok, 408/425/429/5xx and network errors retryable.

Usage::

    SlackChannel("https://hooks.slack.com/services/T0/B0/XXXX", allow_private=False).send(event, event_id=eid)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from alerting.channels.base import DeliveryResult
from alerting.channels.webhook import post_json
from core.netguard import check_url

__all__ = ["SlackChannel", "defang", "render_message"]

#: Alerts listed one by one in a digest message; the rest are counted (Slack allows 50 blocks).
MAX_DIGEST_ALERTS = 20
_MAX_URL_CHARS = 300
_HEADER_CHARS = 150  # Slack's limit for a header block
_SCHEME = re.compile(r"(?i)\b(h)tt(p)(s?):(//)?")
_HTTP = re.compile(r"(?i)https?://")


def _line(value: Any) -> str:
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _esc(value: Any) -> str:
    """Text safe inside Slack ``mrkdwn``: no ``<!channel>``, no ``<url|forged link>``."""
    return _line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def defang(url: Any) -> str:
    """The URL in the inert form analysts expect (``hxxps[://]host[.]tld/path``), at most 300 characters.

    Every dot is bracketed, not only the host's, because chat clients also link bare domains found
    in a path or query string.
    """
    text = _SCHEME.sub(lambda m: f"hxxp{m.group(3)}[://]" if m.group(4) else f"hxxp{m.group(3)}:", _line(url))
    text = text.replace(".", "[.]").replace("`", "%60")
    return text if len(text) <= _MAX_URL_CHARS else text[: _MAX_URL_CHARS - 1] + "…"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def _md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " "}


def _console_button(url: Any) -> dict[str, Any] | None:
    if not (isinstance(url, str) and _HTTP.match(url) and len(url) <= 3000):
        return None
    return {
        "type": "actions",
        "elements": [{"type": "button", "text": _plain("Open in the console"), "url": _line(url)}],
    }


def _plural(n: Any, word: str) -> str:
    return f"{_line(n)} {word}" if n == 1 else f"{_line(n)} {word}s"


def _alert_message(event: Mapping[str, Any]) -> dict[str, Any]:
    alert = event.get("alert")
    a: Mapping[str, Any] = alert if isinstance(alert, Mapping) else {}
    severity = _line(a.get("severity")).upper() or "ALERT"
    records = a.get("records") or 0
    headline = (
        f"{severity}: {_plural(records, 'record')} of {_line(a.get('tenant'))} "
        f"found on {_line(a.get('source')) or 'an unknown source'}"
    )
    posting = defang(a.get("url")) if a.get("url") else "(no URL)"
    fields = [
        ("Severity", severity),
        ("Tenant", a.get("tenant")),
        ("Records", records),
        ("New records", a.get("new_records") or 0),
        ("Source", a.get("source")),
        ("Kinds", ", ".join(_line(k) for k in a.get("kinds") or ()) or "-"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(headline[:_HEADER_CHARS])},
        {"type": "section", "fields": [_md(f"*{label}*\n{_esc(value)}") for label, value in fields]},
        {"type": "section", "text": _plain(f"Posting (defanged, do not open from chat): {posting}")},
    ]
    button = _console_button(a.get("console_url"))
    if button:
        blocks.append(button)
    blocks.append(
        {
            "type": "context",
            "elements": [
                _md(f"Alert #{_esc(a.get('id'))} · event {_esc(event.get('event_id'))} · values never sent")
            ],
        }
    )
    text = (
        f"[leaksentinel] {_esc(headline)} ({_esc(a.get('new_records') or 0)} new). Posting: `{_esc(posting)}`"
    )
    if button:
        text += f" Console: {_esc(a.get('console_url'))}"
    return {"text": text, "blocks": blocks}


def _digest_message(event: Mapping[str, Any]) -> dict[str, Any]:
    raw_totals = event.get("totals")
    totals: Mapping[str, Any] = raw_totals if isinstance(raw_totals, Mapping) else {}
    alerts = [a for a in event.get("alerts") or () if isinstance(a, Mapping)]
    listed = totals.get("alerts")
    count = max(listed if isinstance(listed, int) else 0, len(alerts))
    headline = (
        f"leaksentinel {_line(event.get('period'))} digest for {_line(event.get('tenant'))}: "
        f"{_plural(count, 'alert')}"
    )
    span = f"{_line(event.get('from'))} to {_line(event.get('to'))}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(headline[:_HEADER_CHARS])},
        {
            "type": "section",
            "fields": [
                _md(f"*Alerts*\n{_esc(count)}"),
                _md(f"*Records*\n{_esc(totals.get('records', 0))}"),
                _md(f"*New records*\n{_esc(totals.get('new_records', 0))}"),
                _md(f"*Highest severity*\n{_esc(str(totals.get('max_severity') or '-').upper())}"),
            ],
        },
    ]
    for a in alerts[:MAX_DIGEST_ALERTS]:
        line = (
            f"#{_line(a.get('id'))} {_line(a.get('severity')).upper()} · "
            f"{_plural(a.get('records') or 0, 'record')} ({_line(a.get('new_records') or 0)} new) "
            f"on {_line(a.get('source')) or '?'} · {defang(a.get('url')) if a.get('url') else '(no URL)'}"
        )
        blocks.append({"type": "section", "text": _plain(line)})
    more = count - min(len(alerts), MAX_DIGEST_ALERTS)
    if more:
        blocks.append({"type": "section", "text": _plain(f"... and {more} more (see the console)")})
    button = _console_button(event.get("console_url"))
    if button:
        blocks.append(button)
    blocks.append(
        {"type": "context", "elements": [_md(f"{_esc(span)} · event {_esc(event.get('event_id'))}")]}
    )
    return {"text": f"[leaksentinel] {_esc(headline)} ({_esc(span)})", "blocks": blocks}


def render_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """The incoming-webhook payload for an ``alert.created`` or ``alert.digest`` event."""
    if event.get("type") == "alert.digest":
        return _digest_message(event)
    return _alert_message(event)


class SlackChannel:
    """POSTs chat messages to a Slack-compatible incoming webhook ``url`` (the URL is the secret)."""

    def __init__(
        self,
        url: str,
        *,
        allow_private: bool,
        timeout_s: float = 10.0,
        user_agent: str = "leaksentinel/0.1",
    ) -> None:
        # Syntax only here (no DNS at construction); the address check happens at connect time.
        self.url = check_url(url, allow_private=True)
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.user_agent = user_agent

    @property
    def _redacted(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}/…"

    def __repr__(self) -> str:  # the path holds the webhook's token
        return f"SlackChannel({self._redacted!r}, allow_private={self.allow_private})"

    def _scrub(self, text: str) -> str:
        return text.replace(self.url, self._redacted)

    def send(self, event: Mapping[str, Any], *, event_id: str) -> DeliveryResult:
        """One POST attempt; never raises for a network or receiver problem."""
        body = json.dumps(render_message(event), ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept-Encoding": "identity",
            "User-Agent": self.user_agent,
            "X-Leaksentinel-Event-Id": event_id,
        }
        result = post_json(
            self.url,
            body.encode("utf-8", "replace"),
            headers,
            timeout_s=self.timeout_s,
            allow_private=self.allow_private,
        )
        if result.error:
            return DeliveryResult.failure(
                self._scrub(result.error), retryable=result.retryable, status=result.status
            )
        return result
