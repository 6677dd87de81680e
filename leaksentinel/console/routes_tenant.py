"""Console pages of security teams: alerts and their triage, watch items, subscriptions.

Every page is scoped by the API's own dependencies (PickedTenant, ScopedAlert): one rule for both.
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from core.alert_view import alert_to_dict
from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ALERT_STATUSES, SEVERITIES, Alert, Sighting, Source
from leaksentinel.api.auth import Principal
from leaksentinel.api.deps import PickedTenant, ScopedAlert, TenantRef
from leaksentinel.console.pages import (
    MAX_LISTED,
    TRIAGE,
    PageError,
    confirm_page,
    confirmed,
    console_of,
    current,
    evidence_view,
    form_value,
    picked_name,
    posted,
    redirect,
    render,
    require_scope,
    tenant_names,
    tenant_query,
)
from leaksentinel.console.session import Session

router = APIRouter(include_in_schema=False)


def _alert_detail(db: Database, alert_id: int) -> dict[str, Any]:
    """An alert's page data; the caller's scope was checked by the ScopedAlert dependency."""
    with db.session() as sess:
        alert = sess.get(Alert, alert_id)
        if alert is None:
            raise PageError(404, "No such alert.")
        view = alert_to_dict(sess, alert, with_findings=True)
        sightings: dict[str, dict[str, Any]] = {}
        for s in sess.scalars(
            select(Sighting).where(Sighting.alert_id == alert.id).order_by(Sighting.seen_at)
        ):
            row = sightings.setdefault(
                s.url, {"url": s.url, "first": s.seen_at, "last": s.seen_at, "times": 0}
            )
            row["last"] = s.seen_at
            row["times"] += 1
        posting = alert.posting
        source = sess.get(Source, posting.source_id) if posting is not None else None
        evidence = evidence_view(posting) if posting is not None else None
        if evidence is not None:
            evidence["source"] = source.name if source else ""
        return {"alert": view, "sightings": list(sightings.values()), "evidence": evidence}


@router.get("/alerts")
def alerts_page(request: Request, scope: PickedTenant, status: str = "", severity: str = "") -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    if status and status not in ALERT_STATUSES:
        raise PageError(400, f"Unknown status {status!r}.")
    if severity and severity not in SEVERITIES:
        raise PageError(400, f"Unknown severity {severity!r}.")
    console = console_of(request)
    from leaksentinel.actions.alerts import list_alerts

    rows = list_alerts(console.db, scope.id if scope else None, status or None)
    if severity:
        rows = [r for r in rows if r["severity"] == severity]
    rows.reverse()  # newest first
    return render(
        request,
        "alerts.html",
        who=who,
        session=session,
        alerts=rows[:MAX_LISTED],
        more=max(0, len(rows) - MAX_LISTED),
        statuses=ALERT_STATUSES,
        severities=SEVERITIES,
        status=status,
        severity=severity,
        tenant=picked_name(who, scope),
        tenants=[] if who.is_tenant else tenant_names(console.db),
    )


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert: ScopedAlert) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    detail = _alert_detail(console_of(request).db, alert.id)
    return render(
        request,
        "alert.html",
        who=who,
        session=session,
        can_triage=who.role in ("tenant_admin", "operator"),
        **detail,
    )


@router.post("/alerts/{alert_id}/{action}")
async def triage(request: Request, alert: ScopedAlert, action: str) -> Response:
    who, _ = await posted(request, "tenant_admin", "operator")
    status = TRIAGE.get(action)
    if status is None:
        raise PageError(404, "Unknown action.")
    from leaksentinel.actions.alerts import set_alert_status

    await run_in_threadpool(
        lambda: set_alert_status(
            console_of(request).db, str(alert.id), status, tenant_id=alert.tenant_id, actor=who.actor
        )
    )
    return redirect(request, f"/alerts/{alert.id}", f"Alert {alert.id} is now {status.replace('_', ' ')}.")


@router.get("/watches")
def watches_page(request: Request, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator")
    console = console_of(request)
    from leaksentinel.actions.watches import list_watches

    rows = list_watches(console.db, scope.id) if scope else []
    return render(
        request,
        "watches.html",
        who=who,
        session=session,
        watches=rows,
        tenant=picked_name(who, scope),
        tq=tenant_query(who, scope),
        picked=scope is not None,
        can_edit=who.role in ("tenant_admin", "operator"),
        tenants=[] if who.is_tenant else tenant_names(console.db),
    )


@router.post("/watches")
async def add_watch(request: Request, scope: PickedTenant) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    tenant = require_scope(scope)
    from leaksentinel.actions.watches import add_domain_watch, add_keyword_watch, add_regex_watch

    adders: dict[str, Callable[..., dict[str, Any]]] = {
        "domain": add_domain_watch,
        "keyword": add_keyword_watch,
        "regex": add_regex_watch,
    }
    kind, value = form_value(form, "kind"), form_value(form, "value")
    add = adders.get(kind)
    back = "/watches" + tenant_query(who, scope)
    if add is None or not value or len(value) > 1024:
        return redirect(
            request, back, "Give a kind (domain, keyword or regex) and a value of up to 1024 characters."
        )
    try:
        await run_in_threadpool(lambda: add(console_of(request).db, tenant.id, value, actor=who.actor))
    except NotFound:
        raise PageError(404, "No such tenant.") from None
    except BadInput as exc:
        return redirect(request, back, f"Not added: {exc}")
    return redirect(request, back, f"Watching the {kind} {value}.")


def _watch_of(db: Database, tenant: TenantRef, watch_id: str) -> dict[str, Any]:
    from leaksentinel.actions.watches import list_watches

    for row in list_watches(db, tenant.id):
        if str(row["id"]) == watch_id:
            return row
    raise PageError(404, "No such watch.")


@router.get("/watches/{watch_id}/remove")
def confirm_remove_watch(request: Request, watch_id: str, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "operator")
    tenant = require_scope(scope)
    watch = _watch_of(console_of(request).db, tenant, watch_id)
    tq = tenant_query(who, scope)
    records = watch["kind"] == "records"
    return confirm_page(
        request,
        who,
        session,
        title=f"Remove watch {watch['id']}?",
        what=(
            f"{watch.get('records', 0)} registered records ({watch.get('hashes', 0)} hashes) of {tenant.name}"
            if records
            else f"The {watch['kind']} watch {watch.get('name') or watch['value']} of {tenant.name}"
        ),
        warning=(
            "The hashes are deleted here and cannot be recovered: registering them again means hashing "
            "the records again on the company's machine."
            if records
            else "Postings will no longer be matched against it."
        ),
        action=f"/watches/{watch['id']}/remove{tq}",
        back=f"/watches{tq}",
        button="Remove watch",
    )


@router.post("/watches/{watch_id}/remove")
async def remove_watch(request: Request, watch_id: int, scope: PickedTenant) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    tenant = require_scope(scope)
    back = "/watches" + tenant_query(who, scope)
    if not confirmed(form):
        return redirect(request, back, f"Watch {watch_id} was not removed: tick the confirmation box.")
    from leaksentinel.actions.watches import remove_watch as remove

    try:
        await run_in_threadpool(
            lambda: remove(console_of(request).db, tenant.id, str(watch_id), actor=who.actor)
        )
    except NotFound:
        raise PageError(404, "No such watch.") from None
    return redirect(request, back, f"Watch {watch_id} removed.")


@router.get("/subscriptions")
def subscriptions_page(request: Request, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator")
    return _subscriptions(request, who, session, scope)


def _subscriptions(
    request: Request,
    who: Principal,
    session: Session,
    scope: TenantRef | None,
    created: dict[str, Any] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    console = console_of(request)
    from leaksentinel.actions.subscriptions import list_subscriptions

    rows = list_subscriptions(console.db, scope.id) if scope else []
    return render(
        request,
        "subscriptions.html",
        who=who,
        session=session,
        subscriptions=rows,
        tenant=picked_name(who, scope),
        tq=tenant_query(who, scope),
        picked=scope is not None,
        created=created,
        error=error,
        severities=SEVERITIES,
        can_edit=who.role in ("tenant_admin", "operator"),
        tenants=[] if who.is_tenant else tenant_names(console.db),
    )


@router.post("/subscriptions")
async def subscribe(request: Request, scope: PickedTenant) -> Response:
    """Shown directly (no redirect): a webhook's signing secret appears once, on this response only."""
    who, form = await posted(request, "tenant_admin", "operator")
    session: Session = request.state.session
    tenant = require_scope(scope)
    channel, target = form_value(form, "channel"), form_value(form, "target")
    if channel not in ("webhook", "email", "slack") or not target or len(target) > 2048:
        return _subscriptions(request, who, session, scope, error="Give a channel and a target.")
    from leaksentinel.actions.subscriptions import add_subscription

    console = console_of(request)
    kinds = [k.strip() for k in form_value(form, "kinds").split(",") if k.strip()][:10] or None
    try:
        created = await run_in_threadpool(
            lambda: add_subscription(
                console.db,
                console.settings,
                tenant.id,
                webhook=target if channel == "webhook" else None,
                email=target if channel == "email" else None,
                slack=target if channel == "slack" else None,
                secret=form_value(form, "secret")[:256] or None,
                min_severity=form_value(form, "min_severity", "low") or "low",
                kinds=kinds,
                digest=form_value(form, "digest") or None,
                actor=who.actor,
            )
        )
    except BadInput as exc:
        return _subscriptions(request, who, session, scope, error=f"Not added: {exc}")
    return _subscriptions(request, who, session, scope, created=created)


