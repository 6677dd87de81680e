"""Digest mode: one hourly or daily summary per subscription instead of one message per alert.

Why: a team that watches many keywords or a busy source drowns in single messages; a digest turns them
into one scheduled read. It follows the alert event's rules:

* Whitelisted: each alert is reduced to ``id, severity, records, new_records, url, source``; nothing else
  in the input (findings, masked or full values, titles) is read.
* Deterministic: the event id is a UUIDv5 of tenant, period and window start (and the subscription when
  given), so a digest job that runs twice for the same window produces the same idempotency key and the
  receiver drops the repeat. The body has no "now" in it either.
* Windows are the last *complete* period in UTC, half-open ``[from, to)``, so consecutive runs neither
  overlap nor leave gaps, whatever moment inside the next period the job runs.
* Posting URLs are hostile: the HTML rendering escapes everything and links only the console.

Usage::

    window = digest_window(now, "daily")
    digest = build_digest("acme-bank", alerts_in_window, "daily", window, subscription_id=sub.id)
    text, html = render_digest_text(digest), render_digest_html(digest)
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from core.errors import BadInput
from core.models import SEVERITIES

__all__ = [
    "DIGEST_EVENT_TYPE",
    "DIGEST_FIELDS",
    "DIGEST_PERIODS",
    "MAX_DIGEST_ALERTS",
    "Period",
    "build_digest",
    "digest_window",
    "render_digest_html",
    "render_digest_subject",
    "render_digest_text",
]

Period = Literal["hourly", "daily"]
DIGEST_PERIODS: tuple[str, ...] = get_args(Period)
DIGEST_EVENT_TYPE = "alert.digest"
#: The only alert fields a digest carries.
DIGEST_FIELDS: tuple[str, ...] = ("id", "severity", "records", "new_records", "url", "source")
#: Alerts listed in one digest; the rest are counted in ``totals`` (the console has them all).
MAX_DIGEST_ALERTS = 500

#: Namespace of digest event ids (never change it: ids would stop being stable).
_NAMESPACE = uuid.UUID("0b6d3c1e-9f1a-5e8b-8c3d-2f4a6b7c8d9e")
_STEP = {"hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1)}
_HTTP = re.compile(r"(?i)https?://")
_Scalar = str | int | float | bool | None


def _check_period(period: str) -> None:
    if period not in DIGEST_PERIODS:
        raise BadInput(f"unknown digest period {period!r}: one of {', '.join(DIGEST_PERIODS)}")


def _utc(when: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive datetime is taken as UTC (the convention everywhere in leaksentinel)."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def digest_window(now: dt.datetime, period: Period) -> tuple[dt.datetime, dt.datetime]:
    """The last complete hour or UTC day before ``now``, as ``(from, to)``, half-open.

    At exactly 10:00:00 the last complete hour is 09:00-10:00; at 10:59:59 it is still that hour.
    """
    _check_period(period)
    now = _utc(now)
    if period == "hourly":
        end = now.replace(minute=0, second=0, microsecond=0)
    else:
        end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - _STEP[period], end


def _scalar(name: str, value: Any) -> _Scalar:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # A nested object could smuggle an unmasked value into the digest: refuse loudly, as events do.
    raise TypeError(f"digest field {name!r} must be a JSON scalar, got {type(value).__name__}")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _rank(level: Any) -> int:
    return SEVERITIES.index(level) if level in SEVERITIES else -1


def build_digest(
    tenant: str,
    alerts: Sequence[Mapping[str, Any]],
    period: Period,
    window: tuple[dt.datetime, dt.datetime],
    *,
    subscription_id: int | None = None,
    console_url: str | None = None,
) -> dict[str, Any]:
    """The ``alert.digest`` event for ``tenant``'s ``alerts`` in ``window`` (the caller selects them).

    Alerts are listed worst first, then by id; an alert given twice is listed once. ``subscription_id``
    makes the event id unique per subscription (the deliveries table keys on it); ``console_url`` is
    the console page the messages link to.
    """
    _check_period(period)
    start, end = _utc(window[0]), _utc(window[1])
    if end <= start:
        raise BadInput(f"digest window ends before it starts: {start.isoformat()} .. {end.isoformat()}")
    unique: dict[Any, dict[str, _Scalar]] = {}
    for alert in alerts:
        entry = {name: _scalar(name, alert.get(name)) for name in DIGEST_FIELDS}
        if entry["id"] is None:
            raise ValueError("a digest entry needs the alert's id")
        unique.setdefault(entry["id"], entry)
    entries = sorted(unique.values(), key=lambda e: (-_rank(e["severity"]), str(e["id"])))
    by_severity = {s: sum(1 for e in entries if e["severity"] == s) for s in SEVERITIES}
    worst = max((e["severity"] for e in entries if e["severity"] in SEVERITIES), key=_rank, default=None)
    totals = {
        "alerts": len(entries),
        "records": sum(_count(e["records"]) for e in entries),
        "new_records": sum(_count(e["new_records"]) for e in entries),
        "by_severity": by_severity,
        "max_severity": worst,
        "omitted": max(0, len(entries) - MAX_DIGEST_ALERTS),
    }
    key: list[Any] = [DIGEST_EVENT_TYPE, tenant, period, start.isoformat()]
    if subscription_id is not None:
        key.append(subscription_id)
    digest: dict[str, Any] = {
        "event_id": str(uuid.uuid5(_NAMESPACE, json.dumps(key, ensure_ascii=False))),
        "type": DIGEST_EVENT_TYPE,
        "tenant": tenant,
        "period": period,
        "from": start.isoformat(timespec="seconds"),
        "to": end.isoformat(timespec="seconds"),
        "alerts": entries[:MAX_DIGEST_ALERTS],
        "totals": totals,
    }
    if isinstance(console_url, str) and _HTTP.match(console_url):
        digest["console_url"] = console_url
    return digest


def _line(value: Any) -> str:
    """One printable line: a hostile URL cannot add lines to a subject or a plain-text layout."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _plural(n: Any, word: str) -> str:
    return f"{_line(n)} {word}" if n == 1 else f"{_line(n)} {word}s"


