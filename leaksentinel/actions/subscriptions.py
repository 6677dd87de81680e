"""Subscriptions: where a tenant's alerts are delivered."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import select

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import SEVERITIES, AuditLog, Subscription
from core.netguard import check_url
from core.policy import validate_kinds
from core.settings import Settings
from leaksentinel.actions.naming import get_by_id
from leaksentinel.actions.tenants import tenant_by_id

__all__ = ["add_subscription", "list_subscriptions", "remove_subscription"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def add_subscription(
    db: Database,
    settings: Settings,
    tenant_id: int,
    *,
    webhook: str | None = None,
    secret: str | None = None,
    email: str | None = None,
    min_severity: str = "low",
    slack: str | None = None,
    kinds: list[str] | None = None,
    digest: str | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    if sum(bool(x) for x in (webhook, email, slack)) != 1:
        raise BadInput("give exactly one of --webhook, --email or --slack")
    clean_kinds = validate_kinds(kinds) if kinds else None
    if digest is not None and digest not in ("hourly", "daily"):
        raise BadInput(f"digest must be hourly or daily, got {digest!r}")
    if min_severity not in SEVERITIES:
        raise BadInput(f"unknown severity {min_severity!r}: one of {', '.join(SEVERITIES)}")
    if webhook:
        target = check_url(webhook, allow_private=settings.private_targets_allowed)
        channel = "webhook"
        secret = secret or secrets.token_urlsafe(32)
    elif slack:
        target, channel, secret = (
            check_url(slack, allow_private=settings.private_targets_allowed),
            "slack",
            None,
        )
    else:
        assert email is not None
        if not _EMAIL.match(email):
            raise BadInput(f"not an email address: {email!r}")
        target, channel, secret = email, "email", None
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        existing = sess.scalar(
            select(Subscription).where(
                Subscription.tenant_id == tenant.id,
                Subscription.channel == channel,
                Subscription.target == target,
            )
        )
        if existing is not None:
            existing.min_severity = min_severity
            existing.kinds = clean_kinds
            existing.digest = digest
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
                kinds=clean_kinds,
                digest=digest,
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
                detail={
                    "channel": channel,
                    "target": _shown_target(channel, target),
                    "tenant_id": tenant.id,
                },
            )
        )
        out: dict[str, Any] = {
            "id": sub.id,
            "tenant": tenant.name,
            "channel": channel,
            "target": _shown_target(channel, target),
            "min_severity": min_severity,
            "kinds": clean_kinds,
            "digest": digest,
        }
        if channel == "webhook":
            out["secret"] = secret
        return out


def list_subscriptions(db: Database, tenant_id: int) -> list[dict[str, Any]]:
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        return [
            {
                "id": s.id,
                "tenant": tenant.name,
                "channel": s.channel,
                "target": _shown_target(s.channel, s.target),
                "min_severity": s.min_severity,
                "kinds": s.kinds,
                "digest": s.digest,
                "enabled": s.enabled,
            }
            for s in sess.scalars(
                select(Subscription).where(Subscription.tenant_id == tenant.id).order_by(Subscription.id)
            )
        ]


def remove_subscription(
    db: Database, tenant_id: int, sub_id: int | str, actor: str = "cli"
) -> dict[str, Any]:
    """Stop delivering to one target. Its past deliveries go with it; another tenant's id is NotFound."""
    text = str(sub_id)
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        sub = get_by_id(sess, Subscription, text, "subscription")
        if sub is None or sub.tenant_id != tenant.id:
            raise NotFound(f"tenant {tenant.name} has no subscription {text}")
        shown = _shown_target(sub.channel, sub.target)
        channel = sub.channel
        sess.delete(sub)
        sess.add(
            AuditLog(
                actor=actor,
                action="subscription.remove",
                object_type="subscription",
                object_id=text,
                detail={"channel": channel, "target": shown, "tenant_id": tenant.id},
            )
        )
        return {"id": int(text), "tenant": tenant.name, "channel": channel, "target": shown, "removed": True}


def _shown_target(channel: str, target: str) -> str:
    """A Slack incoming-webhook URL is a credential: show only its host."""
    if channel == "slack":
        return target.split("/services/")[0].rstrip("/") + "/…"
    return target
