"""Console pages of security teams: alerts and their triage, watch items, subscriptions.

Every page is scoped by the API's own dependencies (PickedTenant, ScopedAlert): one rule for both.
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ALERT_STATUSES, SEVERITIES
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


#: The inbox's bulk form sends the page back here; anything else (another site) is refused.
_BACK = re.compile(r"/alerts(\?[\w=&%.+\-:]*)?\Z")


def _back(form: dict[str, list[str]]) -> str:
    back = form_value(form, "back")
    return back if _BACK.match(back) else "/alerts"


@router.get("/alerts")
def alerts_page(
    request: Request,
    scope: PickedTenant,
    status: str = "",
    severity: str = "",
    kind: str = "",
    source: str = "",
    since: str = "",
    until: str = "",
) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    if status and status not in ALERT_STATUSES:
        raise PageError(400, f"Unknown status {status!r}.")
    if severity and severity not in SEVERITIES:
        raise PageError(400, f"Unknown severity {severity!r}.")
    console = console_of(request)
    from leaksentinel.actions.alerts import ALERT_KINDS, alert_sources, list_alerts

    try:
        rows = list_alerts(
            console.db,
            scope.id if scope else None,
            status or None,
            kind=kind or None,
            source=source[:64] or None,
            since=since[:40] or None,
            until=until[:40] or None,
        )
    except NotFound:
        raise
    except BadInput as exc:
        raise PageError(400, f"{str(exc)[:200]}.") from None
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
        kinds=ALERT_KINDS,
        sources=alert_sources(console.db, scope.id if scope else None),
        status=status,
        severity=severity,
        kind=kind,
        source=source,
        since=since,
        until=until,
        back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        can_triage=who.role in ("tenant_admin", "operator"),
        tenant=picked_name(who, scope),
        tenants=[] if who.is_tenant else tenant_names(console.db),
    )


@router.post("/alerts/bulk")
async def bulk_triage(request: Request, scope: PickedTenant) -> Response:
    """The inbox's bulk action: every ticked alert must be the caller's (else a 404 page, nothing changes)."""
    who, form = await posted(request, "tenant_admin", "operator")
    back = _back(form)
    action = form_value(form, "action")
    ids = [v.strip() for v in form.get("ids", []) if v.strip()]
    if not ids:
        return redirect(request, back, "Tick at least one alert.")
    from leaksentinel.actions.alerts import bulk_triage as bulk

    scope_id = who.tenant_id if who.is_tenant else (scope.id if scope else None)
    try:
        out = await run_in_threadpool(
            lambda: bulk(
                console_of(request).db,
                ids,
                action,
                reason=form_value(form, "reason") or None,
                assignee=form_value(form, "assignee") or None,
                tenant_id=scope_id,
                actor=who.actor,
            )
        )
    except NotFound:
        raise PageError(404, "Not found.") from None
    except BadInput as exc:
        return redirect(request, back, f"Nothing changed: {exc}.")
    message = f"{len(out['changed'])} alert{'' if len(out['changed']) == 1 else 's'} changed ({action})."
    if out["skipped"]:
        skipped = ", ".join(f"{s['id']} ({s['status'].replace('_', ' ')})" for s in out["skipped"][:20])
        message += f" Skipped, their state does not allow it: {skipped}."
    return redirect(request, back, message)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert: ScopedAlert) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    from leaksentinel.actions.alerts import alert_detail, alert_posting

    db = console_of(request).db
    story = alert_detail(db, alert.id, tenant_id=alert.tenant_id, with_excerpt=True)
    posting = alert_posting(db, alert.id, tenant_id=alert.tenant_id)
    evidence = evidence_view(posting) if posting is not None else None
    if evidence is not None:
        evidence["source"] = story["source"] or ""
    labels = {
        "ack": "Acknowledge",
        "resolve": "Resolve",
        "false-positive": "False positive",
        "reopen": "Reopen",
    }
    return render(
        request,
        "alert.html",
        who=who,
        session=session,
        alert=story,
        evidence=evidence,
        can_triage=who.role in ("tenant_admin", "operator"),
        offered=[(a, labels[a]) for a in story["actions"]],
    )


@router.get("/alerts/{alert_id}/evidence")
def evidence_zip(request: Request, alert: ScopedAlert) -> Response:
    """The alert's signed evidence zip, from the page (as ``alerts evidence ID`` and the API give it)."""
    who, _ = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    from leaksentinel.evidence import build_evidence

    console = console_of(request)
    data = build_evidence(console.db, console.settings, alert.id, tenant_id=alert.tenant_id, actor=who.actor)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="alert-{alert.id}-evidence.zip"',
            "Cache-Control": "no-store",
        },
    )


def _refused(exc: BadInput) -> str:
    return f"Nothing changed: {str(exc)[:300]}."


@router.post("/alerts/{alert_id}/notes")
async def add_note(request: Request, alert: ScopedAlert) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    from leaksentinel.actions.alerts import add_note as note

    back = f"/alerts/{alert.id}"
    try:
        await run_in_threadpool(
            lambda: note(
                console_of(request).db,
                alert.id,
                form_value(form, "text"),
                tenant_id=alert.tenant_id,
                actor=who.actor,
            )
        )
    except NotFound:
        raise
    except BadInput as exc:
        return redirect(request, back, _refused(exc))
    return redirect(request, back + "#history", "Note added.")


@router.post("/alerts/{alert_id}/assign")
async def assign(request: Request, alert: ScopedAlert) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    from leaksentinel.actions.alerts import assign_alert

    back = f"/alerts/{alert.id}"
    assignee = "" if form_value(form, "clear") == "yes" else form_value(form, "assignee")
    try:
        out = await run_in_threadpool(
            lambda: assign_alert(
                console_of(request).db, alert.id, assignee or None, tenant_id=alert.tenant_id, actor=who.actor
            )
        )
    except NotFound:
        raise
    except BadInput as exc:
        return redirect(request, back, _refused(exc))
    return redirect(
        request,
        back,
        f"Assigned to {out['assignee']}." if out["assignee"] else f"Alert {alert.id} is unassigned.",
    )


@router.post("/alerts/{alert_id}/{action}")
async def triage(request: Request, alert: ScopedAlert, action: str) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    status = TRIAGE.get(action)
    if status is None:
        raise PageError(404, "Unknown action.")
    from leaksentinel.actions.alerts import triage_alert

    back = f"/alerts/{alert.id}"
    try:
        await run_in_threadpool(
            lambda: triage_alert(
                console_of(request).db,
                alert.id,
                action,
                reason=form_value(form, "reason") or None,
                tenant_id=alert.tenant_id,
                actor=who.actor,
            )
        )
    except NotFound:
        raise
    except BadInput as exc:
        return redirect(request, back, _refused(exc))
    return redirect(request, back, f"Alert {alert.id} is now {status.replace('_', ' ')}.")


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
