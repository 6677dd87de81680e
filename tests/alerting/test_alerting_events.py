"""The alert event: whitelisted fields only, canonical encoding."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from alerting.events import build_event, encode_event

FULL_VALUE = "john.smith@acme-bank.example"


def make_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": 42,
        "tenant": "acme-bank",
        "severity": "high",
        "status": "new",
        "kinds": ["email", "phone"],
        "records": 12,
        "new_records": 3,
        "url": "http://127.0.0.1:9000/paste/abc",
        "source": "pastebin",
        "first_seen": "2024-05-01T10:00:00+00:00",
        "sightings": ["http://127.0.0.1:9000/paste/abc", "http://127.0.0.1:9000/paste/def"],
        "findings": [
            {
                "kind": "email",
                "record_key": "cust-001",
                "fields": ["email"],
                "watch": "customers",
                "line": 3,
                "severity": "high",
                "masked": "j***@a***.example",
                "value": FULL_VALUE,
                "raw": f"name: John {FULL_VALUE}",
            }
        ],
        "tenant_api_key": "secret-key",
        "evidence_path": "/var/lib/leaksentinel/raw/abc",
    }
    alert.update(overrides)
    return alert


def test_event_shape() -> None:
    sent = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    event = build_event(
        make_alert(), event_id="alert-42-sub-1", console_url="http://c/alerts/42", sent_at=sent
    )
    assert set(event) == {"event_id", "type", "alert", "sent_at"}
    assert event["type"] == "alert.created"
    assert event["event_id"] == "alert-42-sub-1"
    assert event["sent_at"] == "2024-05-01T12:00:00+00:00"
    alert = event["alert"]
    assert set(alert) == {
        "id", "tenant", "severity", "status", "kinds", "records", "new_records", "url", "source",
        "first_seen", "sightings", "findings", "console_url",
    }  # fmt: skip
    assert alert["id"] == 42 and alert["records"] == 12 and alert["new_records"] == 3
    assert alert["console_url"] == "http://c/alerts/42"
    assert alert["findings"] == [
        {
            "kind": "email",
            "record_key": "cust-001",
            "fields": ["email"],
            "watch": "customers",
            "line": 3,
            "severity": "high",
            "masked": "j***@a***.example",
        }
    ]


def test_unknown_keys_are_dropped_so_full_values_never_leave() -> None:
    body = encode_event(build_event(make_alert(value=FULL_VALUE, raw=FULL_VALUE), event_id="e"))
    assert FULL_VALUE.encode() not in body
    assert b"secret-key" not in body and b"evidence_path" not in body
    assert b'"value"' not in body and b'"raw"' not in body


def test_console_url_is_omitted_when_absent() -> None:
    assert "console_url" not in build_event(make_alert(), event_id="e")["alert"]


def test_nested_objects_in_whitelisted_fields_are_refused_not_stringified() -> None:
    finding = {"kind": "email", "masked": {"value": FULL_VALUE}}
    with pytest.raises(TypeError):
        build_event(make_alert(findings=[finding]), event_id="e")
    with pytest.raises(TypeError):
        build_event(make_alert(kinds="email"), event_id="e")


def test_missing_optional_fields_default_and_datetimes_become_iso() -> None:
    first = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    event = build_event({"id": 1, "tenant": "t", "first_seen": first}, event_id="e")
    assert event["alert"]["first_seen"] == "2024-05-01T10:00:00+00:00"
    assert event["alert"]["sightings"] == [] and event["alert"]["findings"] == []
    with pytest.raises(ValueError):
        build_event({"tenant": "t"}, event_id="e")


def test_encoding_is_canonical_utf8() -> None:
    event = build_event(
        make_alert(tenant="банк-东方"), event_id="e", sent_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )
    body = encode_event(event)
    assert "банк-东方".encode() in body  # not \u-escaped
    assert b'": ' not in body and b", " not in body  # compact separators
    assert body == encode_event(json.loads(body))  # stable under a decode/encode round trip
    assert list(json.loads(body)) == sorted(json.loads(body))
