"""How an alert is shown: the contract's ``alerts list`` object, also the base of alert events.

Why one function: the CLI, the API and the notification events must describe an alert identically.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Alert, AlertEvent, Finding, Source, Tenant

__all__ = ["alert_timeline", "alert_to_dict"]

#: At most this many entries of an alert's history are read (newest kept); the rest is counted.
TIMELINE_LIMIT = 500


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def alert_to_dict(
    sess: Session, alert: Alert, *, with_findings: bool = False, with_triage: bool = False
) -> dict[str, Any]:
    tenant = sess.get(Tenant, alert.tenant_id)
    posting = alert.posting
    source = sess.get(Source, posting.source_id) if posting is not None else None
    out: dict[str, Any] = {
        "id": alert.id,
        "tenant": tenant.name if tenant else str(alert.tenant_id),
        "severity": alert.severity,
        "status": alert.status,
        "kinds": list(alert.kinds or []),
        "records": alert.records,
        "new_records": alert.new_records,
        "url": posting.url if posting is not None else None,
        "source": source.name if source else None,
        "first_seen": _iso(alert.first_seen),
        "last_seen": _iso(alert.last_seen),
        "sightings": [s.url for s in alert.sightings],
    }
    if with_triage:  # the team's own notes: in its lists and pages, never in events, exports or evidence
        out["assignee"] = alert.assignee
        out["status_reason"] = alert.status_reason
    if with_findings:
        rows = sess.scalars(select(Finding).where(Finding.alert_id == alert.id).order_by(Finding.id))
        out["findings"] = [
            {
                "kind": f.kind,
                "record_key": f.record_key,
                "fields": list(f.fields or []),
                "watch": f.watch,
                "line": f.line,
                "severity": f.severity,
                "masked": f.masked,
            }
            | ({"technique": f.technique} if f.technique else {})
            for f in rows
        ]
    return out


def alert_timeline(sess: Session, alert_id: int) -> list[dict[str, Any]]:
    """Every triage change of an alert (status, assignment, note), oldest first, with actor and time.

    Why here: the API's ``timeline``, the console's history and ``alerts show`` must read it alike."""
    rows = list(
        sess.scalars(
            select(AlertEvent)
            .where(AlertEvent.alert_id == alert_id)
            .order_by(AlertEvent.id.desc())
            .limit(TIMELINE_LIMIT)
        )
    )
    rows.reverse()
    return [
        {
            "at": _iso(e.at),
            "actor": e.actor,
            "action": e.action,
            "from": e.old_value,
            "to": e.new_value,
            "text": e.text,
        }
        for e in rows
    ]