def _subscription_of(db: Database, tenant: TenantRef, sub_id: str) -> dict[str, Any]:
    from leaksentinel.actions.subscriptions import list_subscriptions

    for row in list_subscriptions(db, tenant.id):
        if str(row["id"]) == sub_id:
            return row
    raise PageError(404, "No such subscription.")


@router.get("/subscriptions/{sub_id}/remove")
def confirm_unsubscribe(request: Request, sub_id: str, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "operator")
    tenant = require_scope(scope)
    sub = _subscription_of(console_of(request).db, tenant, sub_id)
    tq = tenant_query(who, scope)
    return confirm_page(
        request,
        who,
        session,
        title=f"Remove subscription {sub['id']}?",
        what=f"Alerts of {tenant.name} delivered by {sub['channel']} to {sub['target']}",
        warning="Nothing more is delivered there, and its pending deliveries are dropped.",
        action=f"/subscriptions/{sub['id']}/remove{tq}",
        back=f"/subscriptions{tq}",
        button="Remove subscription",
    )


@router.post("/subscriptions/{sub_id}/remove")
async def unsubscribe(request: Request, sub_id: int, scope: PickedTenant) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    tenant = require_scope(scope)
    back = "/subscriptions" + tenant_query(who, scope)
    if not confirmed(form):
        return redirect(request, back, f"Subscription {sub_id} was not removed: tick the confirmation box.")
    from leaksentinel.actions.subscriptions import remove_subscription

    try:
        await run_in_threadpool(
            lambda: remove_subscription(console_of(request).db, tenant.id, sub_id, actor=who.actor)
        )
    except NotFound:
        raise PageError(404, "No such subscription.") from None
    return redirect(request, back, f"Subscription {sub_id} removed.")
