"""Dependencies every route declares: who is calling, and which tenant (or alert) it may act on.

Why one place: tenant scoping used to be written four times (two in the API, two in the console) and
carried tenant names that were looked up again, so a tenant *named* ``1`` could stand for the tenant
whose *id* is 1. Here the rule is written once, as FastAPI dependencies in the manner of
full-stack-fastapi-template's ``CurrentUser``: routes say ``tenant: CurrentTenant`` and get a
:class:`TenantRef` holding the id, which is all the actions below them take.

The API authenticates with a bearer key; console pages (everything outside ``/api/``) with the signed
session cookie the console installs as ``app.state.session_principal``. A cookie never authenticates an
API call (the API has no CSRF tokens), and a bearer header never opens a console page.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.db import Database
from core.errors import NotFound
from core.settings import Settings
from leaksentinel.actions.alerts import alert_in_scope
from leaksentinel.actions.tenants import TenantRef, resolve_tenant
from leaksentinel.api.auth import Principal, authenticate_key

__all__ = [
    "DB",
    "AlertRef",
    "AppSettings",
    "CurrentPrincipal",
    "CurrentTenant",
    "PickedTenant",
    "ScopedAlert",
    "TenantRef",
    "bearer",
    "current_principal",
]

#: Adds the Bearer security scheme to the OpenAPI document (so /docs can try calls with a key).
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`leaksentinel key add`, or the one `tenant add` prints): `Bearer lsk_...`",
)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DB = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller: a bearer key on ``/api/``, the console session elsewhere (computed once per request)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    session_principal: Callable[[Request], Principal] | None = getattr(
        request.app.state, "session_principal", None
    )
    if request.url.path.startswith("/api/") or session_principal is None:
        who = authenticate_key(request, credentials.credentials if credentials else None)
    else:
        who = session_principal(request)
    request.state.principal = who
    return who


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def picked_tenant(who: CurrentPrincipal, db: DB, tenant: str | None = None) -> TenantRef | None:
    """THE tenant-scoping rule. A tenant key acts on its own tenant, whatever it asks: naming another
    tenant (by name or id) is a 404, as for a missing object. Operators and analysts pick one with
    ``?tenant=NAME`` (or its id), resolved here once; None when they picked none."""
    if who.is_tenant:
        assert who.tenant_id is not None and who.tenant is not None
        if tenant and tenant not in (who.tenant, str(who.tenant_id)):
            raise NotFound(f"unknown tenant: {tenant}")
        return TenantRef(who.tenant_id, who.tenant)
    if not tenant:
        return None
    return resolve_tenant(db, tenant)


PickedTenant = Annotated[TenantRef | None, Depends(picked_tenant)]


def current_tenant(picked: PickedTenant) -> TenantRef:
    """The tenant a tenant-scoped call acts on; operators must name one."""
    if picked is None:
        raise HTTPException(422, "name the tenant (?tenant=NAME or id)")
    return picked


CurrentTenant = Annotated[TenantRef, Depends(current_tenant)]


@dataclass(frozen=True)
class AlertRef:
    """An alert the caller may see, and the tenant scope actions on it must keep (None: any tenant)."""

    id: int
    tenant_id: int | None


def scoped_alert(alert_id: str, who: CurrentPrincipal, db: DB) -> AlertRef:
    """The alert of the path, when it is the caller's: another tenant's alert is as unknown as a missing one."""
    if not alert_id.isascii() or not alert_id.isdigit() or len(alert_id) > 18:
        raise NotFound(f"unknown alert: {alert_id[:20]}")
    scope = who.tenant_id if who.is_tenant else None
    return AlertRef(alert_in_scope(db, int(alert_id), scope), scope)


ScopedAlert = Annotated[AlertRef, Depends(scoped_alert)]
