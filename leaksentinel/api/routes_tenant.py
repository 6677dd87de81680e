"""Tenant-facing endpoints: tenants, watch items, subscriptions, alerts and their triage and export.

Every tenant-scoped route declares ``CurrentTenant`` / ``PickedTenant`` / ``ScopedAlert``
(leaksentinel.api.deps): the scoping rule is written once, and actions get the tenant's id.
"""

import io
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import Tenant
from leaksentinel.actions.alerts import export_alert, list_alerts, set_alert_status
from leaksentinel.actions.subscriptions import add_subscription, list_subscriptions, remove_subscription
from leaksentinel.actions.tenants import add_tenant, list_tenants
from leaksentinel.actions.watches import (
    add_domain_watch,
    add_keyword_watch,
    add_records,
    add_regex_watch,
    list_watches,
    parse_record_lines,
    remove_watch,
)
from leaksentinel.api.deps import DB, AppSettings, CurrentTenant, PickedTenant, ScopedAlert
from leaksentinel.api.deps import CurrentPrincipal as Who

router = APIRouter(prefix="/api/v1")

TRIAGE = {"ack": "acked", "resolve": "resolved", "false-positive": "false_positive", "reopen": "new"}


class Strict(BaseModel):
    """Request bodies refuse fields they do not know (a misspelt option is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")


class TenantIn(Strict):
    name: str = Field(max_length=64)
    domains: list[str] = Field(default_factory=list, max_length=100)
    regions: list[str] = Field(default_factory=list, max_length=50)


@router.get("/me")
def me(who: Who) -> dict[str, Any]:
    return {"role": who.role, "tenant": who.tenant}


@router.get("/tenants")
def tenants(who: Who, db: DB) -> list[dict[str, Any]]:
    rows = list_tenants(db)
    if who.is_tenant:
        rows = [t for t in rows if t["id"] == who.tenant_id]
    return rows


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, who: Who, db: DB) -> dict[str, Any]:
    who.require("operator")
    return add_tenant(db, body.name, body.domains, body.regions, actor=who.actor)


class WatchIn(Strict):
    kind: str = Field(pattern="^(domain|keyword|regex)$")
    value: str = Field(max_length=1024)


@router.get("/watches")
def watches(tenant: CurrentTenant, db: DB) -> list[dict[str, Any]]:
    return list_watches(db, tenant.id)


@router.post("/watches", status_code=201)
def create_watch(body: WatchIn, who: Who, tenant: CurrentTenant, db: DB) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    add = {"domain": add_domain_watch, "keyword": add_keyword_watch, "regex": add_regex_watch}[body.kind]
    return add(db, tenant.id, body.value, actor=who.actor)


@router.post("/watches/records", status_code=201)
def register_records(
    who: Who,
    tenant: CurrentTenant,
    db: DB,
    settings: AppSettings,
    body: Annotated[str, Body(media_type="application/x-ndjson", description="`leaksentinel hash` output")],
) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    text = body if isinstance(body, str) else str(body)
    for _ in parse_record_lines(text.splitlines(), "body"):
        pass  # validate everything before storing anything
    return add_records(db, tenant.id, "body", stream=io.StringIO(text), actor=who.actor, settings=settings)


@router.delete("/watches/{watch_id}")
def delete_watch(watch_id: int, who: Who, tenant: CurrentTenant, db: DB) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    return remove_watch(db, tenant.id, str(watch_id), actor=who.actor)


class SubscriptionIn(Strict):
    webhook: str | None = Field(default=None, max_length=2048)
    secret: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    slack: str | None = Field(default=None, max_length=2048)
    min_severity: str = "low"
    kinds: list[str] | None = Field(default=None, max_length=10)
    digest: str | None = Field(default=None, pattern="^(hourly|daily)$")


@router.get("/subscriptions")
def subscriptions(tenant: CurrentTenant, db: DB) -> list[dict[str, Any]]:
    return list_subscriptions(db, tenant.id)


@router.post("/subscriptions", status_code=201)
def subscribe(
    body: SubscriptionIn, who: Who, tenant: CurrentTenant, db: DB, settings: AppSettings
) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    return add_subscription(
        db,
        settings,
        tenant.id,
        webhook=body.webhook,
        secret=body.secret,
        email=body.email,
        min_severity=body.min_severity,
        slack=body.slack,
        kinds=body.kinds,
        digest=body.digest,
        actor=who.actor,
    )


@router.delete("/subscriptions/{subscription_id}")
def unsubscribe(subscription_id: int, who: Who, tenant: CurrentTenant, db: DB) -> dict[str, Any]:
    """Stop delivering to one target (recorded in the audit log)."""
    who.require("operator", "tenant_admin")
    return remove_subscription(db, tenant.id, subscription_id, actor=who.actor)


@router.get("/alerts")
def alerts(who: Who, tenant: PickedTenant, db: DB, status: str | None = None) -> list[dict[str, Any]]:
    if not who.is_tenant:
        who.require("operator", "analyst")
    return list_alerts(db, tenant.id if tenant else None, status)


@router.get("/alerts/{alert_id}")
def alert(alert: ScopedAlert, db: DB) -> dict[str, Any]:
    from core.alert_view import alert_to_dict
    from core.models import Alert

    with db.session() as sess:
        row = sess.get(Alert, alert.id)
        if row is None:
            raise NotFound(f"unknown alert: {alert.id}")
        return alert_to_dict(sess, row, with_findings=True)


@router.get("/alerts/{alert_id}/export")
def export(alert: ScopedAlert, db: DB, settings: AppSettings, format: str = "stix") -> dict[str, Any]:
    return export_alert(db, settings, str(alert.id), format, tenant_id=alert.tenant_id)


@router.get(
    "/alerts/{alert_id}/evidence",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The signed evidence zip."}},
)
def evidence(alert: ScopedAlert, who: Who, db: DB, settings: AppSettings) -> Response:
    """The alert's signed evidence package (``leaksentinel evidence verify`` checks it)."""
    from leaksentinel.evidence import build_evidence

    data = build_evidence(db, settings, alert.id, tenant_id=alert.tenant_id, actor=who.actor)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="alert-{alert.id}-evidence.zip"'},
    )


@router.post("/alerts/{alert_id}/{action}")
def triage(alert: ScopedAlert, action: str, who: Who, db: DB) -> dict[str, Any]:
    status = TRIAGE.get(action)
    if status is None:
        raise HTTPException(404, "unknown action")
    who.require("operator", "tenant_admin")
    return set_alert_status(db, str(alert.id), status, tenant_id=alert.tenant_id, actor=who.actor)


def tenant_names(db: Database) -> dict[int, str]:
    with db.session() as sess:
        return {t.id: t.name for t in sess.scalars(select(Tenant))}


def bad_input(exc: BadInput) -> HTTPException:
    return HTTPException(404 if isinstance(exc, NotFound) else 422, str(exc))
