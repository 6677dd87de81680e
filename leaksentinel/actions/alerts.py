"""Alerts: listing, the alert page, and triage (status with reason, assignee, notes) with its history.

Why here: the API, the console and the CLI triage through these functions only, so the rules (which
actions each state offers, which need a reason) and the history (one AlertEvent per change, with actor
and time) cannot differ between them.

States and actions (core.alert_story.OFFERED)::

    new            -> ack, resolve*, false-positive*
    acked          -> resolve*, false-positive*, reopen
    resolved       -> reopen
    false_positive -> reopen            (* a reason is required)
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from core.alert_story import OFFERED, alert_story, offered_actions
from core.alert_view import alert_to_dict
from core.db import Database
from core.errors import BadInput, NotFound
from core.models import (
    ALERT_STATUSES,
    Alert,
    AlertEvent,
    AuditLog,
    Finding,
    Posting,
    Source,
    Suppression,
)
from core.policy import suppression_key
from core.settings import Settings
from leaksentinel.actions.naming import as_row_id, get_by_id
from leaksentinel.actions.tenants import tenant_by_id

__all__ = [
    "ACTIONS",
    "ALERT_KINDS",
    "MAX_BULK",
    "REASON_REQUIRED",
    "InvalidTransition",
    "ReasonRequired",
    "add_note",
    "alert_detail",
    "alert_in_scope",
    "alert_posting",
    "alert_sources",
    "assign_alert",
    "bulk_triage",
    "export_alert",
    "list_alerts",
    "offered_actions",
    "set_alert_status",
    "triage_alert",
]

#: Triage action -> the status it leads to.
ACTIONS: dict[str, str] = {
    "ack": "acked",
    "resolve": "resolved",
    "false-positive": "false_positive",
    "reopen": "new",
}
#: Actions that must say why (a resolved or dismissed alert is read later by someone who was not there).
REASON_REQUIRED = frozenset({"resolve", "false-positive"})
#: Finding kinds an inbox may filter on (the contract's ``scan`` kinds).
ALERT_KINDS = ("record", "domain", "lookalike", "keyword", "regex", "yara", "document", "secret")
MAX_REASON = 2000
MAX_NOTE = 4000
MAX_ASSIGNEE = 128
MAX_BULK = 500
_DONE = {
    "ack": "acknowledged",
    "resolve": "resolved",
    "false-positive": "marked false positive",
    "reopen": "reopened",
}
_VERB = {
    "ack": "acknowledge",
    "resolve": "resolve",
    "false-positive": "mark as false positive",
    "reopen": "reopen",
}
#: Control characters but newline and tab (a note may have lines; NUL is refused by PostgreSQL).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class InvalidTransition(BadInput):
    """The alert's state does not offer this action (HTTP 409, CLI exit 2)."""


class ReasonRequired(BadInput):
    """Resolve and false positive need a reason (HTTP 422, CLI exit 2)."""


