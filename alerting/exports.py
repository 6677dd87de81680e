"""Alerts as threat-intelligence documents: a STIX 2.1 bundle and a MISP event.

Why: security teams keep leaks in their TIP (OpenCTI, MISP, a SIEM) beside everything else, and those
speak STIX and MISP, not our event JSON. Three rules shape both exports:

* Same whitelist as the notification event: the alert goes through ``alerting.events.build_event`` first,
  so only the fields an event may carry are read and only masked values travel. An unexpected key
  (``value``, ``raw``...) in the input is never looked at.
* Deterministic: every id is a UUIDv5 of the tenant and alert id (URLs get STIX's own deterministic SCO
  ids), and every timestamp comes from the alert, so exporting twice gives the same document and
  re-importing updates objects instead of duplicating them.
* Posting URLs come from hostile pages: they are data (a ``url`` SCO, a MISP ``url`` attribute with
  ``to_ids`` off), never markup.

Usage::

    bundle = alert_to_stix(alert_to_dict(sess, alert, with_findings=True))
    event = alert_to_misp(alert_to_dict(sess, alert, with_findings=True), console_url=".../alerts/42")
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

import stix2

from alerting.events import build_event
from core.models import SEVERITIES
from core.policy import recycled_summary

__all__ = ["EXPORT_FORMATS", "MAX_EXPORTED_FINDINGS", "alert_to_misp", "alert_to_stix"]

EXPORT_FORMATS = ("stix", "misp")
#: Findings written into one export; more are counted, not listed (the console has them all).
MAX_EXPORTED_FINDINGS = 5000

#: Namespace of every UUIDv5 minted here (never change it: ids would stop being stable).
_NAMESPACE = uuid.UUID("5d0f4a8e-2c0b-5f3e-9a57-6c2d1e0b7a11")
#: Used only when an alert carries no timestamp, so output stays deterministic.
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PRODUCER = "leaksentinel"
_MISP_THREAT_LEVEL = {"critical": "1", "high": "1", "medium": "2", "low": "3"}
_MISP_ANALYSIS = {"new": "0", "acked": "1", "resolved": "2", "false_positive": "2"}
_HTTP = re.compile(r"(?i)https?://")


def _line(value: Any) -> str:
    """One printable line: hostile text cannot add lines to a summary."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _view(alert: Mapping[str, Any]) -> tuple[dict[str, Any], dt.datetime, dt.datetime]:
    """The whitelisted alert body and its (first, last) seen times, last never before first."""
    body = build_event(alert, event_id="export", sent_at=_EPOCH)["alert"]
    first = _when(alert.get("first_seen")) or _EPOCH
    last = _when(alert.get("last_seen")) or first
    return body, first, max(first, last)


def _uuid(body: Mapping[str, Any], *parts: Any) -> str:
    name = json.dumps([_PRODUCER, body.get("tenant"), body.get("id"), *parts], ensure_ascii=False)
    return str(uuid.uuid5(_NAMESPACE, name))


def _urls(body: Mapping[str, Any]) -> list[str]:
    """The posting URL first, then every other sighting, without repeats."""
    urls = [body.get("url"), *(body.get("sightings") or ())]
    return list(dict.fromkeys(u for u in urls if isinstance(u, str) and u))


def _console(console_url: str | None) -> str | None:
    return console_url if isinstance(console_url, str) and _HTTP.match(console_url) else None


def _finding_summary(f: Mapping[str, Any]) -> dict[str, Any]:
    """A finding reduced to what may leave the service (no ``None`` values: STIX forbids empty lists)."""
    out = {
        "kind": f.get("kind"),
        "record_key": f.get("record_key"),
        "fields": list(f.get("fields") or []),
        "watch": f.get("watch"),
        "line": f.get("line"),
        "severity": f.get("severity"),
        "masked": f.get("masked"),
    }
    return {k: v for k, v in out.items() if v not in (None, [])}


