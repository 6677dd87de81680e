"""API keys for operators, analysts and tenant users (stored as SHA-256 digests; shown once).

Revoking a key also ends every console session made with it: sessions are checked against the key on
each request (leaksentinel.console.session).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ApiKey, AuditLog, Tenant
from leaksentinel.actions.naming import get_by_id
from leaksentinel.actions.tenants import new_api_key, tenant_by_id

__all__ = ["ROLES", "add_key", "list_keys", "revoke_key"]

ROLES = ("operator", "analyst", "tenant_admin", "tenant_viewer")


def add_key(db: Database, role: str, tenant_id: int | None = None, actor: str = "cli") -> dict[str, Any]:
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    tenant_role = role.startswith("tenant_")
    if tenant_role != (tenant_id is not None):
        raise BadInput("tenant roles need --tenant; operator and analyst keys take none")
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id) if tenant_id is not None else None
        clear, prefix, digest = new_api_key()
        key = ApiKey(tenant_id=tenant.id if tenant else None, role=role, prefix=prefix, key_hash=digest)
        sess.add(key)
        sess.flush()
        sess.add(
            AuditLog(
                actor=actor,
                action="key.add",
                object_type="api_key",
                object_id=str(key.id),
                detail={
                    "role": role,
                    "tenant": tenant.name if tenant else None,
                    "tenant_id": tenant.id if tenant else None,
                },
            )
        )
        return {"id": key.id, "role": role, "tenant": tenant.name if tenant else None, "api_key": clear}


def list_keys(db: Database) -> list[dict[str, Any]]:
    with db.session() as sess:
        names = {t.id: t.name for t in sess.scalars(select(Tenant))}
        return [
            {
                "id": k.id,
                "role": k.role,
                "tenant": names.get(k.tenant_id or -1),
                "prefix": k.prefix,
                "revoked": k.revoked,
                "created_at": k.created_at.isoformat(),
            }
            for k in sess.scalars(select(ApiKey).order_by(ApiKey.id))
        ]


def revoke_key(db: Database, key_id: str, actor: str = "cli") -> dict[str, Any]:
    with db.session() as sess:
        key = get_by_id(sess, ApiKey, key_id, "key")
        if key is None:
            raise NotFound(f"unknown key: {key_id}")
        key.revoked = True
        sess.add(
            AuditLog(actor=actor, action="key.revoke", object_type="api_key", object_id=key_id, detail={})
        )
        return {"id": key.id, "revoked": True}
