"""The audit log: every change, with who made it (CLI user, API key, demo, tip line)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from core.models import AuditLog

__all__ = ["list_audit"]


def list_audit(db: Database, *, limit: int = 100, tenant: str | None = None) -> list[dict[str, Any]]:
    """Newest first. With ``tenant``, only entries made with that tenant's keys."""
    limit = min(max(limit, 1), 10_000)
    with db.session() as sess:
        query = select(AuditLog).order_by(AuditLog.id.desc())
        if tenant is not None:
            query = query.where(AuditLog.actor.like(f"key:%:{tenant}"))
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
