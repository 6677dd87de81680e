"""An alert told for the people who act on it: what leaked and where, how bad and why, record by record.

Why one module: the console's alert page, ``GET /api/v1/alerts/{id}`` and ``leaksentinel alerts show``
must say the same thing. Everything here is derived from stored rows (findings, sightings, postings);
nothing is stored. Values are shown masked only; the posting excerpt (clear text, the evidence itself) is
built only when asked for, for the console page that already shows the evidence.

Usage::

    story = alert_story(sess, alert)          # title, severity_reason, leaked_records, sightings...
    story = alert_story(sess, alert, with_excerpt=True)   # plus the posting lines around each match
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.alert_view import alert_timeline, alert_to_dict
from core.canonical import IDENTIFYING
from core.models import SEVERITIES, Alert, Finding, Posting, Sighting, Source, Tenant
from core.next_steps import next_steps
from core.policy import rank, validate_thresholds

__all__ = [
    "OFFERED",
    "ago",
    "alert_story",
    "alert_title",
    "offered_actions",
    "posting_excerpt",
    "where_of",
]

#: Triage actions offered in each state (the rule leaksentinel.actions.alerts enforces).
OFFERED: dict[str, tuple[str, ...]] = {
    "new": ("ack", "resolve", "false-positive"),
    "acked": ("resolve", "false-positive", "reopen"),
    "resolved": ("reopen",),
    "false_positive": ("reopen",),
}
#: An ``email:password`` (or ``;`` ``|``) line: the same test detection applies for "with password"
#: (pipelines.detection.engine._COMBO; core may not import pipelines).
COMBO = re.compile(r"^\s*[^\s:;|,]+@[^\s:;|,]+\s*[:;|]\s*\S")
#: Fields that make a record finding ``high`` on their own (pipelines.detection.severity).
SENSITIVE = frozenset({"card", "iban", "cn_id", "ssn", "api_key"})
#: Bounds of the page: rows of records, sightings, excerpt lines and characters read of a posting.
MAX_RECORDS = 2000
MAX_SIGHTINGS = 500
EXCERPT_LINES = 200
EXCERPT_CONTEXT = 2
EXCERPT_LINE_CHARS = 400
TEXT_SCAN_CHARS = 4_000_000
_IN_CHUNK = 500


def offered_actions(status: str) -> tuple[str, ...]:
    return OFFERED.get(status, ())


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """``2 h ago``, ``3 d ago``, ``just now``: how long ago, as a person says it."""
    if when is None:
        return "at an unknown time"
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((now - when).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "y"), (86400 * 30, "mo"), (86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # pragma: no cover


def where_of(url: str | None, source: str | None) -> tuple[str, str | None]:
    """(what to call the place, its host or None): ``paste.example`` for a URL, the file name for a path."""
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            host = parts.hostname.lower()
            return (host[4:] if host.startswith("www.") else host), host
        name = PurePosixPath(url.replace("\\", "/")).name
        if name:
            return name, None
    return source or "an unknown place", None


def alert_title(
    view: dict[str, Any],
    *,
    with_password: int,
    where: str,
    findings: Sequence[dict[str, Any]],
    now: datetime | None = None,
) -> str:
    """ "54 acme customer records with passwords on paste.example, first seen 2 h ago, 3 sightings"."""
    tenant = view["tenant"]
    kinds = set(view["kinds"])
    records = int(view["records"] or 0)
    if records:
        what = f"{records} {tenant} customer {'record' if records == 1 else 'records'}"
        if with_password:
            what += (
                " with passwords"
                if with_password == records
                else f" ({with_password} with {'a password' if with_password == 1 else 'passwords'})"
            )
    elif "secret" in kinds:
        rules = sorted({str(f["watch"]) for f in findings if f["kind"] == "secret" and f.get("watch")})
        what = f"a leaked {tenant} secret" + (f" ({', '.join(rules[:3])})" if rules else "")
    elif "document" in kinds:
        docs = [f for f in findings if f["kind"] == "document"]
        name = docs[0].get("watch") if docs else None
        share = (
            f", {round(100 * float(docs[0]['overlap']))}% of it" if docs and docs[0].get("overlap") else ""
        )
        what = f"{tenant} document {name or ''}{share}".replace("  ", " ")
    elif "lookalike" in kinds:
        variants = sorted({str(f["watch"]) for f in findings if f["kind"] == "lookalike" and f.get("watch")})
        what = f"look-alike of a {tenant} domain" + (f" ({', '.join(variants[:3])})" if variants else "")
    elif kinds & {"keyword", "regex", "yara"}:
        names = sorted(
            {
                str(f["watch"])
                for f in findings
                if f["kind"] in ("keyword", "regex", "yara") and f.get("watch")
            }
        )
        what = (
            f"{tenant} watch {', '.join(repr(n) for n in names[:3])} matched" if names else "a watch matched"
        )
    elif "domain" in kinds:
        domains = sorted({str(f["watch"]) for f in findings if f["kind"] == "domain" and f.get("watch")})
        what = f"{tenant} domain {', '.join(domains[:3])} mentioned" if domains else f"{tenant} mentioned"
    else:
        what = f"{tenant} data"
    first = view.get("first_seen")
    first_dt = datetime.fromisoformat(first) if isinstance(first, str) else None
    sightings = len(view.get("sightings") or ())
    return f"{what} on {where}, first seen {ago(first_dt, now)}, {_plural(sightings, 'sighting')}"


def _line_reader(text: str) -> list[str]:
    return text[:TEXT_SCAN_CHARS].split("\n")


def _with_password(finding: Finding, lines: list[str] | None) -> bool:
    """Whether a record finding came with a password: its line reads ``email:password``, or (when the
    text is not at hand) its severity can only have come from one (pipelines.detection.severity)."""
    fields = set(finding.fields or [])
    line = finding.line or 0
    if lines is not None and "email" in fields and 0 < line <= len(lines) and COMBO.match(lines[line - 1]):
        return True
    return (
        finding.severity == "high"
        and bool(fields & IDENTIFYING)
        and not fields & SENSITIVE
        and len(fields) < 3
    )


def _first_seen_in(sess: Session, alert: Alert, keys: Iterable[str]) -> dict[str, int]:
    """record key -> the earliest other (earlier) alert of the tenant that held it."""
    out: dict[str, int] = {}
    keys = list(keys)
    for i in range(0, len(keys), _IN_CHUNK):
        rows = sess.execute(
            select(Finding.record_key, func.min(Finding.alert_id))
            .where(
                Finding.tenant_id == alert.tenant_id,
                Finding.kind == "record",
                Finding.record_key.in_(keys[i : i + _IN_CHUNK]),
                Finding.alert_id.is_not(None),
                Finding.alert_id < alert.id,
            )
            .group_by(Finding.record_key)
        ).all()
        out.update({str(k): int(a) for k, a in rows if k is not None and a is not None})
    return out


def _leaked_records(
    sess: Session, alert: Alert, findings: list[Finding], texts: dict[int, list[str]]
) -> list[dict[str, Any]]:
    """One row per leaked record (not per sighting): masked value, fields, sightings holding it, the
    password flag, and whether an earlier alert already had it (with that alert's id)."""
    rows: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.kind != "record" or not f.record_key:
            continue
        row = rows.get(f.record_key)
        if row is None:
            if len(rows) >= MAX_RECORDS:
                continue
            row = rows[f.record_key] = {
                "record_key": f.record_key,
                "masked": f.masked,
                "fields": set(),
                "with_password": False,
                "severity": f.severity,
                "line": f.line,
                "postings": set(),
            }
        row["fields"].update(f.fields or [])
        row["postings"].add(f.posting_id)
        row["masked"] = row["masked"] or f.masked
        if rank(f.severity) > rank(row["severity"]):
            row["severity"] = f.severity
        if not row["with_password"] and _with_password(f, texts.get(f.posting_id)):
            row["with_password"] = True
    earlier = _first_seen_in(sess, alert, rows)
    out = []
    for key, row in rows.items():
        first = earlier.get(key)
        out.append(
            {
                "record_key": key,
                "masked": row["masked"],
                "fields": sorted(row["fields"]),
                "with_password": row["with_password"],
                "severity": row["severity"],
                "line": row["line"],
                "sightings": len(row["postings"]),
                "new": first is None,
                "first_seen_alert": first,
            }
        )
    out.sort(key=lambda r: (not r["new"], -rank(r["severity"]), r["line"] or 0, r["record_key"]))
    return out


def _other_findings(findings: list[Finding]) -> list[dict[str, Any]]:
    """Findings that are not records, one row per (kind, watch, technique) however many sightings hold it."""
    rows: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for f in findings:
        if f.kind == "record":
            continue
        key = (f.kind, f.watch, f.technique)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "kind": f.kind,
                "watch": f.watch,
                "technique": f.technique,
                "masked": f.masked,
                "line": f.line,
                "overlap": f.overlap,
                "severity": f.severity,
                "postings": set(),
            }
        row["postings"].add(f.posting_id)
        if rank(f.severity) > rank(row["severity"]):
            row["severity"] = f.severity
    out = [
        {k: v for k, v in r.items() if k != "postings"} | {"sightings": len(r["postings"])}
        for r in rows.values()
    ]
    return out[:MAX_RECORDS]


