"""The digest job: for subscriptions in digest mode, one summary per hour or day instead of one message
per alert, written to the outbox like any delivery (so it is retried and never lost either)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from alerting.digest import build_digest, digest_window
from core.alert_view import alert_to_dict
from core.db import Database
from core.models import Alert, Delivery, Subscription, Tenant, utcnow
from core.policy import passes_filters
from core.settings import Settings

__all__ = ["run_digests"]

log = logging.getLogger(__name__)


def run_digests(db: Database, settings: Settings, now: dt.datetime | None = None) -> int:
    """Write the digests that are due; returns how many were written."""
    now = now or utcnow()
    written = 0
    with db.session() as sess:
        subs = [
            (s.id, s.digest)
            for s in sess.scalars(
                select(Subscription).where(Subscription.digest.is_not(None), Subscription.enabled.is_(True))
            )
        ]
    for sub_id, period in subs:
        start, end = digest_window(now, period)  # type: ignore[arg-type]
        try:
            with db.session() as sess:
                sub = sess.get(Subscription, sub_id)
                if sub is None or (sub.last_digest_to is not None and sub.last_digest_to >= end):
                    continue
                tenant = sess.get(Tenant, sub.tenant_id)
                alerts = [
                    alert_to_dict(sess, a)
                    for a in sess.scalars(
                        select(Alert)
                        .where(
                            Alert.tenant_id == sub.tenant_id,
                            Alert.first_seen >= start,
                            Alert.first_seen < end,
                            Alert.status != "false_positive",
                        )
                        .order_by(Alert.id)
                    )
                ]
                alerts = [
                    a for a in alerts if passes_filters(a, min_severity=sub.min_severity, kinds=sub.kinds)
                ]
                if alerts and tenant is not None:
                    digest = build_digest(
                        tenant.name,
                        alerts,
                        period,  # type: ignore[arg-type]
                        (start, end),
                        subscription_id=sub.id,
                        console_url=f"{settings.console_url}/alerts",
                    )
                    sess.add(
                        Delivery(
                            alert_id=None,
                            subscription_id=sub.id,
                            event_id=digest["event_id"],
                            event_type="alert.digest",
                            payload=digest,
                        )
                    )
                    written += 1
                sub.last_digest_to = end
        except IntegrityError:  # another relay wrote this digest first
            log.info("digest for subscription %s already written", sub_id)
    return written
