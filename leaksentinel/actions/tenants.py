"""Tenants: the companies that register data and receive alerts."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ApiKey, AuditLog, Tenant, WatchItem
from leaksentinel.actions.naming import as_row_id, check_slug

__all__ = [
    "TenantRef",
    "add_tenant",
    "check_domain",
    "check_region",
    "find_tenant",
    "list_tenants",
    "new_api_key",
    "resolve_tenant",
    "tenant_by_id",
]

_DOMAIN_LABEL = __import__("re").compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_region(region: str) -> str:
    code = (region or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise BadInput(f"unknown region {region!r}: use a two-letter country code such as CN, US, GB, DE")
    return code


def check_domain(domain: str) -> str:
    value = (domain or "").strip().lower().rstrip(".")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadInput(f"not a domain name: {domain!r}") from None
    labels = value.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise BadInput(f"not a domain name: {domain!r}")
    return value


def new_api_key() -> tuple[str, str, str]:
    """A new key: (clear key shown once, prefix, SHA-256 stored)."""
    clear = "lsk_" + secrets.token_urlsafe(32)
    return clear, clear[:12], hashlib.sha256(clear.encode()).hexdigest()


@dataclass(frozen=True)
class TenantRef:
    """A tenant as scoped code carries it: its id (what queries use) and its name (what people read)."""

    id: int
    name: str


def tenant_by_id(sess: Session, tenant_id: int) -> Tenant:
    """The tenant with this id. Scoped code passes ids, so a name can never stand for another tenant.

    A ``str`` is still taken from older callers (the demo, benchmarks) as a *name* only, never as an id.
    """
    if isinstance(tenant_id, str):
        tenant = sess.scalar(select(Tenant).where(Tenant.name == tenant_id))
    elif isinstance(tenant_id, bool) or not isinstance(tenant_id, int):
        raise TypeError(f"tenant id must be an int, got {type(tenant_id).__name__}")
    else:
        tenant = sess.get(Tenant, tenant_id) if 0 < tenant_id < 2**63 else None
    if tenant is None:
        raise NotFound(f"unknown tenant: {tenant_id}")
    return tenant


def find_tenant(sess: Session, name_or_id: str) -> Tenant:
    """A tenant as a person names it (the CLI's edge, an operator's ``?tenant=``): digits are an id.

    Names may not be all digits (naming.py), so ``1`` can only mean the tenant whose id is 1. A name made
    of digits stored before that rule is still found, but only when no tenant has that id.
    """
    text = str(name_or_id)
    if "\x00" in text or len(text) > 256:  # no stored name holds one (and PostgreSQL refuses NUL in text)
        raise NotFound(f"unknown tenant: {text[:64]!r}")
    tenant: Tenant | None = None
    row_id = as_row_id(text)
    if row_id is not None:
        tenant = sess.get(Tenant, row_id)
    if tenant is None:
        tenant = sess.scalar(select(Tenant).where(Tenant.name == text))
    if tenant is None:
        raise NotFound(f"unknown tenant: {name_or_id}")
    return tenant


def resolve_tenant(db: Database, name_or_id: str) -> TenantRef:
    """Resolve a name or id once, at the edge (CLI, operator query); everything after uses the id."""
    with db.session() as sess:
        tenant = find_tenant(sess, name_or_id)
        return TenantRef(tenant.id, tenant.name)


def add_tenant(
    db: Database, name: str, domains: list[str], regions: list[str], actor: str = "cli"
) -> dict[str, Any]:
    check_slug(name, "tenant")
    clean_domains = [check_domain(d) for d in domains]
    clean_regions = sorted({check_region(r) for r in regions})
    with db.session() as sess:
        if sess.scalar(select(Tenant).where(Tenant.name == name)) is not None:
            raise BadInput(f"tenant {name!r} already exists")
        tenant = Tenant(name=name, regions=clean_regions, settings={})
        sess.add(tenant)
        sess.flush()
        for domain in dict.fromkeys(clean_domains):
            sess.add(WatchItem(tenant_id=tenant.id, kind="domain", value=domain, data={}))
        clear, prefix, digest = new_api_key()
        sess.add(ApiKey(tenant_id=tenant.id, role="tenant_admin", prefix=prefix, key_hash=digest))
        sess.add(
            AuditLog(
                actor=actor,
                action="tenant.add",
                object_type="tenant",
                object_id=str(tenant.id),
                detail={"name": name, "domains": clean_domains, "regions": clean_regions},
            )
        )
        return {
            "id": tenant.id,
            "name": name,
            "domains": list(dict.fromkeys(clean_domains)),
            "regions": clean_regions,
            "api_key": clear,
        }


def list_tenants(db: Database) -> list[dict[str, Any]]:
    with db.session() as sess:
        out = []
        for tenant in sess.scalars(select(Tenant).order_by(Tenant.id)):
            domains = sess.scalars(
                select(WatchItem.value).where(WatchItem.tenant_id == tenant.id, WatchItem.kind == "domain")
            ).all()
            out.append(
                {
                    "id": tenant.id,
                    "name": tenant.name,
                    "domains": list(domains),
                    "regions": list(tenant.regions or []),
                    "created_at": tenant.created_at.isoformat(),
                }
            )
        return out