def _clean(value: str | None, what: str, limit: int, *, one_line: bool = False) -> str | None:
    """Stripped text, None when empty; BadInput when too long or holding control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{what} must be text")
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()  # browsers send CRLF
    if not text:
        return None
    if len(text) > limit:
        raise BadInput(f"{what} is too long ({len(text)} characters, at most {limit})")
    if (_LINE_CONTROLS if one_line else _CONTROLS).search(text):
        raise BadInput(f"{what} has a control character (NUL, escape{', newline' if one_line else ''} ...)")
    return text


def _day(value: str | date | datetime | None, what: str, *, end: bool = False) -> datetime | None:
    """A date filter: ``2026-12-01`` (the whole day) or an ISO time; BadInput otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min) + (timedelta(days=1) if end else timedelta())
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text), time.min)
                if end:
                    moment += timedelta(days=1)
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"{what} must be a date (YYYY-MM-DD) or an ISO time, got {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_alerts(
    db: Database,
    tenant_id: int | None = None,
    status: str | None = None,
    *,
    kind: str | None = None,
    source: str | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    assignee: str | None = None,
) -> list[dict[str, Any]]:
    """All alerts, or one tenant's (by id: see tenants.tenant_by_id), oldest first, filtered by status,
    finding kind, source (of the leak's first posting), first-seen date range and assignee."""
    if status is not None and status not in ALERT_STATUSES:
        raise BadInput(f"unknown status {status!r}: one of {', '.join(ALERT_STATUSES)}")
    if kind and kind not in ALERT_KINDS:
        raise BadInput(f"unknown finding kind {kind!r}: one of {', '.join(ALERT_KINDS)}")
    start, stop = _day(since, "since"), _day(until, "until", end=True)
    with db.session() as sess:
        query = select(Alert).order_by(Alert.id)
        if tenant_id is not None:
            query = query.where(Alert.tenant_id == tenant_by_id(sess, tenant_id).id)
        if status is not None:
            query = query.where(Alert.status == status)
        if kind:
            query = query.where(exists().where(Finding.alert_id == Alert.id, Finding.kind == kind))
        if source:
            query = query.where(
                exists().where(
                    Posting.id == Alert.posting_id, Source.id == Posting.source_id, Source.name == source[:64]
                )
            )
        if start is not None:
            query = query.where(Alert.first_seen >= start)
        if stop is not None:
            query = query.where(Alert.first_seen < stop)
        if assignee:
            query = query.where(Alert.assignee == assignee[:MAX_ASSIGNEE])
        return [alert_to_dict(sess, a, with_triage=True) for a in sess.scalars(query)]


def alert_sources(db: Database, tenant_id: int | None = None) -> list[str]:
    """Names of the sources the (tenant's) alerts came from: the inbox's source picker."""
    with db.session() as sess:
        query = (
            select(Source.name)
            .join(Posting, Posting.source_id == Source.id)
            .join(Alert, Alert.posting_id == Posting.id)
            .distinct()
            .order_by(Source.name)
        )
        if tenant_id is not None:
            query = query.where(Alert.tenant_id == tenant_id)
        return list(sess.scalars(query))


def _alert(sess: Session, alert_id: str, tenant_id: int | None) -> Alert:
    """The alert by id; another tenant's alert is as unknown as a missing one."""
    alert = get_by_id(sess, Alert, alert_id, "alert")
    if alert is None or (tenant_id is not None and alert.tenant_id != tenant_id):
        raise NotFound(f"unknown alert: {alert_id}")
    return alert


def alert_in_scope(db: Database, alert_id: int, tenant_id: int | None) -> int:
    """The alert's id when it exists and (for a tenant) is that tenant's; NotFound otherwise."""
    with db.session() as sess:
        return _alert(sess, str(alert_id), tenant_id).id


def alert_detail(
    db: Database, alert_id: str | int, *, tenant_id: int | None = None, with_excerpt: bool = False
) -> dict[str, Any]:
    """The alert page's data (core.alert_story): title, severity reason, records, sightings, next steps,
    offered actions and the triage timeline; ``with_excerpt`` adds posting lines (clear text: console only)."""
    with db.session() as sess:
        return alert_story(sess, _alert(sess, str(alert_id), tenant_id), with_excerpt=with_excerpt)


def alert_posting(db: Database, alert_id: str | int, *, tenant_id: int | None = None) -> Posting | None:
    """The leak's first posting (detached, text loaded): the evidence the console shows as inert text."""
    with db.session() as sess:
        posting = _alert(sess, str(alert_id), tenant_id).posting
        if posting is not None:
            sess.expunge(posting)
        return posting


def _event(
    sess: Session, alert: Alert, actor: str, action: str, old: Any, new: Any, text: str | None
) -> None:
    sess.add(
        AlertEvent(
            alert_id=alert.id,
            tenant_id=alert.tenant_id,
            actor=actor[:128],
            action=action,
            old_value=None if old is None else str(old)[:128],
            new_value=None if new is None else str(new)[:128],
            text=text,
        )
    )