def _totals(digest: Mapping[str, Any]) -> Mapping[str, Any]:
    totals = digest.get("totals")
    return totals if isinstance(totals, Mapping) else {}


def _entries(digest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in digest.get("alerts") or () if isinstance(a, Mapping)]


def _entry_line(a: Mapping[str, Any]) -> str:
    return (
        f"#{_line(a.get('id'))} {_line(a.get('severity')).upper() or '?'}: "
        f"{_plural(a.get('records') or 0, 'record')} ({_line(a.get('new_records') or 0)} new) "
        f"on {_line(a.get('source')) or 'unknown source'} - {_line(a.get('url')) or '(no URL)'}"
    )


def _console(digest: Mapping[str, Any]) -> str | None:
    url = digest.get("console_url")
    return _line(url) if isinstance(url, str) and _HTTP.match(url) else None


def render_digest_subject(digest: Mapping[str, Any]) -> str:
    """``[leaksentinel] daily digest for acme-bank: 5 alerts (highest HIGH)``."""
    t = _totals(digest)
    worst = _line(t.get("max_severity")).upper()
    subject = (
        f"[leaksentinel] {_line(digest.get('period'))} digest for {_line(digest.get('tenant'))}: "
        f"{_plural(t.get('alerts', 0), 'alert')}" + (f" (highest {worst})" if worst else "")
    )
    return subject[:250]


def render_digest_text(digest: Mapping[str, Any]) -> str:
    """The plain-text digest: totals, then one line per alert; URLs are shown, never made links."""
    t = _totals(digest)
    out = [
        render_digest_subject(digest).removeprefix("[leaksentinel] ").capitalize(),
        f"Window: {_line(digest.get('from'))} to {_line(digest.get('to'))} (UTC)",
        "",
        f"Alerts:       {_line(t.get('alerts', 0))}",
        f"Records:      {_line(t.get('records', 0))} ({_line(t.get('new_records', 0))} new)",
    ]
    by_severity = t.get("by_severity")
    if isinstance(by_severity, Mapping):
        counts = ", ".join(f"{_line(k)} {_line(v)}" for k, v in by_severity.items() if v)
        out.append(f"By severity:  {counts or '-'}")
    entries = _entries(digest)
    if entries:
        out += ["", "Alerts (posting URLs are hostile: do not open them from a work machine):"]
        out += [f"  - {_entry_line(a)}" for a in entries]
    if t.get("omitted"):
        out.append(f"  ... and {_line(t.get('omitted'))} more")
    console = _console(digest)
    if console:
        out += ["", f"Open in the console: {console}"]
    out += ["", f"Event id: {_line(digest.get('event_id'))}"]
    return "\n".join(out) + "\n"


def render_digest_html(digest: Mapping[str, Any]) -> str:
    """The HTML digest; every interpolated value is escaped and only the console link is a link."""
    e = html.escape
    t = _totals(digest)
    rows = [
        ("Window", f"{_line(digest.get('from'))} to {_line(digest.get('to'))} (UTC)"),
        ("Alerts", _line(t.get("alerts", 0))),
        ("Records", f"{_line(t.get('records', 0))} ({_line(t.get('new_records', 0))} new)"),
        ("Highest severity", _line(t.get("max_severity")).upper() or "-"),
    ]
    parts = [
        "<!DOCTYPE html><html><body>",
        f"<h2>{e(render_digest_subject(digest).removeprefix('[leaksentinel] '))}</h2>",
        "<table>"
        + "".join(f'<tr><th align="left">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in rows)
        + "</table>",
    ]
    entries = _entries(digest)
    if entries:
        head = "".join(
            f"<th>{e(h)}</th>" for h in ("Alert", "Severity", "Records", "New", "Source", "Posting")
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{e(_line(v))}</td>"
                for v in (
                    f"#{_line(a.get('id'))}",
                    _line(a.get("severity")).upper(),
                    a.get("records") or 0,
                    a.get("new_records") or 0,
                    a.get("source"),
                )
            )
            + f"<td><code>{e(_line(a.get('url')))}</code></td></tr>"
            for a in entries
        )
        parts.append(
            "<h3>Alerts</h3><p>Posting URLs are shown as text: they are hostile, do not open them "
            f"from a work machine.</p><table><tr>{head}</tr>{body}</table>"
        )
    if t.get("omitted"):
        parts.append(f"<p>... and {e(_line(t.get('omitted')))} more</p>")
    console = _console(digest)
    if console:
        parts.append(f'<p><a href="{e(console, quote=True)}">Open the alerts in the console</a></p>')
    parts.append(f"<p><small>Event id: {e(_line(digest.get('event_id')))}</small></p></body></html>")
    return "".join(parts)