def _finding_line(f: Mapping[str, Any]) -> str:
    parts = [_line(f.get("kind"))]
    if f.get("record_key") is not None:
        parts.append(f"record {_line(f.get('record_key'))}")
    if f.get("fields"):
        parts.append("fields " + ", ".join(_line(x) for x in f["fields"]))
    if f.get("watch"):
        parts.append(f"watch {_line(f.get('watch'))}")
    if f.get("masked"):
        parts.append(f"masked {_line(f.get('masked'))}")
    if f.get("line") is not None:
        parts.append(f"line {_line(f.get('line'))}")
    if f.get("severity"):
        parts.append(_line(f.get("severity")))
    return " | ".join(p for p in parts if p)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _title(body: Mapping[str, Any]) -> str:
    return (
        f"leaksentinel alert {_line(body.get('id'))}: {_line(body.get('severity'))} leak of "
        f"{_line(body.get('tenant'))} data on {_line(body.get('source')) or 'unknown source'}"
    )


def _summary(body: Mapping[str, Any]) -> str:
    records = body.get("records") if isinstance(body.get("records"), int) else 0
    new = body.get("new_records") if isinstance(body.get("new_records"), int) else 0
    return recycled_summary(records or 0, new or 0, None)


def alert_to_stix(alert: Mapping[str, Any], *, console_url: str | None = None) -> dict[str, Any]:
    """A STIX 2.1 bundle for ``alert`` (the ``alert_to_dict(..., with_findings=True)`` dict).

    Objects: the producer and the tenant (``identity``), one ``url`` SCO per posting URL, an
    ``observed-data`` of them, a ``note`` summarising the findings (record keys, field types, masked
    values) and a ``report`` tying them together, all marked TLP:AMBER.
    """
    body, first, last = _view(alert)
    findings = body["findings"][:MAX_EXPORTED_FINDINGS]
    omitted = len(body["findings"]) - len(findings)
    tlp = stix2.v21.TLP_AMBER
    common: dict[str, Any] = {"created": first, "modified": last, "allow_custom": True}

    producer = stix2.v21.Identity(
        id=f"identity--{uuid.uuid5(_NAMESPACE, _PRODUCER)}",
        name=_PRODUCER,
        identity_class="system",
        created=_EPOCH,
        modified=_EPOCH,
    )
    marked: dict[str, Any] = {**common, "created_by_ref": producer.id, "object_marking_refs": [tlp.id]}
    # One identity per tenant across all its alerts, so its id and timestamps depend on the name only.
    tenant_name = _line(body.get("tenant")) or "unknown tenant"
    tenant = stix2.v21.Identity(
        id=f"identity--{uuid.uuid5(_NAMESPACE, json.dumps([_PRODUCER, 'tenant', tenant_name]))}",
        name=tenant_name,
        identity_class="organization",
        created=_EPOCH,
        modified=_EPOCH,
        created_by_ref=producer.id,
        object_marking_refs=[tlp.id],
    )
    urls = [stix2.v21.URL(value=u, object_marking_refs=[tlp.id]) for u in _urls(body)]
    objects: list[Any] = [producer, tlp, tenant, *urls]
    refs: list[str] = [tenant.id]

    if urls:
        observed = stix2.v21.ObservedData(
            id=f"observed-data--{_uuid(body, 'observed-data')}",
            first_observed=first,
            last_observed=last,
            number_observed=len(urls),
            object_refs=[u.id for u in urls],
            **marked,
        )
        objects.append(observed)
        refs += [observed.id, *(u.id for u in urls)]

    lines = [_finding_line(f) for f in findings]
    if omitted:
        lines.append(f"... and {omitted} more findings (see the console)")
    note_props: dict[str, Any] = {"x_leaksentinel_findings": [_finding_summary(f) for f in findings]}
    if omitted:
        note_props["x_leaksentinel_findings_omitted"] = omitted
    note = stix2.v21.Note(
        id=f"note--{_uuid(body, 'note')}",
        abstract=f"{_summary(body)}; {_plural(len(body['findings']), 'finding')} (values masked)",
        content="\n".join(lines) or "no findings",
        object_refs=list(refs),
        **note_props,
        **marked,
    )
    objects.append(note)
    refs.append(note.id)

    custom: dict[str, Any] = {
        "x_leaksentinel_alert_id": body["id"],
        "x_leaksentinel_severity": body.get("severity"),
        "x_leaksentinel_status": body.get("status"),
        "x_leaksentinel_records": body.get("records"),
        "x_leaksentinel_new_records": body.get("new_records"),
        "x_leaksentinel_kinds": body.get("kinds"),
        "x_leaksentinel_source": body.get("source"),
        "x_leaksentinel_console_url": _console(console_url),
    }
    report = stix2.v21.Report(
        id=f"report--{_uuid(body, 'report')}",
        name=_title(body),
        description=f"{_summary(body)}. Matched values are never exported; findings carry masked forms.",
        report_types=["observed-data"],
        published=first,
        object_refs=refs,
        labels=[f"severity:{body.get('severity')}"] if body.get("severity") in SEVERITIES else None,
        **{k: v for k, v in custom.items() if v not in (None, [])},
        **marked,
    )
    objects.append(report)
    bundle = stix2.v21.Bundle(*objects, id=f"bundle--{_uuid(body, 'bundle')}", allow_custom=True)
    result: dict[str, Any] = json.loads(bundle.serialize())
    return result


