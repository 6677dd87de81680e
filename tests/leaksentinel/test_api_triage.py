"""Triage through the API (issue 15, point 2): actions offered by state (409 otherwise), a reason for
resolve and false positive (422 without), assignee, notes, the timeline with actor and time, bulk actions,
inbox filters, and every new route a 404 for another tenant's alert. Also the alert page's data (point 1)
as ``GET /api/v1/alerts/{id}`` returns it: title, severity reason, one row per leaked record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Alert, AlertEvent, Suppression
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.api.app import create_app
from leaksentinel.company_hash import hash_csv
from leaksentinel.scanning import scan_paths


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """acme: two leaks (a combo list, then a repost of one of its records with a new one); other: one."""
    settings = load_settings(api_rate_per_s=1000.0, api_burst=1000)
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    other = add_tenant(db, "other", ["other.example"], [])
    operator = add_key(db, "operator")["api_key"]
    client = TestClient(create_app(settings))
    key = load_or_create_key(settings.key_path)
    people = {
        "acme": "id,email\nacme-1,jane@acme.example\nacme-2,mark@acme.example\nacme-3,wei@acme.example\n",
        "other": "id,email\nother-1,bob@other.example\n",
    }
    for tenant, csv_text in people.items():
        csv_path = tmp_path / f"{tenant}.csv"
        csv_path.write_text(csv_text)
        body = "".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id"))
        r = client.post(
            f"/api/v1/watches/records?tenant={tenant}",
            content=body,
            headers=_auth(operator) | {"Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 201, r.text
    first = tmp_path / "combo.txt"
    first.write_text(
        "fresh combo\njane@acme.example:hunter2\nmark@acme.example:letmein\nbob@other.example:pw\n"
    )
    second = tmp_path / "later.txt"
    second.write_text("another list, different words\nwei@acme.example\nsee also jane@acme.example here\n")
    list(scan_paths(settings, [str(first)], store=True))
    list(scan_paths(settings, [str(second)], store=True))
    ops = client.get("/api/v1/alerts", headers=_auth(operator)).json()
    acme_alerts = [a["id"] for a in ops if a["tenant"] == "acme"]
    return {
        "client": client,
        "db": db,
        "acme": acme["api_key"],
        "other": other["api_key"],
        "viewer": add_key(db, "tenant_viewer", "acme")["api_key"],
        "operator": operator,
        "combo": acme_alerts[0],
        "later": acme_alerts[1],
        "theirs": next(a["id"] for a in ops if a["tenant"] == "other"),
    }


def _post(world: dict[str, Any], path: str, body: Any = None, key: str = "acme") -> Any:
    return world["client"].post(f"/api/v1{path}", json=body, headers=_auth(world[key]))


def test_actions_are_offered_by_state_and_others_are_a_409(world: dict[str, Any]) -> None:
    c, alert = world["client"], world["combo"]
    detail = c.get(f"/api/v1/alerts/{alert}", headers=_auth(world["acme"])).json()
    assert detail["status"] == "new" and detail["actions"] == ["ack", "resolve", "false-positive"]
    r = _post(world, f"/alerts/{alert}/reopen")
    assert r.status_code == 409 and "new" in r.json()["detail"] and "possible: ack" in r.json()["detail"]
    assert _post(world, f"/alerts/{alert}/ack").json()["status"] == "acked"
    assert _post(world, f"/alerts/{alert}/ack").status_code == 409  # already acknowledged
    detail = c.get(f"/api/v1/alerts/{alert}", headers=_auth(world["acme"])).json()
    assert detail["actions"] == ["resolve", "false-positive", "reopen"]
    r = _post(world, f"/alerts/{alert}/resolve", {"reason": "passwords reset, takedown requested"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert r.json()["status_reason"] == "passwords reset, takedown requested"
    for action in ("ack", "resolve", "false-positive"):
        assert _post(world, f"/alerts/{alert}/{action}", {"reason": "x"}).status_code == 409, action
    assert _post(world, f"/alerts/{alert}/reopen").json()["status"] == "new"
    assert _post(world, f"/alerts/{alert}/bogus").status_code == 404


def test_resolve_and_false_positive_need_a_reason(world: dict[str, Any]) -> None:
    alert = world["combo"]
    for action in ("resolve", "false-positive"):
        for body in (None, {}, {"reason": ""}, {"reason": "   "}):
            r = _post(world, f"/alerts/{alert}/{action}", body)
            assert r.status_code == 422, (action, body, r.text)
            assert "reason" in r.text
    assert _post(world, f"/alerts/{alert}/ack", {"reason": "x" * 2001}).status_code == 422
    assert _post(world, f"/alerts/{alert}/resolve", {"reason": "ok", "extra": 1}).status_code == 422
    with world["db"].session() as sess:
        assert sess.get(Alert, alert).status == "new"
        assert sess.query(AlertEvent).count() == 0
    r = _post(world, f"/alerts/{alert}/false-positive", {"reason": "our own test accounts"})
    assert r.status_code == 200 and r.json()["status"] == "false_positive"
    with world["db"].session() as sess:
        assert sess.query(Suppression).filter_by(alert_id=alert).count() == 3  # jane, mark, the domain
    # Reopening a false positive lifts its suppressions: the same content alerts again.
    assert _post(world, f"/alerts/{alert}/reopen").json()["status_reason"] is None
    with world["db"].session() as sess:
        assert sess.query(Suppression).filter_by(alert_id=alert).count() == 0


def test_assignee_notes_and_timeline_with_actor_and_time(world: dict[str, Any]) -> None:
    c, alert = world["client"], world["combo"]
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert (
        _post(world, f"/alerts/{alert}/assign", {"assignee": "soc-oncall@acme.example"}).json()["assignee"]
        == "soc-oncall@acme.example"
    )
    r = _post(world, f"/alerts/{alert}/notes", {"text": "checked: live accounts\nreset queued"})
    assert r.status_code == 201
    assert _post(world, f"/alerts/{alert}/ack").status_code == 200
    assert _post(world, f"/alerts/{alert}/resolve", {"reason": "reset done"}).status_code == 200
    assert _post(world, f"/alerts/{alert}/assign", {"assignee": None}).json()["assignee"] is None
    assert _post(world, f"/alerts/{alert}/assign", {"assignee": ""}).status_code == 200  # no-op: no event
    assert _post(world, f"/alerts/{alert}/notes", {"text": ""}).status_code == 422
    assert _post(world, f"/alerts/{alert}/notes", {"text": "   "}).status_code == 422
    assert _post(world, f"/alerts/{alert}/notes", {"text": "a\x00b"}).status_code == 422
    assert _post(world, f"/alerts/{alert}/assign", {"assignee": "a\nb"}).status_code == 422
    assert _post(world, f"/alerts/{alert}/assign", {"assignee": "x" * 129}).status_code == 422
    detail = c.get(f"/api/v1/alerts/{alert}", headers=_auth(world["acme"])).json()
    timeline = detail["timeline"]
    assert [(e["action"], e["from"], e["to"]) for e in timeline] == [
        ("assign", None, "soc-oncall@acme.example"),
        ("note", None, None),
        ("status", "new", "acked"),
        ("status", "acked", "resolved"),
        ("assign", "soc-oncall@acme.example", None),
    ]
    assert timeline[1]["text"] == "checked: live accounts\nreset queued"
    assert timeline[3]["text"] == "reset done" and detail["status_reason"] == "reset done"
    assert all(e["actor"].startswith("key:") and e["actor"].endswith(":tenant_admin:acme") for e in timeline)
    assert all(before <= datetime.fromisoformat(e["at"]) <= datetime.now(UTC) for e in timeline)


def test_viewers_read_the_timeline_but_cannot_change_anything(world: dict[str, Any]) -> None:
    alert = world["combo"]
    _post(world, f"/alerts/{alert}/notes", {"text": "seen"})
    for path, body in (
        (f"/alerts/{alert}/notes", {"text": "x"}),
        (f"/alerts/{alert}/assign", {"assignee": "me"}),
        (f"/alerts/{alert}/ack", None),
        ("/alerts/bulk", {"ids": [alert], "action": "ack"}),
    ):
        assert _post(world, path, body, key="viewer").status_code == 403, path
    detail = world["client"].get(f"/api/v1/alerts/{alert}", headers=_auth(world["viewer"])).json()
    assert [e["text"] for e in detail["timeline"]] == ["seen"]


def test_bulk_changes_what_the_state_allows_and_lists_the_rest(world: dict[str, Any]) -> None:
    combo, later = world["combo"], world["later"]
    assert _post(world, f"/alerts/{later}/ack").status_code == 200
    r = _post(world, "/alerts/bulk", {"ids": [combo, later], "action": "ack"})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == [combo]
    assert r.json()["skipped"] == [
        {"id": later, "status": "acked", "error": "acked: possible resolve, false-positive, reopen"}
    ]
    assert _post(world, "/alerts/bulk", {"ids": [combo, later], "action": "resolve"}).status_code == 422
    r = _post(world, "/alerts/bulk", {"ids": [combo, later, combo], "action": "resolve", "reason": "handled"})
    assert r.json() == {"action": "resolve", "changed": [combo, later], "skipped": []}
    r = _post(world, "/alerts/bulk", {"ids": [combo, later], "action": "assign", "assignee": "ana"})
    assert r.json()["changed"] == [combo, later]
    with world["db"].session() as sess:
        for alert_id in (combo, later):
            row = sess.get(Alert, alert_id)
            assert (row.status, row.status_reason, row.assignee) == ("resolved", "handled", "ana")
        assert sess.query(AlertEvent).filter_by(alert_id=later, action="status").count() == 2
    assert _post(world, "/alerts/bulk", {"ids": [], "action": "ack"}).status_code == 422
    assert _post(world, "/alerts/bulk", {"ids": [combo], "action": "delete"}).status_code == 422
    assert _post(world, "/alerts/bulk", {"ids": list(range(1, 502)), "action": "ack"}).status_code == 422


def test_every_new_route_is_a_404_for_another_tenants_alert(world: dict[str, Any]) -> None:
    theirs, c = world["theirs"], world["client"]
    calls = [
        ("GET", f"/alerts/{theirs}", None),
        ("POST", f"/alerts/{theirs}/notes", {"text": "mine now"}),
        ("POST", f"/alerts/{theirs}/assign", {"assignee": "me"}),
        ("POST", f"/alerts/{theirs}/ack", None),
        ("POST", f"/alerts/{theirs}/reopen", None),
        ("POST", f"/alerts/{theirs}/resolve", {"reason": "x"}),
        ("POST", f"/alerts/{theirs}/false-positive", {"reason": "x"}),
        ("POST", "/alerts/bulk", {"ids": [theirs], "action": "ack"}),
        ("POST", "/alerts/bulk", {"ids": [world["combo"], theirs], "action": "ack"}),
        ("POST", "/alerts/bulk?tenant=other", {"ids": [world["combo"]], "action": "ack"}),
        ("POST", "/alerts/bulk", {"ids": [99999999], "action": "ack"}),
        ("GET", "/alerts?tenant=other&kind=record", None),
    ]
    for method, path, body in calls:
        r = c.request(method, f"/api/v1{path}", json=body, headers=_auth(world["acme"]))
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert "other.example" not in r.text
    with world["db"].session() as sess:
        assert sess.get(Alert, theirs).status == "new" and sess.get(Alert, theirs).assignee is None
        assert sess.get(Alert, world["combo"]).status == "new"  # the mixed bulk changed nothing
        assert sess.query(AlertEvent).count() == 0
    # The control: the operator may act on any tenant's alerts, and scope a bulk call to one tenant.
    r = _post(world, "/alerts/bulk?tenant=other", {"ids": [theirs], "action": "ack"}, key="operator")
    assert r.json()["changed"] == [theirs]
    r = _post(world, "/alerts/bulk?tenant=other", {"ids": [world["combo"]], "action": "ack"}, key="operator")
    assert r.status_code == 404


def test_inbox_filters_by_kind_source_and_date(world: dict[str, Any]) -> None:
    c, key = world["client"], _auth(world["acme"])

    def ids(query: str) -> list[int]:
        r = c.get(f"/api/v1/alerts?{query}", headers=key)
        assert r.status_code == 200, (query, r.text)
        return [a["id"] for a in r.json()]

    both = [world["combo"], world["later"]]
    assert ids("") == both
    assert ids("kind=record") == both and ids("kind=secret") == []
    assert ids("source=local") == both and ids("source=pastebin") == []
    today = datetime.now(UTC).date()
    assert ids(f"since={today}") == both and ids(f"until={today}") == both
    assert ids(f"since={today + timedelta(days=1)}") == [] and ids(f"until={today - timedelta(days=1)}") == []
    with world["db"].session() as sess:  # the first leak was seen three days ago
        sess.get(Alert, world["combo"]).first_seen = datetime.now(UTC) - timedelta(days=3)
    assert ids(f"since={today - timedelta(days=1)}") == [world["later"]]
    assert ids(f"until={today - timedelta(days=2)}") == [world["combo"]]
    _post(world, f"/alerts/{world['later']}/assign", {"assignee": "ana"})
    assert ids("assignee=ana") == [world["later"]]
    for bad in ("kind=bogus", "since=yesterday", "until=2026-13-01", "status=open"):
        r = c.get(f"/api/v1/alerts?{bad}", headers=key)
        assert r.status_code == 422 and len(r.text) < 300, bad


def test_alert_detail_says_what_and_where_with_one_row_per_record(world: dict[str, Any]) -> None:
    c, key = world["client"], _auth(world["acme"])
    combo = c.get(f"/api/v1/alerts/{world['combo']}", headers=key).json()
    assert combo["title"].startswith("2 acme customer records with passwords on combo.txt, first seen ")
    assert combo["title"].endswith(", 1 sighting")
    assert combo["severity_reason"].startswith(combo["severity"] + ": 2 records with a password")
    rows = {r["record_key"]: r for r in combo["leaked_records"]}
    assert set(rows) == {"acme-1", "acme-2"}
    assert rows["acme-1"]["masked"] == "j***@acme.example" and rows["acme-1"]["fields"] == ["email"]
    assert all(r["new"] and r["with_password"] and r["first_seen_alert"] is None for r in rows.values())
    assert [(o["kind"], o["watch"], o["sightings"]) for o in combo["other_findings"]] == [
        ("domain", "acme.example", 1)
    ]
    assert any("Reset the passwords" in s["step"] for s in combo["next_steps"])
    assert combo["next_steps"][-1]["kind"] == "takedown"
    assert "excerpt" not in combo and "hunter2" not in json.dumps(combo)  # the API stays masked
    later = c.get(f"/api/v1/alerts/{world['later']}", headers=key).json()
    rows = {r["record_key"]: r for r in later["leaked_records"]}
    assert rows["acme-3"]["new"] is True and rows["acme-3"]["with_password"] is False
    assert rows["acme-1"]["new"] is False and rows["acme-1"]["first_seen_alert"] == world["combo"]
    assert later["title"].startswith("2 acme customer records on later.txt")
    assert [s["source"] for s in later["sightings_timeline"]] == ["local"]


def test_triage_notes_stay_out_of_exports_and_evidence(world: dict[str, Any]) -> None:
    """Reasons, notes and assignees are the team's own: not in STIX/MISP exports or evidence zips."""
    import io
    import zipfile

    c, alert = world["client"], world["combo"]
    _post(world, f"/alerts/{alert}/assign", {"assignee": "internal-owner@acme.example"})
    _post(world, f"/alerts/{alert}/notes", {"text": "internal-note-7731"})
    _post(world, f"/alerts/{alert}/resolve", {"reason": "internal-reason-4410"})
    for fmt in ("stix", "misp"):
        text = c.get(f"/api/v1/alerts/{alert}/export?format={fmt}", headers=_auth(world["acme"])).text
        assert "internal-" not in text, fmt
    r = c.get(f"/api/v1/alerts/{alert}/evidence", headers=_auth(world["acme"]))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert all(b"internal-" not in z.read(name) for name in z.namelist())
    listed = c.get("/api/v1/alerts", headers=_auth(world["acme"])).json()[0]
    assert (listed["assignee"], listed["status_reason"]) == (
        "internal-owner@acme.example",
        "internal-reason-4410",
    )
