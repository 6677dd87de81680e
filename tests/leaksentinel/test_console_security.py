"""Console sessions end on the server (logout, key revocation), failed logins are limited per address,
and destructive actions (a records watch, a subscription, a source) need an explicit confirmation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import AuditLog, RecordHash, Subscription
from core.settings import load_settings
from leaksentinel.actions.keys import add_key, revoke_key
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.api.app import create_app
from leaksentinel.api.limits import AUTH_FAILURE_BURST
from leaksentinel.company_hash import hash_csv
from leaksentinel.console.session import SESSION_COOKIE


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client: TestClient, key: str) -> str:
    client.cookies.clear()
    page = client.get("/login")
    r = client.post("/login", data={"csrf": _csrf(page.text), "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf(client.get("/howto").text)


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """Runs on SQLite and (when configured) PostgreSQL."""
    settings = load_settings()
    db = open_database(settings)
    acme = add_tenant(db, "acme", [], [])
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email\nc-1,jane@acme.example\nc-2,mark@acme.example\n")
    jsonl = tmp_path / "c.jsonl"
    key = load_or_create_key(settings.key_path)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id")))
    watch = add_records(db, acme["id"], jsonl)
    sub = add_subscription(db, settings, acme["id"], email="soc@acme.example")
    return {
        "settings": settings,
        "db": db,
        "client": TestClient(create_app(settings)),
        "admin": acme["api_key"],
        "operator": add_key(db, "operator")["api_key"],
        "watch": watch["id"],
        "sub": sub["id"],
    }


def test_logout_ends_the_session_on_the_server(world: dict[str, Any]) -> None:
    c = world["client"]
    csrf = login(c, world["admin"])
    stolen = c.cookies[SESSION_COOKIE]  # a copy left behind (shared machine, proxy log)
    assert c.get("/alerts").status_code == 200
    r = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    thief = TestClient(c.app)
    thief.cookies.set(SESSION_COOKIE, stolen)
    r = thief.get("/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert thief.post("/watches", data={"csrf": csrf, "kind": "keyword", "value": "x"}).status_code == 401
    # Another session of the same key is not ended by this logout.
    login(c, world["admin"])
    assert c.get("/alerts").status_code == 200
    with world["db"].session() as sess:
        assert [a.action for a in sess.query(AuditLog).filter_by(object_type="session")] == [
            "session.start",
            "session.end",
            "session.start",
        ]


def test_revoking_a_key_ends_the_console_sessions_made_with_it(world: dict[str, Any]) -> None:
    c = world["client"]
    login(c, world["admin"])
    assert c.get("/alerts").status_code == 200
    with world["db"].session() as sess:
        from core.models import ApiKey

        key_id = sess.query(ApiKey).filter_by(role="tenant_admin").one().id
    revoke_key(world["db"], str(key_id))
    r = c.get("/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_failed_logins_are_limited_per_client_address(world: dict[str, Any]) -> None:
    c = world["client"]
    codes = []
    for i in range(12):
        page = c.get("/login")
        codes.append(
            c.post("/login", data={"csrf": _csrf(page.text), "api_key": f"lsk_wrong{i}"}).status_code
        )
    assert codes[0] == 401 and codes[-1] == 429
    # Failures on the API and on the login form are counted together, per address.
    other = TestClient(c.app, client=("203.0.113.9", 50000))
    for i in range(AUTH_FAILURE_BURST):
        assert other.get("/api/v1/me", headers={"Authorization": f"Bearer lsk_no{i}"}).status_code == 401
    page = other.get("/login")
    r = other.post("/login", data={"csrf": _csrf(page.text), "api_key": world["admin"]})
    assert r.status_code == 429 and "Too many failed attempts" in r.text


def test_removing_a_records_watch_needs_a_confirmation(world: dict[str, Any]) -> None:
    c, db = world["client"], world["db"]
    csrf = login(c, world["admin"])
    listing = c.get("/watches").text
    assert f'href="/watches/{world["watch"]}/remove"' in listing
    assert f'action="/watches/{world["watch"]}/remove"' not in listing  # no one-click removal
    confirm = c.get(f"/watches/{world['watch']}/remove")
    assert confirm.status_code == 200 and "2 registered records" in confirm.text
    assert "hashing the records again" in confirm.text and 'name="confirm"' in confirm.text
    r = c.post(f"/watches/{world['watch']}/remove", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with db.session() as sess:
        assert sess.query(RecordHash).count() == 2  # not confirmed: nothing removed
    assert "was not removed" in c.get(r.headers["location"]).text
    r = c.post(
        f"/watches/{world['watch']}/remove", data={"csrf": csrf, "confirm": "yes"}, follow_redirects=False
    )
    assert r.status_code == 303
    with db.session() as sess:
        assert sess.query(RecordHash).count() == 0
        assert sess.query(AuditLog).filter_by(action="watch.remove").count() == 1


def test_unsubscribing_in_the_console_needs_a_confirmation(world: dict[str, Any]) -> None:
    c, db = world["client"], world["db"]
    csrf = login(c, world["operator"])
    listing = c.get("/subscriptions?tenant=acme").text
    assert f'href="/subscriptions/{world["sub"]}/remove?tenant=acme"' in listing
    confirm = c.get(f"/subscriptions/{world['sub']}/remove?tenant=acme")
    assert "soc@acme.example" in confirm.text and 'action="/subscriptions/' in confirm.text
    c.post(f"/subscriptions/{world['sub']}/remove?tenant=acme", data={"csrf": csrf})
    with db.session() as sess:
        assert sess.query(Subscription).count() == 1
    r = c.post(f"/subscriptions/{world['sub']}/remove?tenant=acme", data={"csrf": csrf, "confirm": "yes"})
    assert r.status_code == 200 and f"Subscription {world['sub']} removed" in r.text
    with db.session() as sess:
        assert sess.query(Subscription).count() == 0
        assert sess.query(AuditLog).filter_by(action="subscription.remove").count() == 1


def test_removing_a_source_in_the_console_needs_a_confirmation(world: dict[str, Any]) -> None:
    from leaksentinel.actions import sources

    if not hasattr(sources, "remove_source"):
        pytest.skip("actions.sources.remove_source is not there yet (another helper writes it)")
    sources.add_source(world["db"], "pb", "pastebin", "http://127.0.0.1:9", every="5m")
    c = world["client"]
    csrf = login(c, world["operator"])
    assert 'href="/sources/pb/remove"' in c.get("/sources").text
    assert "postings and alerts it found stay" in c.get("/sources/pb/remove").text
    assert "not removed" in c.post("/sources/pb/remove", data={"csrf": csrf}).text
    assert len(sources.list_sources(world["db"])) == 1
    r = c.post("/sources/pb/remove", data={"csrf": csrf, "confirm": "yes"})
    assert "removed" in r.text and sources.list_sources(world["db"]) == []
