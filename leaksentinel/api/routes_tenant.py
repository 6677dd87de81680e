"""Tenant-facing endpoints: tenants, watch items, subscriptions, alerts and their triage and export."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from core.alert_view import alert_to_dict
from core.db import Database
from core.errors import BadInput, NotFound
from core.models import Alert, Tenant
from core.settings import Settings
from leaksentinel.actions.alerts import list_alerts, set_alert_status
from leaksentinel.actions.subscriptions import add_subscription, list_subscriptions
from leaksentinel.actions.tenants import add_tenant, list_tenants
from leaksentinel.actions.watches import (
    add_domain_watch,
    add_keyword_watch,
    add_records,
    add_regex_watch,
    list_watches,
    remove_watch,
)
from leaksentinel.api.auth import Principal, authenticate

router = APIRouter(prefix="/api/v1")
Who = Annotated[Principal, Depends(authenticate)]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _tenant_ref(who: Principal, tenant: str | None, db: Database) -> str:
    """The tenant a call acts on, as a name: tenant keys get their own, others must name one."""
    if who.is_tenant:
        if tenant is not None and tenant not in (who.tenant, str(who.tenant_id)):
            raise HTTPException(404, "not found")
        return str(who.tenant_id)
    if tenant is None:
        raise HTTPException(422, "name the tenant (?tenant=NAME)")
    return tenant


class TenantIn(BaseModel):
    name: str = Field(max_length=64)
    domains: list[str] = Field(default_factory=list, max_length=100)
    regions: list[str] = Field(default_factory=list, max_length=50)


@router.get("/me")
def me(who: Who) -> dict[str, Any]:
    return {"role": who.role, "tenant": who.tenant}


@router.get("/tenants")
def tenants(who: Who, request: Request) -> list[dict[str, Any]]:
    rows = list_tenants(_db(request))
    if who.is_tenant:
        rows = [t for t in rows if t["id"] == who.tenant_id]
    return rows


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, who: Who, request: Request) -> dict[str, Any]:
    who.require("operator")
    return add_tenant(_db(request), body.name, body.domains, body.regions, actor=who.actor)


class WatchIn(BaseModel):
    kind: str = Field(pattern="^(domain|keyword|regex)$")
    value: str = Field(max_length=1024)


@router.get("/watches")
def watches(who: Who, request: Request, tenant: str | None = None) -> list[dict[str, Any]]:
    return list_watches(_db(request), _tenant_ref(who, tenant, _db(request)))


@router.post("/watches", status_code=201)
def create_watch(body: WatchIn, who: Who, request: Request, tenant: str | None = None) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    ref = _tenant_ref(who, tenant, _db(request))
    add = {"domain": add_domain_watch, "keyword": add_keyword_watch, "regex": add_regex_watch}[body.kind]
    return add(_db(request), ref, body.value, actor=who.actor)


@router.post("/watches/records", status_code=201)
def register_records(
    who: Who,
    request: Request,
    body: Annotated[str, Body(media_type="application/x-ndjson", description="`leaksentinel hash` output")],
    tenant: str | None = None,
) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    import io

    ref = _tenant_ref(who, tenant, _db(request))
    text = body if isinstance(body, str) else str(body)
    from leaksentinel.actions.watches import parse_record_lines

    for _ in parse_record_lines(text.splitlines(), "body"):
        pass  # validate everything before storing anything
    return add_records(
        _db(request), ref, "body", stream=io.StringIO(text), actor=who.actor, settings=_settings(request)
    )


@router.delete("/watches/{watch_id}")
def delete_watch(watch_id: int, who: Who, request: Request, tenant: str | None = None) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    try:
        return remove_watch(
            _db(request), _tenant_ref(who, tenant, _db(request)), str(watch_id), actor=who.actor
        )
    except NotFound:
        raise HTTPException(404, "not found") from None


class SubscriptionIn(BaseModel):
    webhook: str | None = Field(default=None, max_length=2048)
    secret: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    slack: str | None = Field(default=None, max_length=2048)
    min_severity: str = "low"
    kinds: list[str] | None = Field(default=None, max_length=10)
    digest: str | None = Field(default=None, pattern="^(hourly|daily)$")


@router.get("/subscriptions")
def subscriptions(who: Who, request: Request, tenant: str | None = None) -> list[dict[str, Any]]:
    return list_subscriptions(_db(request), _tenant_ref(who, tenant, _db(request)))


@router.post("/subscriptions", status_code=201)
def subscribe(body: SubscriptionIn, who: Who, request: Request, tenant: str | None = None) -> dict[str, Any]:
    who.require("operator", "tenant_admin")
    return add_subscription(
        _db(request),
        _settings(request),
        _tenant_ref(who, tenant, _db(request)),
        webhook=body.webhook,
        secret=body.secret,
        email=body.email,
        min_severity=body.min_severity,
        actor=who.actor,
    )


@router.get("/alerts")
def alerts(
    who: Who, request: Request, tenant: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    if who.is_tenant:
        ref: str | None = _tenant_ref(who, tenant, _db(request))
    else:
        who.require("operator", "analyst")
        ref = tenant
    return list_alerts(_db(request), ref, status)


def _alert_for(who: Principal, alert_id: int, db: Database) -> dict[str, Any]:
    with db.session() as sess:
        alert = sess.get(Alert, alert_id)
        if alert is None or (who.is_tenant and alert.tenant_id != who.tenant_id):
            raise HTTPException(404, "not found")
        if not who.is_tenant:
            who.require("operator", "analyst")
        return alert_to_dict(sess, alert, with_findings=True)


@router.get("/alerts/{alert_id}")
def alert(alert_id: int, who: Who, request: Request) -> dict[str, Any]:
    return _alert_for(who, alert_id, _db(request))


@router.get("/alerts/{alert_id}/export")
def export(alert_id: int, who: Who, request: Request, format: str = "stix") -> dict[str, Any]:
    _alert_for(who, alert_id, _db(request))  # 404 for another tenant's alert
    from leaksentinel.actions.alerts import export_alert

    return export_alert(
        _db(request),
        _settings(request),
        str(alert_id),
        format,
        tenant_id=who.tenant_id if who.is_tenant else None,
    )


@router.post("/alerts/{alert_id}/{action}")
def triage(alert_id: int, action: str, who: Who, request: Request) -> dict[str, Any]:
    status = {"ack": "acked", "resolve": "resolved", "false-positive": "false_positive", "reopen": "new"}.get(
        action
    )
    if status is None:
        raise HTTPException(404, "unknown action")
    who.require("operator", "tenant_admin")
    try:
        return set_alert_status(
            _db(request),
            str(alert_id),
            status,
            tenant_id=who.tenant_id if who.is_tenant else None,
            actor=who.actor,
        )
    except NotFound:
        raise HTTPException(404, "not found") from None


def tenant_names(db: Database) -> dict[int, str]:
    with db.session() as sess:
        return {t.id: t.name for t in sess.scalars(select(Tenant))}


def bad_input(exc: BadInput) -> HTTPException:
    return HTTPException(404 if isinstance(exc, NotFound) else 422, str(exc))
