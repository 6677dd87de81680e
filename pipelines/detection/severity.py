"""Severity of one finding, from what leaked (an alert's severity is core.policy.tenant_severity).

Why: a security team triages by severity; it must rise with identifying fields, with the number of
records, with passwords beside emails and with the most sensitive identifiers.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.canonical import IDENTIFYING

__all__ = ["record_severity"]

_SENSITIVE = frozenset({"card", "iban", "cn_id", "ssn", "api_key"})


def record_severity(fields: Iterable[str], *, with_password: bool = False) -> str:
    found = set(fields)
    if found & _SENSITIVE:
        return "high"
    if found & IDENTIFYING and (with_password or len(found) >= 3):
        return "high"
    if found & IDENTIFYING:
        return "medium"
    return "low"
