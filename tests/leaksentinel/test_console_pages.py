"""The web console through FastAPI's TestClient: login and sessions, every page for its role, tenant
isolation (404), triage rights, CSRF, the strict CSP, and hostile posting text rendered inert."""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Alert, Delivery, Subscription
from core.settings import load_settings
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.api.app import SECURITY_HEADERS, create_app
from leaksentinel.company_hash import hash_csv
from leaksentinel.console.routes import highlight
from leaksentinel.console.session import SESSION_COOKIE, ConsoleSigner
from leaksentinel.scanning import scan_paths

CSP = SECURITY_HEADERS["Content-Security-Policy"]
HOSTILE = (
    "<script>alert(1)</script>\n"
    "<img src=x onerror=alert(2)>\n"
    '<a href="javascript:alert(3)">click me</a>\n'
    "mail jane@acme.example and visit http://evil.example/x from 203.0.113.7\n"
)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client: TestClient, key: str) -> str:
    """Log in through the form; returns the session's CSRF token for later POSTs."""
    client.cookies.clear()
    page = client.get("/login")
    assert page.status_code == 200
    r = client.post("/login", data={"csrf": _csrf(page.text), "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf(client.get(r.headers["location"]).text)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    settings = load_settings()
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    globex = add_tenant(db, "globex", ["globex.example"], [])
    key = load_or_create_key(settings.key_path)
    for tenant, email in (("acme", "jane@acme.example"), ("globex", "bob@globex.example")):
        csv_path = tmp_path / f"{tenant}.csv"
        csv_path.write_text(f"id,email\n{tenant}-1,{email}\n")
        jsonl = tmp_path / f"{tenant}.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id")))
        add_records(db, tenant, jsonl, settings=settings)
    acme_leak = tmp_path / "acme-leak.txt"
    acme_leak.write_text("combo list\njane@acme.example:hunter2\n" + HOSTILE)
    globex_leak = tmp_path / "globex-leak.txt"
    globex_leak.write_text("dump\nbob@globex.example:letmein\n")
    list(scan_paths(settings, [str(acme_leak), str(globex_leak)], store=True))
    try:  # the store pipeline may not index postings yet: index them here (harmless if it does)
        from core.search import open_backend, reindex

        backend = open_backend(settings)
        reindex(db, backend)
        backend.close()
    except ImportError:
        pass
    add_source(db, "paste-main", "pastebin", "http://127.0.0.1:9/", every="5m")
    alerts = {a["tenant"]: a for a in list_alerts(db)}
    with db.session() as sess:
        posting_id = sess.get(Alert, alerts["acme"]["id"]).posting_id  # type: ignore[union-attr]
    return {
        "client": TestClient(create_app(settings)),
        "settings": settings,
        "db": db,
        "admin": acme["api_key"],
        "globex_admin": globex["api_key"],
        "viewer": add_key(db, "tenant_viewer", "acme")["api_key"],
        "analyst": add_key(db, "analyst")["api_key"],
        "operator": add_key(db, "operator")["api_key"],
        "acme_alert": alerts["acme"]["id"],
        "globex_alert": alerts["globex"]["id"],
        "posting": posting_id,
    }


def _status(world: dict[str, Any], alert_id: int) -> str:
    with world["db"].session() as sess:
        return str(sess.get(Alert, alert_id).status)