def _severity_reason(
    alert: Alert, findings: list[Finding], records: list[dict[str, Any]], thresholds: Any
) -> str:
    """Why the alert is as severe as it is, in the terms of core.policy.tenant_severity."""
    try:
        limits = validate_thresholds(thresholds if isinstance(thresholds, dict) else None)
    except ValueError:
        limits = validate_thresholds(None)
    reasons: list[str] = []
    passwords = sum(1 for r in records if r["with_password"])
    sensitive = sorted({f for r in records for f in r["fields"] if f in SENSITIVE})
    if passwords:
        reasons.append(f"{_plural(passwords, 'record')} with a password beside the email")
    if sensitive:
        reasons.append(f"sensitive fields leaked ({', '.join(sensitive)})")
    if not passwords and not sensitive and any(len(r["fields"]) >= 3 for r in records):
        reasons.append("records with three or more of their fields together")
    kinds = set(alert.kinds or [])
    if "secret" in kinds:
        reasons.append("a secret (credential) is in the posting")
    if kinds & {"document"}:
        reasons.append("part of a registered document")
    new = alert.new_records or 0
    for name in ("critical", "high", "medium"):
        if new >= max(1, limits[name]):
            reasons.append(f"{_plural(new, 'new record')} (≥ {limits[name]} is {name})")
            break
    else:
        if alert.records and new == 0:
            reasons.append(f"{_plural(alert.records, 'record')}, all seen before (recycled)")
        elif new:
            reasons.append(f"{_plural(new, 'new record')} (under the medium threshold of {limits['medium']})")
    worst = max((rank(f.severity) for f in findings), default=0)
    if worst >= rank("high") and new >= max(1, limits["high"]):
        reasons.append(f"high-severity records and ≥ {limits['high']} of them new: critical")
    if not reasons:
        reasons.append(f"worst finding is {SEVERITIES[worst]}")
    return f"{alert.severity}: " + "; ".join(reasons)


