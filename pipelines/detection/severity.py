"""Severity of a finding and of an alert, from what leaked.

Why: a security team triages by severity; it must rise with identifying fields, with the number of
records, with passwords beside emails and with the most sensitive identifiers.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.models import SEVERITIES

__all__ = ["alert_severity", "at_least", "record_severity"]

_SENSITIVE = frozenset({"card", "iban", "cn_id", "ssn", "api_key"})
_IDENTIFYING = frozenset(
    {"email", "phone", "card", "iban", "cn_id", "ssn", "username", "api_key", "passport"}
)


def rank(level: str) -> int:
    return SEVERITIES.index(level) if level in SEVERITIES else 0


def at_least(level: str, minimum: str) -> bool:
    return rank(level) >= rank(minimum)


def record_severity(fields: Iterable[str], *, with_password: bool = False) -> str:
    found = set(fields)
    if found & _SENSITIVE:
        return "high"
    if found & _IDENTIFYING and (with_password or len(found) >= 3):
        return "high"
    if found & _IDENTIFYING:
        return "medium"
    return "low"


def alert_severity(finding_severities: Iterable[str], records: int, kinds: Iterable[str]) -> str:
    levels = [rank(s) for s in finding_severities] or [0]
    level = max(levels)
    if records >= 100 or "secret" in set(kinds):
        level = max(level, rank("high"))
    if records >= 1000 or (records >= 100 and level >= rank("high")):
        level = rank("critical")
    elif records >= 10:
        level = max(level, rank("medium"))
    return SEVERITIES[level]