def test_login_sets_signed_cookie_and_logout_ends_it(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/alerts", follow_redirects=False).headers["location"] == "/login"
    page = client.get("/login")
    bad = client.post("/login", data={"csrf": _csrf(page.text), "api_key": "lsk_nope"})
    assert bad.status_code == 401 and "not valid" in bad.text
    r = client.post(
        "/login", data={"csrf": _csrf(page.text), "api_key": world["admin"]}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert world["admin"] not in cookie and world["admin"][4:20] not in cookie
    assert client.get("/", follow_redirects=False).headers["location"] == "/alerts"
    csrf = _csrf(client.get("/alerts").text)
    assert client.post("/logout", data={}).status_code == 403  # CSRF missing
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/alerts", follow_redirects=False).headers["location"] == "/login"


def test_login_form_needs_its_csrf_token(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    r = client.post("/login", data={"api_key": world["admin"]}, follow_redirects=False)
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_secret_is_private_and_forged_or_expired_sessions_are_refused(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    secret = world["settings"].home / "console.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    login(client, world["operator"])
    good = client.cookies[SESSION_COOKIE]
    key_id, expires, nonce, mac = good.split(".")
    for forged in (
        f"1.{expires}.{nonce}.{mac}",  # another key id, same MAC
        ConsoleSigner(b"x" * 64).issue(int(key_id)),  # signed with another secret
        ConsoleSigner(secret.read_bytes()).issue(int(key_id), now=0),  # expired in 1970
        "garbage",
    ):
        client.cookies.set(SESSION_COOKIE, forged)
        assert client.get("/sources", follow_redirects=False).headers["location"] == "/login"


@pytest.mark.parametrize(
    ("role", "home", "pages"),
    [
        ("admin", "/alerts", ["/alerts", "/alerts?status=new&severity=high", "/alerts/{acme_alert}",
                              "/watches", "/subscriptions", "/howto"]),
        ("viewer", "/alerts", ["/alerts", "/alerts/{acme_alert}", "/watches", "/subscriptions", "/howto"]),
        ("analyst", "/search", ["/search", "/search?q=hunter2", "/search?q=jane@acme.example",
                                "/postings/{posting}", "/alerts", "/sources", "/howto"]),
        ("operator", "/sources", ["/sources", "/sources/paste-main/jobs", "/deliveries?status=dead",
                                  "/deliveries", "/alerts?tenant=acme", "/alerts/{globex_alert}",
                                  "/watches?tenant=acme", "/subscriptions?tenant=globex", "/search?q=hunter2",
                                  "/postings/{posting}"]),
    ],
)  # fmt: skip
def test_every_page_renders_for_its_role_with_the_strict_csp(
    world: dict[str, Any], role: str, home: str, pages: list[str]
) -> None:
    client: TestClient = world["client"]
    login(client, world[role])
    assert client.get("/", follow_redirects=False).headers["location"] == home
    for page in pages:
        r = client.get(page.format(**world))
        assert r.status_code == 200, (page, r.text[:300])
        assert r.headers["content-security-policy"] == CSP, page
        assert r.headers["x-frame-options"] == "DENY"
        assert "<script" not in r.text.lower() and "style=" not in r.text.lower(), page
    css = client.get("/static/console.css")
    assert css.status_code == 200 and css.headers["content-security-policy"] == CSP
    for page in ("/login", "/alerts/999999"):
        assert client.get(page).headers["content-security-policy"] == CSP


def test_alert_detail_shows_findings_lineage_sightings_and_inert_evidence(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    login(client, world["admin"])
    html = client.get(f"/alerts/{world['acme_alert']}").text
    assert "1 record, 1 new" in html
    assert "acme-1" in html and "jane@acme.example:hunter2" in html  # in the evidence <pre>
    assert "acme-leak.txt" in html  # the sighting
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert 'href="javascript:' not in html and "http://evil.example/x" in html
    assert 'href="http://evil.example' not in html


def test_cross_tenant_alert_is_a_404_page(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    csrf = login(client, world["admin"])
    r = client.get(f"/alerts/{world['globex_alert']}")
    assert r.status_code == 404 and "Not found" in r.text and "globex" not in r.text
    assert r.headers["content-security-policy"] == CSP
    r = client.post(f"/alerts/{world['globex_alert']}/ack", data={"csrf": csrf})
    assert r.status_code == 404
    assert _status(world, world["globex_alert"]) == "new"
    assert "globex" not in client.get("/alerts").text
    assert client.get("/alerts/not-a-number").status_code == 404
    assert client.get("/watches?tenant=globex").text.count("bob@") == 0


def test_admin_triages_and_viewer_cannot(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    alert_id = world["acme_alert"]
    csrf = login(client, world["viewer"])
    page = client.get(f"/alerts/{alert_id}").text
    assert "Acknowledge" not in page and f"/alerts/{alert_id}/ack" not in page
    assert client.post(f"/alerts/{alert_id}/ack", data={"csrf": csrf}).status_code == 403
    assert _status(world, alert_id) == "new"

    csrf = login(client, world["admin"])
    assert "Acknowledge" in client.get(f"/alerts/{alert_id}").text
    assert client.post(f"/alerts/{alert_id}/ack", data={}).status_code == 403  # CSRF missing
    assert client.post(f"/alerts/{alert_id}/ack", data={"csrf": "0" * 64}).status_code == 403
    assert _status(world, alert_id) == "new"
    r = client.post(f"/alerts/{alert_id}/ack", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/alerts/{alert_id}"
    page = client.get(r.headers["location"]).text
    assert "is now acked" in page and "status-acked" in page
    assert _status(world, alert_id) == "acked"
    assert "is now acked" not in client.get(f"/alerts/{alert_id}").text  # the flash shows once
    client.post(f"/alerts/{alert_id}/false-positive", data={"csrf": csrf, "reason": "a test account"})
    assert _status(world, alert_id) == "false_positive"
    assert str(alert_id) in client.get("/alerts?status=false_positive").text
    assert client.get("/alerts?status=bogus").status_code == 400


def test_roles_are_refused_pages_of_other_roles(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    login(client, world["admin"])
    for page in ("/search?q=x", "/postings/{posting}", "/sources", "/deliveries"):
        assert client.get(page.format(**world)).status_code == 403, page
    csrf = login(client, world["analyst"])
    for page in ("/watches", "/subscriptions", "/deliveries"):
        assert client.get(page).status_code == 403, page
    assert client.post("/sources/paste-main/pause", data={"csrf": csrf}).status_code == 403
    assert "Pause" not in client.get("/sources").text


def test_watches_and_subscriptions_forms(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    csrf = login(client, world["admin"])
    r = client.post("/watches", data={"csrf": csrf, "kind": "keyword", "value": "Project <Falcon>"})
    assert r.status_code == 200 and "Project &lt;Falcon&gt;" in r.text
    assert "Not added" in client.post("/watches", data={"csrf": csrf, "kind": "domain", "value": "x"}).text
    assert client.post("/watches", data={"kind": "keyword", "value": "y"}).status_code == 403
    r = client.post(
        "/subscriptions",
        data={
            "csrf": csrf,
            "channel": "webhook",
            "target": "http://127.0.0.1:9/hook",
            "min_severity": "high",
        },
    )
    assert r.status_code == 200 and "Signing secret" in r.text and "http://127.0.0.1:9/hook" in r.text
    r = client.post("/subscriptions", data={"csrf": csrf, "channel": "email", "target": "not-an-address"})
    assert "Not added" in r.text
    csrf = login(client, world["viewer"])
    page = client.get("/subscriptions").text
    assert "127.0.0.1:9/hook" in page and "Add a subscription" not in page
    assert client.post("/watches", data={"csrf": csrf, "kind": "keyword", "value": "z"}).status_code == 403
    csrf = login(client, world["operator"])
    assert "pick one" in client.get("/watches").text
    r = client.post("/watches?tenant=globex", data={"csrf": csrf, "kind": "keyword", "value": "gx"})
    assert r.status_code == 200 and "gx" in r.text


def test_search_page_highlights_facets_and_pivots(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    login(client, world["analyst"])
    html = client.get("/search", params={"q": "hunter2"}).text
    assert "<mark>hunter2</mark>" in html and "local" in html
    assert re.search(r"\d{4}-\d{2}-\d{2}</a>", html)  # a day facet
    assert f'href="/postings/{world["posting"]}"' in html
    assert "<script>alert" not in html
    posting = client.get(f"/postings/{world['posting']}").text
    assert 'href="/search?q=jane%40acme.example"' in posting  # a selector pivot
    assert 'href="/search?q=203.0.113.7"' in posting
    assert "&lt;img src=x onerror=alert(2)&gt;" in posting and 'href="javascript:' not in posting
    assert client.get("/postings/999999").status_code == 404


def test_search_falls_back_to_sql_without_core_search(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "core.search", None)  # import fails: the console degrades
    client: TestClient = world["client"]
    login(client, world["analyst"])
    html = client.get("/search", params={"q": "hunter2"}).text
    assert "<mark>hunter2</mark>" in html and "1 posting match" in html
    assert 'href="/search?q=jane%40acme.example"' in client.get(f"/postings/{world['posting']}").text


def test_operator_manages_sources_and_dead_letters(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    csrf = login(client, world["operator"])
    r = client.post("/sources/paste-main/pause", data={"csrf": csrf})
    assert "paste-main paused" in r.text and "state-off" in r.text
    r = client.post(
        "/sources/paste-main/schedule", data={"csrf": csrf, "mode": "cron", "value": "*/10 * * * *"}
    )
    assert "now runs cron" in r.text
    r = client.post("/sources/paste-main/schedule", data={"csrf": csrf, "mode": "every", "value": "soon"})
    assert "Not changed" in r.text
    r = client.post("/sources/paste-main/resume", data={"csrf": csrf})
    assert "resumed" in r.text and "state-on" in r.text
    assert "No crawl workers" in client.post("/sources/paste-main/run", data={"csrf": csrf}).text
    assert client.post("/sources/nope/pause", data={"csrf": csrf}).status_code == 404

    with world["db"].session() as sess:
        sub = Subscription(tenant_id=1, channel="webhook", target="http://127.0.0.1:9/", secret="s")
        sess.add(sub)
        sess.flush()
        sess.add(
            Delivery(
                alert_id=world["acme_alert"],
                subscription_id=sub.id,
                event_id="evt-dead-1",
                status="dead",
                attempts=8,
                last_error="connection refused",
            )
        )
    page = client.get("/deliveries?status=dead").text
    assert "connection refused" in page and "Redeliver selected" in page
    delivery_id = re.search(r'name="id" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post("/deliveries/retry", data={"csrf": csrf, "id": delivery_id})
    assert "1 deliveries put back" in r.text
    with world["db"].session() as sess:
        delivery = sess.get(Delivery, int(delivery_id))
        assert delivery is not None and delivery.status == "pending"


def test_highlight_escapes_everything_but_the_marks() -> None:
    out = highlight('<b onclick="x">[[<i>jane</i>]]</b> & [[unclosed')
    assert str(out) == (
        "&lt;b onclick=&#34;x&#34;&gt;<mark>&lt;i&gt;jane&lt;/i&gt;</mark>&lt;/b&gt; &amp; [[unclosed"
    )


def test_sources_page_says_why_the_last_run_failed(world: dict[str, Any]) -> None:
    from sqlalchemy import select

    from core.models import CrawlJob, Source, utcnow

    with world["db"].session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "paste-main"))
        assert source is not None
        source.last_status = "failed"
        source.last_run = utcnow()
        sess.add(
            CrawlJob(
                source_id=source.id,
                status="failed",
                finished_at=utcnow(),
                error="Connection was refused by other side: 111: Connection refused.",
            )
        )
    client: TestClient = world["client"]
    login(client, world["operator"])
    page = client.get("/sources").text
    assert "Connection was refused by other side: 111: Connection refused." in page
