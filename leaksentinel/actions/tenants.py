"""Tenants: the companies that register data and receive alerts."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ApiKey, AuditLog, Tenant, WatchItem
from leaksentinel.actions.naming import check_slug

__all__ = ["add_tenant", "check_domain", "check_region", "find_tenant", "list_tenants", "new_api_key"]

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


def find_tenant(sess: Session, name_or_id: str) -> Tenant:
    tenant = sess.scalar(select(Tenant).where(Tenant.name == name_or_id))
    if tenant is None and str(name_or_id).isdigit():
        tenant = sess.get(Tenant, int(name_or_id))
    if tenant is None:
        raise NotFound(f"unknown tenant: {name_or_id}")
    return tenant


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
