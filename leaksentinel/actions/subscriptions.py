"""Subscriptions: where a tenant's alerts are delivered."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import select

from core.db import Database
from core.errors import BadInput
from core.models import SEVERITIES, AuditLog, Subscription
from core.netguard import check_url
from core.settings import Settings
from leaksentinel.actions.tenants import find_tenant

__all__ = ["add_subscription", "list_subscriptions"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def add_subscription(
    db: Database,
    settings: Settings,
    tenant_ref: str,
    *,
    webhook: str | None = None,
    secret: str | None = None,
    email: str | None = None,
    min_severity: str = "low",
    actor: str = "cli",
) -> dict[str, Any]:
    if bool(webhook) == bool(email):
        raise BadInput("give exactly one of --webhook or --email")
    if min_severity not in SEVERITIES:
        raise BadInput(f"unknown severity {min_severity!r}: one of {', '.join(SEVERITIES)}")
    if webhook:
        target = check_url(webhook, allow_private=settings.private_targets_allowed)
        channel = "webhook"
        secret = secret or secrets.token_urlsafe(32)
    else:
        assert email is not None
        if not _EMAIL.match(email):
            raise BadInput(f"not an email address: {email!r}")
        target, channel, secret = email, "email", None
    with db.session() as sess:
        tenant = find_tenant(sess, tenant_ref)
        existing = sess.scalar(
            select(Subscription).where(
                Subscription.tenant_id == tenant.id,
                Subscription.channel == channel,
                Subscription.target == target,
            )
        )
        if existing is not None:
            existing.min_severity = min_severity
            if channel == "webhook" and secret:
                existing.secret = secret
            sub = existing
        else:
            sub = Subscription(
                tenant_id=tenant.id,
                channel=channel,
                target=target,
                secret=secret,
                min_severity=min_severity,
                enabled=True,
            )
            sess.add(sub)
        sess.flush()
        sess.add(
            AuditLog(
                actor=actor,
                action="subscription.add",
                object_type="subscription",
                object_id=str(sub.id),
                detail={"channel": channel, "target": target},
            )
        )
        out: dict[str, Any] = {
            "id": sub.id,
            "tenant": tenant.name,
            "channel": channel,
            "target": target,
            "min_severity": min_severity,
        }
        if channel == "webhook":
            out["secret"] = secret
        return out


def list_subscriptions(db: Database, tenant_ref: str) -> list[dict[str, Any]]:
    with db.session() as sess:
        tenant = find_tenant(sess, tenant_ref)
        return [
            {
                "id": s.id,
                "tenant": tenant.name,
                "channel": s.channel,
                "target": s.target,
                "min_severity": s.min_severity,
                "enabled": s.enabled,
            }
            for s in sess.scalars(
                select(Subscription).where(Subscription.tenant_id == tenant.id).order_by(Subscription.id)
            )
        ]