def _transition(
    sess: Session, alert: Alert, action: str, reason: str | None, actor: str, *, require_reason: bool
) -> None:
    """One status change: checked against the state, recorded as an AlertEvent and in the audit log."""
    status = ACTIONS.get(action)
    if status is None:
        raise BadInput(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    offered = offered_actions(alert.status)
    if action not in offered:
        raise InvalidTransition(
            f"alert {alert.id} is {alert.status.replace('_', ' ')}: it cannot be {_DONE[action]}"
            f" (possible: {', '.join(offered) or 'nothing'})"
        )
    if require_reason and action in REASON_REQUIRED and not reason:
        raise ReasonRequired(f"give a reason to {_VERB[action]} alert {alert.id}")
    before = alert.status
    alert.status = status
    alert.status_reason = reason
    if status == "false_positive":
        _suppress(sess, alert, actor)
    elif before == "false_positive":  # reopened: the same content alerts again
        sess.execute(delete(Suppression).where(Suppression.alert_id == alert.id))
    _event(sess, alert, actor, "status", before, status, reason)
    sess.add(
        AuditLog(
            actor=actor,
            action=f"alert.{status}",
            object_type="alert",
            object_id=str(alert.id),
            detail={"from": before, "to": status, "tenant_id": alert.tenant_id},
        )
    )


def triage_alert(
    db: Database,
    alert_id: str | int,
    action: str,
    *,
    reason: str | None = None,
    tenant_id: int | None = None,
    actor: str = "cli",
    require_reason: bool = True,
) -> dict[str, Any]:
    """Apply a triage action (ack, resolve, false-positive, reopen). InvalidTransition when the state does
    not offer it; ReasonRequired for resolve and false-positive without a reason (unless
    ``require_reason=False``: the CLI's contract forms ``alerts resolve ID`` keep working)."""
    text = _clean(reason, "the reason", MAX_REASON)
    with db.session() as sess:
        alert = _alert(sess, str(alert_id), tenant_id)
        _transition(sess, alert, action, text, actor, require_reason=require_reason)
        sess.flush()
        return alert_to_dict(sess, alert, with_triage=True)


def set_alert_status(
    db: Database,
    alert_id: str,
    status: str,
    *,
    tenant_id: int | None = None,
    actor: str = "cli",
    reason: str | None = None,
    require_reason: bool = True,
) -> dict[str, Any]:
    """triage_alert by target status (``acked``, ``resolved``, ``false_positive``, ``new``)."""
    by_status = {v: k for k, v in ACTIONS.items()}
    if status not in by_status:
        raise BadInput(f"unknown status {status!r}")
    return triage_alert(
        db,
        alert_id,
        by_status[status],
        reason=reason,
        tenant_id=tenant_id,
        actor=actor,
        require_reason=require_reason,
    )


def assign_alert(
    db: Database,
    alert_id: str | int,
    assignee: str | None,
    *,
    tenant_id: int | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """Set (or, with None or empty, clear) who owns the alert; a change is recorded, a no-op is not."""
    who = _clean(assignee, "the assignee", MAX_ASSIGNEE, one_line=True)
    with db.session() as sess:
        alert = _alert(sess, str(alert_id), tenant_id)
        if alert.assignee != who:
            _event(sess, alert, actor, "assign", alert.assignee, who, None)
            alert.assignee = who
        sess.flush()
        return alert_to_dict(sess, alert, with_triage=True)


def add_note(
    db: Database, alert_id: str | int, text: str, *, tenant_id: int | None = None, actor: str = "cli"
) -> dict[str, Any]:
    """A note on the alert's timeline (what was checked, who was told)."""
    note = _clean(text, "the note", MAX_NOTE)
    if note is None:
        raise BadInput("the note is empty")
    with db.session() as sess:
        alert = _alert(sess, str(alert_id), tenant_id)
        _event(sess, alert, actor, "note", None, None, note)
        sess.flush()
        return alert_to_dict(sess, alert, with_triage=True)


def bulk_triage(
    db: Database,
    ids: list[Any],
    action: str,
    *,
    reason: str | None = None,
    assignee: str | None = None,
    tenant_id: int | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """One action on many alerts of the inbox (a status action, or ``assign``), in one transaction.

    Every id must be the caller's (else NotFound, nothing changes); alerts whose state does not offer the
    action are skipped and listed with why, the others change, each with its own AlertEvent."""
    if action not in ACTIONS and action != "assign":
        raise BadInput(f"unknown action {action!r}: one of {', '.join([*ACTIONS, 'assign'])}")
    if not isinstance(ids, list) or not ids:
        raise BadInput("pick at least one alert")
    if len(ids) > MAX_BULK:
        raise BadInput(f"at most {MAX_BULK} alerts at once, got {len(ids)}")
    wanted: list[int] = []
    for raw in ids:
        row_id = as_row_id(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
        if row_id is None:
            raise NotFound(f"unknown alert: {str(raw)[:20]}")
        if row_id not in wanted:
            wanted.append(row_id)
    text = _clean(reason, "the reason", MAX_REASON)
    who = _clean(assignee, "the assignee", MAX_ASSIGNEE, one_line=True)
    if action in REASON_REQUIRED and not text:
        raise ReasonRequired(f"give a reason to {_VERB[action]} these alerts")
    changed: list[int] = []
    skipped: list[dict[str, Any]] = []
    with db.session() as sess:
        rows = {a.id: a for a in sess.scalars(select(Alert).where(Alert.id.in_(wanted)))}
        for row_id in wanted:
            alert = rows.get(row_id)
            if alert is None or (tenant_id is not None and alert.tenant_id != tenant_id):
                raise NotFound(f"unknown alert: {row_id}")
        for row_id in wanted:
            alert = rows[row_id]
            if action == "assign":
                if alert.assignee != who:
                    _event(sess, alert, actor, "assign", alert.assignee, who, None)
                    alert.assignee = who
                changed.append(row_id)
                continue
            if action not in OFFERED.get(alert.status, ()):
                skipped.append(
                    {
                        "id": row_id,
                        "status": alert.status,
                        "error": f"{alert.status.replace('_', ' ')}: "
                        f"possible {', '.join(offered_actions(alert.status)) or 'nothing'}",
                    }
                )
                continue
            _transition(sess, alert, action, text, actor, require_reason=True)
            changed.append(row_id)
    return {"action": action, "changed": changed, "skipped": skipped}


def _suppress(sess: Session, alert: Alert, actor: str) -> None:
    """Remember each finding of a false positive so the same finding on the same content stays silent."""
    rows = sess.execute(
        select(Finding.kind, Finding.watch_id, Finding.record_key, Posting.content_hash)
        .join(Posting, Posting.id == Finding.posting_id)
        .where(Finding.alert_id == alert.id)
    ).all()
    existing = set(sess.scalars(select(Suppression.key).where(Suppression.tenant_id == alert.tenant_id)))
    for kind, watch_id, record_key, content_hash in rows:
        key = suppression_key(kind, watch_id, record_key, content_hash)
        if key not in existing:
            existing.add(key)
            sess.add(Suppression(tenant_id=alert.tenant_id, key=key, alert_id=alert.id, actor=actor))


def export_alert(
    db: Database, settings: Settings, alert_id: str, fmt: str, *, tenant_id: int | None = None
) -> dict[str, Any]:
    """An alert as a STIX 2.1 bundle or a MISP event (no full value: built from the whitelisted event)."""
    if fmt not in ("stix", "misp"):
        raise BadInput(f"unknown export format {fmt!r}: stix or misp")
    from alerting.exports import alert_to_misp, alert_to_stix  # stix2 is slow to import

    with db.session() as sess:
        view = alert_to_dict(sess, _alert(sess, alert_id, tenant_id), with_findings=True)
    console = f"{settings.console_url}/alerts/{alert_id}"
    return (
        alert_to_stix(view, console_url=console)
        if fmt == "stix"
        else alert_to_misp(view, console_url=console)
    )