def posting_excerpt(text: str, marked: Iterable[int]) -> list[dict[str, Any]]:
    """The posting's lines around each matched line (1-based), matched ones flagged; ``{"gap": True}``
    rows stand for skipped lines. Bounded in lines and characters whatever the posting's size."""
    wanted = sorted({n for n in marked if n and n > 0})
    if not wanted:
        return []
    lines = _line_reader(text)
    show: set[int] = set()
    for n in wanted:
        if len(show) >= EXCERPT_LINES:
            break
        show.update(range(max(1, n - EXCERPT_CONTEXT), min(len(lines), n + EXCERPT_CONTEXT) + 1))
    hits = set(wanted)
    out: list[dict[str, Any]] = []
    last = 0
    for n in sorted(show)[:EXCERPT_LINES]:
        if n > last + 1:
            out.append({"gap": True})
        line = lines[n - 1]
        cut = len(line) > EXCERPT_LINE_CHARS
        out.append(
            {
                "gap": False,
                "line": n,
                "text": line[:EXCERPT_LINE_CHARS] + ("…" if cut else ""),
                "matched": n in hits,
            }
        )
        last = n
    return out


def _sightings(sess: Session, alert: Alert) -> list[dict[str, Any]]:
    rows = sess.execute(
        select(Sighting.seen_at, Sighting.url, Sighting.posting_id, Source.name)
        .join(Posting, Posting.id == Sighting.posting_id)
        .join(Source, Source.id == Posting.source_id)
        .where(Sighting.alert_id == alert.id)
        .order_by(Sighting.seen_at, Sighting.id)
        .limit(MAX_SIGHTINGS)
    ).all()
    return [
        {
            "at": at.isoformat() if at else None,
            "url": url,
            "posting_id": posting_id,
            "source": source,
            "first": posting_id == alert.posting_id,
        }
        for at, url, posting_id, source in rows
    ]


def alert_story(
    sess: Session, alert: Alert, *, with_excerpt: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """The alert (``alerts list`` object with findings) plus: ``title``, ``severity_reason``,
    ``leaked_records``, ``other_findings`` (grouped), ``with_password``, ``sightings_timeline``, ``next_steps``, ``actions`` (offered
    triage actions), ``timeline`` (triage history); and ``excerpt`` when ``with_excerpt``."""
    view = alert_to_dict(sess, alert, with_findings=True, with_triage=True)
    findings = list(sess.scalars(select(Finding).where(Finding.alert_id == alert.id).order_by(Finding.id)))
    posting = alert.posting
    texts: dict[int, list[str]] = {}
    if posting is not None and any(f.kind == "record" for f in findings):
        texts[posting.id] = _line_reader(posting.text or "")
    records = _leaked_records(sess, alert, findings, texts)
    passwords = sum(1 for r in records if r["with_password"])
    where, host = where_of(view["url"], view["source"])
    tenant = sess.get(Tenant, alert.tenant_id)
    thresholds = (tenant.settings or {}).get("severity_thresholds") if tenant is not None else None
    fields = {f for r in records for f in r["fields"]}
    story = view | {
        "title": alert_title(view, with_password=passwords, where=where, findings=view["findings"], now=now),
        "where": where,
        "severity_reason": _severity_reason(alert, findings, records, thresholds),
        "with_password": passwords,
        "leaked_records": records,
        "other_findings": _other_findings(findings),
        "sightings_timeline": _sightings(sess, alert),
        "next_steps": next_steps(set(view["kinds"]), fields=fields, with_password=bool(passwords), host=host),
        "actions": list(offered_actions(alert.status)),
        "timeline": alert_timeline(sess, alert.id),
    }
    if with_excerpt:
        story["excerpt"] = (
            posting_excerpt(
                posting.text or "",
                (f.line for f in findings if f.posting_id == posting.id and f.line is not None),
            )
            if posting is not None
            else []
        )
    return story
