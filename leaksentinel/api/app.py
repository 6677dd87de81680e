"""The HTTP API (OpenAPI at /openapi.json) and the console's front page.

Why bearer keys stored hashed: a stolen database must not hand out working API keys; a tenant key
sees only its own tenant's objects, and another tenant's object answers 404, never 403.
"""

# No `from __future__ import annotations` here: FastAPI resolves the dependency annotations of the
# closures below at runtime.
import hashlib
import html
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from core.db import open_database
from core.errors import BadInput, NotFound
from core.models import ApiKey, Tenant
from core.settings import Settings
from leaksentinel.actions.alerts import list_alerts, set_alert_status

__all__ = ["Principal", "create_app"]

_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"


class Principal:
    def __init__(self, role: str, tenant_id: int | None, tenant: str | None) -> None:
        self.role = role
        self.tenant_id = tenant_id
        self.tenant = tenant


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="leaksentinel", version="0.1.0")
    db = open_database(settings)

    def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
        digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
        with db.session() as sess:
            key = sess.scalar(select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked.is_(False)))
            if key is None:
                raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
            tenant = sess.get(Tenant, key.tenant_id) if key.tenant_id else None
            return Principal(key.role, key.tenant_id, tenant.name if tenant else None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/alerts")
    def alerts(
        who: Annotated[Principal, Depends(principal)], status: str | None = None
    ) -> list[dict[str, Any]]:
        try:
            return list_alerts(db, str(who.tenant_id) if who.tenant_id else None, status)
        except BadInput as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post("/api/v1/alerts/{alert_id}/{action}")
    def triage(alert_id: int, action: str, who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        status = {"ack": "acked", "resolve": "resolved", "false-positive": "false_positive"}.get(action)
        if status is None:
            raise HTTPException(404, "unknown action")
        try:
            return set_alert_status(
                db, str(alert_id), status, tenant_id=who.tenant_id, actor=f"api:{who.role}"
            )
        except NotFound:
            raise HTTPException(404, "unknown alert") from None

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>leaksentinel</title></head><body>"
            "<h1>leaksentinel</h1><p>The service is running. API: <a href='/docs'>/docs</a>, "
            f"<a href='/openapi.json'>/openapi.json</a>. Home: {html.escape(str(settings.home))}</p></body></html>"
        )
        return HTMLResponse(body, headers={"Content-Security-Policy": _CSP})

    return app
