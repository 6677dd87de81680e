"""The alert policy: who hears about an alert, how loud it is, and what a false positive silences.

Why pure functions: the pipeline (when it writes the outbox), the notify task, the digest job, the CLI and
the API must all apply the same rules, and rules that read nothing but their arguments are the ones that
can be tested exhaustively and changed in one place.

Usage::

    if passes_filters(alert, min_severity=sub.min_severity, kinds=sub.kinds): ...
    severity = tenant_severity(412, 37, ["record"], ["high"], thresholds={"high": 50, "critical": 500})
    recycled_summary(412, 37, since)   # '412 records, 37 new since 2026-10-02'
    key = suppression_key("record", watch.id, "cust-00001", posting.content_hash)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from core.errors import BadInput
from core.models import SEVERITIES

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FINDING_KINDS",
    "at_least",
    "passes_filters",
    "rank",
    "recycled_summary",
    "suppression_key",
    "tenant_severity",
    "validate_kinds",
    "validate_thresholds",
]

#: Finding kinds a subscription may filter on (the ``kind`` of ``scan``'s findings).
FINDING_KINDS: tuple[str, ...] = ("record", "domain", "keyword", "regex", "document", "secret")

#: New-record counts from which an alert is at least this severe; a tenant may override any of them.
DEFAULT_THRESHOLDS: Mapping[str, int] = {"medium": 10, "high": 100, "critical": 1000}

_SUPPRESSION_SCHEME = "fp1"


def rank(level: str) -> int:
    """0 (low) .. 3 (critical); an unknown level ranks lowest so it never outranks a real one."""
    return SEVERITIES.index(level) if level in SEVERITIES else 0


def at_least(level: str, minimum: str) -> bool:
    return rank(level) >= rank(minimum)


def validate_kinds(kinds: Iterable[str] | None) -> list[str] | None:
    """A subscription's kinds filter, sorted and deduplicated; None (or empty) means every kind.

    ``BadInput`` for an unknown kind: a typo would otherwise silently filter out every alert.
    """
    if kinds is None:
        return None
    out = sorted(set(kinds))
    unknown = [k for k in out if k not in FINDING_KINDS]
    if unknown:
        raise BadInput(f"unknown finding kind {unknown[0]!r}: one of {', '.join(FINDING_KINDS)}")
    return out or None


def passes_filters(alert: Mapping[str, Any], *, min_severity: str, kinds: Collection[str] | None) -> bool:
    """True when a subscription with these filters should be told about ``alert``.

    ``alert`` is the ``alerts list`` object (``severity``, ``kinds``). ``kinds`` None or empty means
    every kind; otherwise the alert must hold at least one finding of a listed kind.
    """
    if min_severity not in SEVERITIES:
        raise BadInput(f"unknown severity {min_severity!r}: one of {', '.join(SEVERITIES)}")
    if not at_least(str(alert.get("severity") or ""), min_severity):
        return False
    if not kinds:
        return True
    alert_kinds = alert.get("kinds") or ()
    if isinstance(alert_kinds, str):  # one kind given bare: never iterate it as characters
        alert_kinds = (alert_kinds,)
    return not set(kinds).isdisjoint(alert_kinds)


def validate_thresholds(thresholds: Mapping[str, Any] | None) -> dict[str, int]:
    """The defaults overlaid with a tenant's thresholds, or ``BadInput`` naming what is wrong.

    Thresholds are non-negative integers keyed ``medium``/``high``/``critical`` and may not decrease
    with severity (``{"high": 500, "critical": 50}`` is a mistake, not a policy).
    """
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (thresholds or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise BadInput(f"unknown severity threshold {key!r}: one of {', '.join(DEFAULT_THRESHOLDS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadInput(f"severity threshold {key!r} must be a non-negative integer, not {value!r}")
        merged[key] = value
    if not merged["medium"] <= merged["high"] <= merged["critical"]:
        raise BadInput(
            "severity thresholds must not decrease: "
            f"medium {merged['medium']} <= high {merged['high']} <= critical {merged['critical']}"
        )
    return merged


def tenant_severity(
    records: int,
    new_records: int,
    kinds: Collection[str],
    finding_severities: Iterable[str],
    thresholds: Mapping[str, int] | None,
) -> str:
    """An alert's severity under a tenant's thresholds.

    Why these rules: what a team must act on is data that was *not* already out there, so the
    thresholds count new records; a recycled dump is at most ``medium`` on volume alone. The worst
    finding sets the floor (a record with a password or a card is already ``high`` as a finding);
    a leaked secret is at least ``high``; many new records of a ``high`` kind are ``critical``.
    """
    limits = validate_thresholds(thresholds)
    records, new_records = max(0, records), max(0, min(new_records, records))
    level = max((rank(s) for s in finding_severities), default=0)
    if "secret" in kinds:
        level = max(level, rank("high"))
    volume = 0
    for name in ("medium", "high", "critical"):
        if new_records >= max(1, limits[name]):
            volume = rank(name)
    if volume == 0 and records >= max(1, limits["medium"]):
        volume = rank("medium")  # recycled volume: worth a look, not a page
    if level >= rank("high") and new_records >= max(1, limits["high"]):
        volume = rank("critical")
    return SEVERITIES[max(level, volume)]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def recycled_summary(records: int, new_records: int, since: dt.datetime | None) -> str:
    """One line telling fresh data from a re-post of old data, for subjects, chat and digests.

    ``since`` is when the tenant's earlier sightings start (the date new records are new *since*).
    """
    records = max(0, records)
    new_records = max(0, min(new_records, records))
    if records == 0:
        return "no registered records"
    head = _plural(records, "record")
    if new_records == 0:
        return f"{head}, all seen before (recycled)"
    if new_records == records:
        return f"{head}, all new"
    tail = ""
    if since is not None:
        day = since.astimezone(dt.UTC) if since.tzinfo else since  # naive: already UTC by convention
        tail = f" since {day.date().isoformat()}"
    return f"{head}, {new_records} new{tail}"


def suppression_key(kind: str, watch_id: int | None, record_key: str | None, content_hash: str) -> str:
    """The key under which a false positive silences the same finding in future postings.

    Why these parts: a false positive is a statement about *this* watch item matching *this* content
    (a keyword in a known benign text, a test record in a public sample), so a repost of the same
    content is silenced while the same watch item on new content, or new content for the same record,
    still alerts. The key is a digest so it can be indexed and logged without the parts.
    """
    if not kind:
        raise BadInput("a suppression key needs the finding kind")
    fingerprint = (content_hash or "").strip().lower()
    if not fingerprint:
        # Without a content fingerprint the key would silence the watch item everywhere.
        raise BadInput("a suppression key needs the content fingerprint")
    parts = json.dumps([_SUPPRESSION_SCHEME, kind, watch_id, record_key, fingerprint], ensure_ascii=False)
    return f"{_SUPPRESSION_SCHEME}:{hashlib.sha256(parts.encode('utf-8', 'replace')).hexdigest()}"
