"""Tenant-facing endpoints: tenants, watch items, subscriptions, alerts and their triage and export.

Every tenant-scoped route declares ``CurrentTenant`` / ``PickedTenant`` / ``ScopedAlert``
(leaksentinel.api.deps): the scoping rule is written once, and actions get the tenant's id.
"""

import io
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import Tenant
from leaksentinel.actions.alerts import (
    ACTIONS,
    MAX_ASSIGNEE,
    MAX_BULK,
    MAX_NOTE,
    MAX_REASON,
    InvalidTransition,
    add_note,
    alert_detail,
    assign_alert,
    bulk_triage,
    export_alert,
    list_alerts,
    triage_alert,
)
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

TRIAGE = ACTIONS


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
def alerts(
    who: Who,
    tenant: PickedTenant,
    db: DB,
    status: str | None = None,
    kind: str | None = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or ISO time")] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="YYYY-MM-DD (inclusive) or ISO time")
    ] = None,
    assignee: Annotated[str | None, Query(max_length=MAX_ASSIGNEE)] = None,
) -> list[dict[str, Any]]:
    """The inbox, oldest first: filter by status, finding kind, source, first-seen dates, assignee."""
    if not who.is_tenant:
        who.require("operator", "analyst")
    return list_alerts(
        db,
        tenant.id if tenant else None,
        status,
        kind=kind,
        source=source,
        since=since,
        until=until,
        assignee=assignee,
    )


class BulkIn(Strict):
    ids: list[int] = Field(min_length=1, max_length=MAX_BULK)
    action: str = Field(pattern="^(ack|resolve|false-positive|reopen|assign)$")
    reason: str | None = Field(default=None, max_length=MAX_REASON)
    assignee: str | None = Field(default=None, max_length=MAX_ASSIGNEE)


@router.post("/alerts/bulk")
def bulk(body: BulkIn, who: Who, tenant: PickedTenant, db: DB) -> dict[str, Any]:
    """One action on many alerts: ``changed`` ids, and ``skipped`` ones whose state does not offer it.
    Any id that is not the caller's makes the whole call a 404 (nothing changes)."""
    who.require("operator", "tenant_admin")
    scope = who.tenant_id if who.is_tenant else (tenant.id if tenant else None)
    return bulk_triage(
        db,
        list(body.ids),
        body.action,
        reason=body.reason,
        assignee=body.assignee,
        tenant_id=scope,
        actor=who.actor,
    )


@router.get("/alerts/{alert_id}")
def alert(alert: ScopedAlert, db: DB) -> dict[str, Any]:
    """The alert with its findings, and what the alert page shows: ``title``, ``severity_reason``,
    ``leaked_records`` (one row per record), ``sightings_timeline``, ``next_steps``, ``assignee``,
    ``status_reason``, the ``actions`` its state offers and the triage ``timeline`` (masked values only)."""
    return alert_detail(db, alert.id, tenant_id=alert.tenant_id)


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=MAX_NOTE)


@router.post("/alerts/{alert_id}/notes", status_code=201)
def note(alert: ScopedAlert, body: NoteIn, who: Who, db: DB) -> dict[str, Any]:
    """Add a note to the alert's timeline."""
    who.require("operator", "tenant_admin")
    add_note(db, alert.id, body.text, tenant_id=alert.tenant_id, actor=who.actor)
    return alert_detail(db, alert.id, tenant_id=alert.tenant_id)


class AssignIn(Strict):
    assignee: str | None = Field(max_length=MAX_ASSIGNEE, description="A name or email; null or empty clears")


@router.post("/alerts/{alert_id}/assign")
def assign(alert: ScopedAlert, body: AssignIn, who: Who, db: DB) -> dict[str, Any]:
    """Set or clear who owns the alert (recorded on its timeline)."""
    who.require("operator", "tenant_admin")
    return assign_alert(db, alert.id, body.assignee, tenant_id=alert.tenant_id, actor=who.actor)


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


class TriageIn(Strict):
    reason: str | None = Field(default=None, max_length=MAX_REASON)


@router.post("/alerts/{alert_id}/{action}")
def triage(
    alert: ScopedAlert, action: str, who: Who, db: DB, body: Annotated[TriageIn | None, Body()] = None
) -> dict[str, Any]:
    """ack, resolve, false-positive, reopen: 409 when the alert's state does not offer the action,
    422 when resolve or false-positive come without a ``reason``."""
    if action not in TRIAGE:
        raise HTTPException(404, "unknown action")
    who.require("operator", "tenant_admin")
    try:
        return triage_alert(
            db,
            alert.id,
            action,
            reason=body.reason if body else None,
            tenant_id=alert.tenant_id,
            actor=who.actor,
        )
    except InvalidTransition as exc:
        raise HTTPException(409, str(exc)) from None


def tenant_names(db: Database) -> dict[int, str]:
    with db.session() as sess:
        return {t.id: t.name for t in sess.scalars(select(Tenant))}


def bad_input(exc: BadInput) -> HTTPException:
    return HTTPException(404 if isinstance(exc, NotFound) else 422, str(exc))
