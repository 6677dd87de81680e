"""API keys and roles: who is calling, and what they may see.

Why these rules: keys are stored as SHA-256 digests (a stolen database yields no working key); a
tenant key is confined to its tenant (the scoping itself is leaksentinel.api.deps), and another
tenant's object answers 404 so that ids cannot be probed; operators run the fleet, analysts search
everything collected. Failed authentications are counted per client address, so keys cannot be
guessed at speed.
"""

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, HTTPException, Request
from sqlalchemy import select

from core.db import Database
from core.models import ApiKey, Tenant

__all__ = ["ROLES", "Principal", "authenticate", "authenticate_key", "client_address", "principal_from_key"]

ROLES = ("operator", "analyst", "tenant_admin", "tenant_viewer")


@dataclass(frozen=True)
class Principal:
    key_id: int
    role: str
    tenant_id: int | None
    tenant: str | None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}:{self.role}" + (f":{self.tenant}" if self.tenant else "")

    @property
    def is_tenant(self) -> bool:
        return self.role in ("tenant_admin", "tenant_viewer")

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise HTTPException(403, f"this needs one of the roles: {', '.join(roles)}")


def principal_from_key(db: Database, clear: str) -> Principal | None:
    digest = hashlib.sha256(clear.strip().encode()).hexdigest()
    with db.session() as sess:
        key = sess.scalar(select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked.is_(False)))
        if key is None:
            return None
        tenant = sess.get(Tenant, key.tenant_id) if key.tenant_id else None
        return Principal(key.id, key.role, key.tenant_id, tenant.name if tenant else None)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_auth_failures(request: Request) -> None:
    """429 while this client address has spent its allowance of failed authentications."""
    failures = getattr(request.app.state, "auth_failures", None)
    if failures is not None and failures.exhausted(f"authfail:{client_address(request)}"):
        raise HTTPException(
            429, "too many failed authentications; try again later", headers={"Retry-After": "60"}
        )


def record_auth_failure(request: Request) -> None:
    failures = getattr(request.app.state, "auth_failures", None)
    if failures is not None:
        failures.allow(f"authfail:{client_address(request)}")


def authenticate_key(request: Request, clear: str | None) -> Principal:
    """The principal of a bearer key, or 401; failures are counted per client address (then 429),
    so keys cannot be guessed at speed."""
    check_auth_failures(request)
    if not clear or not clear.strip():
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    db: Database = request.app.state.db
    who = principal_from_key(db, clear) if len(clear) <= 256 else None
    if who is None:
        record_auth_failure(request)
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = who
    limiter = request.app.state.limiter
    if not limiter.allow(f"key:{who.key_id}"):
        raise HTTPException(429, "rate limit exceeded", headers={"Retry-After": "1"})
    return who


def authenticate(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The bearer key's principal from a raw ``Authorization`` header, or 401 (see authenticate_key)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        check_auth_failures(request)
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    return authenticate_key(request, authorization[7:])
