"""STIX 2.1 and MISP exports: valid, deterministic, and never carrying a full matched value."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import stix2

from alerting.exports import MAX_EXPORTED_FINDINGS, alert_to_misp, alert_to_stix

FULL_EMAIL = "john.smith@acme-bank.example"
FULL_CARD = "6212345678901232"
RAW_LINE = "john.smith@acme-bank.example:hunter2:6212345678901232"
HOSTILE_URL = "https://paste.example/x?q='\"<script>alert(1)</script>\r\nX-Evil: 1"


def make_alert(**overrides: Any) -> dict[str, Any]:
    """What ``alert_to_dict(..., with_findings=True)`` returns, plus keys no export may read."""
    alert: dict[str, Any] = {
        "id": 42,
        "tenant": "acme-bank",
        "severity": "high",
        "status": "new",
        "kinds": ["record", "keyword"],
        "records": 412,
        "new_records": 37,
        "url": "https://paste.example/abc",
        "source": "pastebin",
        "first_seen": "2026-10-02T10:00:00+00:00",
        "last_seen": "2026-10-03T08:30:00+00:00",
        "sightings": ["https://paste.example/abc", "https://mirror.example/abc"],
        "findings": [
            {
                "kind": "record",
                "record_key": "cust-00001",
                "fields": ["email", "card"],
                "watch": None,
                "line": 3,
                "severity": "high",
                "masked": "j***@acme-bank.example",
                "value": FULL_EMAIL,
                "raw": RAW_LINE,
                "text": RAW_LINE,
            },
            {
                "kind": "keyword",
                "record_key": None,
                "fields": [],
                "watch": "project falcon",
                "line": 9,
                "severity": "low",
                "masked": "p*****t f****n",
                "value": FULL_CARD,
            },
        ],
        "raw": RAW_LINE,
        "text": RAW_LINE,
        "value": FULL_EMAIL,
    }
    alert.update(overrides)
    return alert


def _dump(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False)


# -- STIX -----------------------------------------------------------------------------------------


def test_stix_bundle_parses_back_with_the_stix2_library() -> None:
    doc = alert_to_stix(make_alert(), console_url="https://console.example/alerts/42")
    bundle = stix2.parse(_dump(doc), allow_custom=True)
    assert bundle.type == "bundle"
    by_type: dict[str, list[Any]] = {}
    for obj in bundle.objects:
        by_type.setdefault(obj.type, []).append(obj)
    assert {"identity", "url", "observed-data", "note", "report", "marking-definition"} <= set(by_type)
    [report] = by_type["report"]
    assert report.x_leaksentinel_alert_id == 42
    assert report.x_leaksentinel_severity == "high"
    assert report.x_leaksentinel_new_records == 37
    assert report.x_leaksentinel_console_url == "https://console.example/alerts/42"
    assert "412 records, 37 new" in report.description
    tenants = [i for i in by_type["identity"] if i.identity_class == "organization"]
    assert [t.name for t in tenants] == ["acme-bank"]
    assert {u.value for u in by_type["url"]} == {"https://paste.example/abc", "https://mirror.example/abc"}
    ids = {o.id for o in bundle.objects}
    assert set(report.object_refs) <= ids  # every reference resolves inside the bundle
    assert all(o.object_marking_refs == [stix2.v21.TLP_AMBER.id] for o in by_type["report"] + by_type["note"])


def test_stix_findings_summary_has_record_keys_field_types_and_masked_values_only() -> None:
    doc = alert_to_stix(make_alert())
    [note] = [o for o in doc["objects"] if o["type"] == "note"]
    assert note["x_leaksentinel_findings"] == [
        {
            "kind": "record",
            "record_key": "cust-00001",
            "fields": ["email", "card"],
            "line": 3,
            "severity": "high",
            "masked": "j***@acme-bank.example",
        },
        {
            "kind": "keyword",
            "watch": "project falcon",
            "line": 9,
            "severity": "low",
            "masked": "p*****t f****n",
        },
    ]
    assert "cust-00001" in note["content"] and "email, card" in note["content"]


@pytest.mark.parametrize("export", [alert_to_stix, alert_to_misp])
def test_no_full_value_ever_leaves(export: Any) -> None:
    text = _dump(export(make_alert()))
    for secret in (FULL_EMAIL, FULL_CARD, RAW_LINE, "hunter2"):
        assert secret not in text


def test_stix_is_deterministic_and_ids_follow_the_alert() -> None:
    first = alert_to_stix(make_alert())
    again = alert_to_stix(copy.deepcopy(make_alert()))
    assert first == again
    other = alert_to_stix(make_alert(id=43))
    ids = {o["id"] for o in first["objects"]}
    other_ids = {o["id"] for o in other["objects"]}
    # alert-specific objects change, shared ones (producer, tenant, TLP, URL SCOs) keep their ids
    shared = ids & other_ids
    assert {o["type"] for o in first["objects"] if o["id"] in shared} == {
        "identity",
        "marking-definition",
        "url",
    }
    assert first["id"] != other["id"]


def test_stix_new_sighting_is_a_new_version_of_the_same_objects() -> None:
    before = alert_to_stix(make_alert())
    after = alert_to_stix(
        make_alert(
            last_seen="2026-10-05T00:00:00+00:00",
            sightings=[*make_alert()["sightings"], "https://third.example/x"],
        )
    )

    def report(doc: dict[str, Any]) -> dict[str, Any]:
        return next(o for o in doc["objects"] if o["type"] == "report")

    assert report(before)["id"] == report(after)["id"]
    assert report(before)["created"] == report(after)["created"]
    assert report(after)["modified"] > report(before)["modified"]


def test_stix_hostile_url_stays_data() -> None:
    doc = alert_to_stix(make_alert(url=HOSTILE_URL, sightings=[HOSTILE_URL]))
    stix2.parse(_dump(doc), allow_custom=True)
    [url] = [o for o in doc["objects"] if o["type"] == "url"]
    assert url["value"] == HOSTILE_URL
    report = next(o for o in doc["objects"] if o["type"] == "report")
    assert "x_leaksentinel_console_url" not in report


def test_stix_without_urls_or_findings_is_still_valid() -> None:
    doc = alert_to_stix(make_alert(url=None, sightings=[], findings=[], first_seen=None, last_seen=None))
    bundle = stix2.parse(_dump(doc), allow_custom=True)
    assert {o.type for o in bundle.objects} == {"identity", "marking-definition", "note", "report"}


def test_javascript_console_url_is_dropped() -> None:
    doc = alert_to_stix(make_alert(), console_url="javascript:alert(1)")
    assert "javascript:" not in _dump(doc)
    assert "javascript:" not in _dump(alert_to_misp(make_alert(), console_url="javascript:alert(1)"))


def test_nested_object_in_a_whitelisted_field_is_refused() -> None:
    bad = make_alert()
    bad["findings"][0]["masked"] = {"value": FULL_EMAIL}
    with pytest.raises(TypeError):
        alert_to_stix(bad)
    with pytest.raises(TypeError):
        alert_to_misp(bad)


def test_findings_are_capped() -> None:
    many = [
        {"kind": "record", "record_key": f"k{i}", "masked": f"m{i}"} for i in range(MAX_EXPORTED_FINDINGS + 3)
    ]
    doc = alert_to_stix(make_alert(findings=many))
    note = next(o for o in doc["objects"] if o["type"] == "note")
    assert len(note["x_leaksentinel_findings"]) == MAX_EXPORTED_FINDINGS
    assert note["x_leaksentinel_findings_omitted"] == 3


# -- MISP -----------------------------------------------------------------------------------------


def test_misp_event_has_the_required_keys_and_types() -> None:
    doc = alert_to_misp(make_alert(), console_url="https://console.example/alerts/42")
    event = doc["Event"]
    for key, kind in [
        ("info", str),
        ("date", str),
        ("threat_level_id", str),
        ("analysis", str),
        ("distribution", str),
        ("Attribute", list),
        ("Tag", list),
        ("uuid", str),
    ]:
        assert isinstance(event[key], kind), key
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", event["date"]) and event["date"] == "2026-10-02"
    assert event["threat_level_id"] == "1" and event["analysis"] == "0" and event["distribution"] == "0"
    assert "acme-bank" in event["info"]
    for attr in event["Attribute"]:
        assert set(attr) >= {"type", "category", "value", "to_ids", "uuid"}
        assert isinstance(attr["value"], str) and attr["to_ids"] is False
    by_type: dict[str, set[str]] = {}
    for attr in event["Attribute"]:
        by_type.setdefault(attr["type"], set()).add(attr["value"])
    assert by_type["url"] == {"https://paste.example/abc", "https://mirror.example/abc"}
    assert by_type["link"] == {"https://console.example/alerts/42"}
    assert {"cust-00001", "j***@acme-bank.example", "p*****t f****n"} <= by_type["text"]
    tags = [t["name"] for t in event["Tag"]]
    assert "tlp:amber" in tags and 'leaksentinel:severity="high"' in tags
    assert 'leaksentinel:kind="record"' in tags and 'leaksentinel:kind="keyword"' in tags


def test_misp_is_deterministic_and_attributes_unique() -> None:
    a = alert_to_misp(make_alert())
    assert a == alert_to_misp(make_alert())
    attrs = a["Event"]["Attribute"]
    assert len({(x["type"], x["category"], x["value"]) for x in attrs}) == len(attrs)
    assert len({x["uuid"] for x in attrs}) == len(attrs)
    assert alert_to_misp(make_alert(id=43))["Event"]["uuid"] != a["Event"]["uuid"]


@pytest.mark.parametrize(
    ("severity", "status", "level", "analysis"),
    [("critical", "acked", "1", "1"), ("medium", "resolved", "2", "2"), ("low", "false_positive", "3", "2")],
)
def test_misp_levels(severity: str, status: str, level: str, analysis: str) -> None:
    event = alert_to_misp(make_alert(severity=severity, status=status))["Event"]
    assert (event["threat_level_id"], event["analysis"]) == (level, analysis)


def test_misp_values_are_single_lines_and_tags_cannot_be_broken() -> None:
    event = alert_to_misp(make_alert(url=HOSTILE_URL, sightings=[], source='x"y'))["Event"]
    assert all("\n" not in a["value"] and "\r" not in a["value"] for a in event["Attribute"])
    assert 'leaksentinel:source="x\'y"' in [t["name"] for t in event["Tag"]]
