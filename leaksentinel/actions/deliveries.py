"""Deliveries: the outbox rows, their attempts, and the dead-letter list operators redeliver from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import AuditLog, Delivery, Subscription, Tenant
from leaksentinel.actions.naming import get_by_id

__all__ = ["DELIVERY_STATUSES", "list_deliveries", "retry_deliveries"]

DELIVERY_STATUSES = ("pending", "queued", "sent", "dead")


def _to_dict(d: Delivery, sub: Subscription | None, tenant: Tenant | None) -> dict[str, Any]:
    return {
        "id": d.id,
        "alert": d.alert_id,
        "tenant": tenant.name if tenant else None,
        "channel": sub.channel if sub else None,
        "target": sub.target if sub else None,
        "event_id": d.event_id,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": d.created_at.isoformat() if d.created_at else None,
        "sent_at": d.sent_at.isoformat() if d.sent_at else None,
    }


def list_deliveries(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise BadInput(f"unknown delivery status {status!r}: one of {', '.join(DELIVERY_STATUSES)}")
    with db.session() as sess:
        query = (
            select(Delivery, Subscription, Tenant)
            .join(Subscription, Subscription.id == Delivery.subscription_id, isouter=True)
            .join(Tenant, Tenant.id == Subscription.tenant_id, isouter=True)
            .order_by(Delivery.id)
        )
        if status:
            query = query.where(Delivery.status == status)
        return [_to_dict(d, s, t) for d, s, t in sess.execute(query).all()]


def retry_deliveries(
    db: Database, ids: list[str], *, all_dead: bool = False, actor: str = "cli"
) -> list[dict[str, Any]]:
    """Put dead deliveries back in the outbox (same event id: receivers still deduplicate)."""
    if not ids and not all_dead:
        raise BadInput("give delivery ids or --all-dead")
    with db.session() as sess:
        if all_dead:
            rows = list(sess.scalars(select(Delivery).where(Delivery.status == "dead")))
        else:
            rows = []
            for raw in ids:
                d = get_by_id(sess, Delivery, raw, "delivery")
                if d is None:
                    raise NotFound(f"unknown delivery: {raw}")
                rows.append(d)
        out = []
        for d in rows:
            if d.status == "sent":
                raise BadInput(f"delivery {d.id} was already sent")
            d.status = "pending"
            d.attempts = 0
            d.queued_at = None
            sess.add(
                AuditLog(
                    actor=actor,
                    action="delivery.retry",
                    object_type="delivery",
                    object_id=str(d.id),
                    detail={"event_id": d.event_id},
                )
            )
            out.append({"id": d.id, "event_id": d.event_id, "status": "pending"})
        return out
