"""The JSON alert event every channel carries, and its canonical encoding.

Why a whitelist: the event leaves the service, so it is built field by field from names listed here.
A key the caller adds later (``value``, ``raw``, ``text``...) is dropped, never forwarded, so a full
matched value cannot reach a receiver by accident; only the already masked form (``masked``) travels.

Usage::

    event = build_event(alert_row_as_dict, event_id="alert-42-sub-7", console_url=".../alerts/42")
    body = encode_event(event)  # the exact bytes that are signed and POSTed
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["ALERT_FIELDS", "EVENT_TYPE", "FINDING_FIELDS", "build_event", "encode_event"]

EVENT_TYPE = "alert.created"

#: Alert fields an event carries (the same names ``alerts list --json`` prints).
ALERT_FIELDS: tuple[str, ...] = (
    "id",
    "tenant",
    "severity",
    "status",
    "kinds",
    "records",
    "new_records",
    "url",
    "source",
    "first_seen",
    "sightings",
)
#: Per-finding fields; ``masked`` is the only representation of a matched value.
FINDING_FIELDS: tuple[str, ...] = ("kind", "record_key", "fields", "watch", "line", "severity", "masked")
#: Per-finding fields sent only when set (a look-alike's technique): additive to the event contract.
OPTIONAL_FINDING_FIELDS: tuple[str, ...] = ("technique",)
_LIST_FIELDS = frozenset({"kinds", "sightings", "fields"})

_Scalar = str | int | float | bool | None


def _scalar(name: str, value: Any) -> _Scalar:
    """A JSON scalar; datetimes become ISO strings. Anything else is a bug upstream, refused loudly."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    # A nested object could smuggle an unmasked value past the whitelist, so it is not stringified either.
    raise TypeError(f"alert field {name!r} must be a JSON scalar, got {type(value).__name__}")


def _field(name: str, value: Any) -> _Scalar | list[_Scalar]:
    if name in _LIST_FIELDS:
        if value is None:
            return []
        if isinstance(value, str | bytes | Mapping):
            raise TypeError(f"alert field {name!r} must be a list")
        return [_scalar(name, v) for v in value]
    return _scalar(name, value)


def build_event(
    alert: Mapping[str, Any],
    *,
    event_id: str,
    console_url: str | None = None,
    sent_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The ``alert.created`` event for ``alert``, with only whitelisted fields.

    ``event_id`` is the idempotency key (stable across retries); ``sent_at`` defaults to now (UTC).
    """
    body: dict[str, Any] = {name: _field(name, alert.get(name)) for name in ALERT_FIELDS}
    if body["id"] is None:
        raise ValueError("an alert event needs the alert's id")
    body["findings"] = [
        {name: _field(name, finding.get(name)) for name in FINDING_FIELDS}
        | {
            name: _scalar(name, finding[name])
            for name in OPTIONAL_FINDING_FIELDS
            if finding.get(name) is not None
        }
        for finding in alert.get("findings") or ()
    ]
    if console_url:
        body["console_url"] = console_url
    when = sent_at or dt.datetime.now(dt.UTC)
    return {
        "event_id": event_id,
        "type": EVENT_TYPE,
        "alert": body,
        "sent_at": when.astimezone(dt.UTC).isoformat(timespec="seconds"),
    }


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes: sorted keys, compact, UTF-8 (lone surrogates replaced), no NaN."""
    text = json.dumps(dict(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "replace")