def _tag_value(value: Any) -> str:
    return _line(value).replace('"', "'")


def alert_to_misp(alert: Mapping[str, Any], *, console_url: str | None = None) -> dict[str, Any]:
    """A MISP event (``{"Event": {...}}``, the JSON ``/events/add`` and the UI import take) for ``alert``.

    Distribution is "your organisation only" and the event is TLP:AMBER: it describes the tenant's own
    leaked data. Attributes are deduplicated on (type, category, value) as MISP requires.
    """
    body, first, last = _view(alert)
    event_uuid = _uuid(body, "misp-event")
    findings = body["findings"][:MAX_EXPORTED_FINDINGS]
    omitted = len(body["findings"]) - len(findings)
    attributes: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(kind: str, category: str, value: Any, comment: str) -> None:
        text = _line(value)
        if not text or (kind, category, text) in attributes:
            return
        attributes[(kind, category, text)] = {
            "uuid": str(uuid.uuid5(uuid.UUID(event_uuid), json.dumps([kind, category, text]))),
            "type": kind,
            "category": category,
            "value": text,
            "to_ids": False,
            "distribution": "5",  # inherit the event's
            "comment": comment[:1000],
        }

    for i, url in enumerate(_urls(body)):
        add("url", "External analysis", url, "posting where the leak was found" if i == 0 else "repost")
    console = _console(console_url)
    if console:
        add("link", "External analysis", console, "leaksentinel console")
    add("text", "Other", _summary(body), "records leaked (new = never seen in an earlier leak)")
    for f in findings:
        what = f"{_line(f.get('kind'))} finding"
        if f.get("fields"):
            what += " (fields: " + ", ".join(_line(x) for x in f["fields"]) + ")"
        if f.get("record_key") is not None:
            add("text", "Other", f.get("record_key"), f"record key of a leaked record; {what}")
        if f.get("masked"):
            record = f" of record {_line(f.get('record_key'))}" if f.get("record_key") is not None else ""
            add("text", "Other", f.get("masked"), f"masked value{record}; {what}")
        if f.get("watch"):
            add("text", "Other", f.get("watch"), f"watch item that matched; {what}")
    if omitted:
        add("text", "Other", f"{omitted} more findings not exported", "see the leaksentinel console")

    severity = body.get("severity") if body.get("severity") in SEVERITIES else None
    tags = ["tlp:amber"]
    if severity:
        tags.append(f'leaksentinel:severity="{severity}"')
    tags += [f'leaksentinel:kind="{_tag_value(k)}"' for k in body.get("kinds") or ()]
    if body.get("status"):
        tags.append(f'leaksentinel:status="{_tag_value(body["status"])}"')
    if body.get("source"):
        tags.append(f'leaksentinel:source="{_tag_value(body["source"])}"')
    return {
        "Event": {
            "uuid": event_uuid,
            "info": _title(body),
            "date": first.astimezone(dt.UTC).date().isoformat(),
            "timestamp": str(int(last.timestamp())),
            "threat_level_id": _MISP_THREAT_LEVEL.get(severity or "", "4"),
            "analysis": _MISP_ANALYSIS.get(str(body.get("status")), "0"),
            "distribution": "0",
            "published": False,
            "Attribute": list(attributes.values()),
            "Tag": [{"name": t} for t in dict.fromkeys(tags)],
        }
    }
