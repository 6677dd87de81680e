"""Alerts: listing and triage (new, acked, resolved, false_positive)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.alert_view import alert_to_dict
from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ALERT_STATUSES, Alert, AuditLog, Finding, Posting, Suppression
from core.policy import suppression_key
from core.settings import Settings
from leaksentinel.actions.naming import get_by_id
from leaksentinel.actions.tenants import tenant_by_id

__all__ = ["alert_in_scope", "export_alert", "list_alerts", "set_alert_status"]


def list_alerts(
    db: Database, tenant_id: int | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """All alerts, or one tenant's (by id: see tenants.tenant_by_id)."""
    if status is not None and status not in ALERT_STATUSES:
        raise BadInput(f"unknown status {status!r}: one of {', '.join(ALERT_STATUSES)}")
    with db.session() as sess:
        query = select(Alert).order_by(Alert.id)
        if tenant_id is not None:
            query = query.where(Alert.tenant_id == tenant_by_id(sess, tenant_id).id)
        if status is not None:
            query = query.where(Alert.status == status)
        return [alert_to_dict(sess, a) for a in sess.scalars(query)]


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


def set_alert_status(
    db: Database, alert_id: str, status: str, *, tenant_id: int | None = None, actor: str = "cli"
) -> dict[str, Any]:
    if status not in ALERT_STATUSES:
        raise BadInput(f"unknown status {status!r}")
    with db.session() as sess:
        alert = _alert(sess, alert_id, tenant_id)
        before = alert.status
        alert.status = status
        if status == "false_positive":
            _suppress(sess, alert, actor)
        sess.add(
            AuditLog(
                actor=actor,
                action=f"alert.{status}",
                object_type="alert",
                object_id=str(alert.id),
                detail={"from": before, "to": status, "tenant_id": alert.tenant_id},
            )
        )
        return alert_to_dict(sess, alert)


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
