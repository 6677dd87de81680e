"""The audit log: every change, with who made it (CLI user, API key, demo, tip line)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from core.db import Database
from core.models import ApiKey, AuditLog
from leaksentinel.actions.tenants import tenant_by_id

__all__ = ["list_audit"]


def list_audit(db: Database, *, limit: int = 100, tenant_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first. With ``tenant_id``, that tenant's entries only.

    Why exact matches: a tenant's entries are those made with one of its keys (actor strings compared whole,
    never with LIKE, whose ``_`` and ``%`` would match other tenants' names) and those whose detail names the
    tenant's id (changes operators make for it). A ``tenant_id`` column on the audit log would index this.
    """
    limit = min(max(limit, 1), 10_000)
    with db.session() as sess:
        query = select(AuditLog).order_by(AuditLog.id.desc())
        if tenant_id is not None:
            tenant = tenant_by_id(sess, tenant_id)
            actors = [
                f"key:{key_id}:{role}:{tenant.name}"
                for key_id, role in sess.execute(
                    select(ApiKey.id, ApiKey.role).where(ApiKey.tenant_id == tenant.id)
                )
            ]
            query = query.where(
                or_(AuditLog.actor.in_(actors), AuditLog.detail["tenant_id"].as_integer() == tenant.id)
            )
        return [
            {
                "id": a.id,
                "at": a.at.isoformat(),
                "actor": a.actor,
                "action": a.action,
                "object_type": a.object_type,
                "object_id": a.object_id,
                "detail": a.detail,
            }
            for a in sess.scalars(query.limit(limit))
        ]
