"""The console's alert page and inbox (issue 15, points 1 and 2) through FastAPI's TestClient: a title
that says what and where, the leak URL at the top, severity with its reason, one row per leaked record
(masked, fields, with-password, new or seen before with a link), the excerpt with matched lines marked,
next steps, triage buttons offered by state with a reason, assignee, notes and the history; the inbox's
bulk actions and its kind/source/date filters; another tenant's alert is a 404 on every new route."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Alert, AlertEvent
from core.settings import load_settings
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.api.app import SECURITY_HEADERS, create_app
from leaksentinel.company_hash import hash_csv
from leaksentinel.scanning import scan_paths

CSP = SECURITY_HEADERS["Content-Security-Policy"]


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)


def login(client: TestClient, key: str) -> str:
    client.cookies.clear()
    page = client.get("/login")
    r = client.post("/login", data={"csrf": _csrf(page.text), "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf(client.get(r.headers["location"]).text)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    settings = load_settings()
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    add_tenant(db, "globex", ["globex.example"], [])
    key = load_or_create_key(settings.key_path)
    people = {
        "acme": "id,email\nacme-1,jane@acme.example\nacme-2,mark@acme.example\nacme-3,wei@acme.example\n",
        "globex": "id,email\nglobex-1,bob@globex.example\n",
    }
    for tenant, csv_text in people.items():
        csv_path = tmp_path / f"{tenant}.csv"
        csv_path.write_text(csv_text)
        jsonl = tmp_path / f"{tenant}.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id")))
        add_records(db, tenant, jsonl, settings=settings)
    first = tmp_path / "first-dump.txt"
    first.write_text("old list\n<b>bold</b> line\njane@acme.example\n")
    combo = tmp_path / "acme-combo.txt"
    combo.write_text(
        "header line\nfiller 1\nfiller 2\nfiller 3\nfiller 4\nfiller 5\n"
        "jane@acme.example:hunter2\nmark@acme.example:<script>alert(1)</script>\ntrailer\n"
    )
    theirs = tmp_path / "globex.txt"
    theirs.write_text("dump\nbob@globex.example:letmein\n")
    list(scan_paths(settings, [str(first)], store=True))
    list(scan_paths(settings, [str(combo), str(theirs)], store=True))
    alerts = list_alerts(db)
    acme_alerts = [a["id"] for a in alerts if a["tenant"] == "acme"]
    return {
        "client": TestClient(create_app(settings)),
        "db": db,
        "admin": acme["api_key"],
        "viewer": add_key(db, "tenant_viewer", "acme")["api_key"],
        "operator": add_key(db, "operator")["api_key"],
        "first": acme_alerts[0],
        "combo": acme_alerts[1],
        "globex": next(a["id"] for a in alerts if a["tenant"] == "globex"),
    }


def _status(world: dict[str, Any], alert_id: int) -> tuple[str, str | None, str | None]:
    with world["db"].session() as sess:
        row = sess.get(Alert, alert_id)
        assert row is not None
        return row.status, row.status_reason, row.assignee


def _buttons(page: str) -> list[str]:
    """The triage buttons the page offers (their formaction's last part)."""
    return re.findall(r'formaction="/alerts/\d+/([a-z-]+)"', page)


def test_alert_page_says_what_where_how_bad_and_what_to_do(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    login(client, world["admin"])
    r = client.get(f"/alerts/{world['combo']}")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    page = r.text
    assert "<script" not in page.lower().replace("&lt;script", "") and "style=" not in page.lower()
    title = re.search(r'<h1 id="alert-title">(.*?)</h1>', page, re.S)
    assert title and html.unescape(title.group(1)).startswith(
        "2 acme customer records with passwords on acme-combo.txt, first seen "
    )
    assert html.unescape(title.group(1)).endswith(", 1 sighting")
    # The leak's URL comes right after the title, before any table.
    url = re.search(r'id="leak-url">([^<]*)<', page)
    assert url and url.group(1).endswith("acme-combo.txt")
    assert page.index('id="leak-url"') < page.index('id="records"') < page.index('id="evidence"')
    assert re.search(r'id="severity-reason">high: 2 records with a password beside the email', page)
    # One row per record: masked values, the password flag, new or seen before (with the earlier alert).
    rows = re.findall(r'<tr class="record( with-password)?">(.*?)</tr>', page, re.S)
    assert len(rows) == 2 and all(flag for flag, _ in rows)
    by_key = {re.search(r"<code>([^<]+)</code>", body).group(1): body for _, body in rows}  # type: ignore[union-attr]
    assert "j***@acme.example" in by_key["acme-1"] and "m***@acme.example" in by_key["acme-2"]
    assert (
        f'seen before</span> in <a href="/alerts/{world["first"]}">alert {world["first"]}</a>'
        in by_key["acme-1"]
    )
    assert "tag-new" in by_key["acme-2"] and "seen before" not in by_key["acme-2"]
    assert "hunter2" not in "".join(by_key.values())
    # The excerpt: the lines around the matches, matched lines marked, hostile text inert.
    excerpt = re.search(r'<pre class="excerpt" id="posting-excerpt">(.*?)</pre>', page, re.S)
    assert excerpt
    marked = re.findall(r'<span class="ln">(\d+)</span><mark class="hit">(.*?)</mark>', excerpt.group(1))
    assert marked == [
        ("7", "jane@acme.example:hunter2"),
        ("8", "mark@acme.example:&lt;script&gt;alert(1)&lt;/script&gt;"),
    ]
    assert '<span class="ln">5</span>filler 4' in excerpt.group(1) and "header line" not in excerpt.group(1)
    assert '<span class="gap">' in excerpt.group(1)
    # Next steps for records with passwords, and the takedown step.
    steps = re.search(r'id="next-steps">(.*?)</section>', page, re.S)
    assert steps and "Reset the passwords" in steps.group(1) and "takedown" in steps.group(1)
    # Triage offered by a new alert's state, a reason field, the assignee and the notes forms.
    assert _buttons(page) == ["ack", "resolve", "false-positive"]
    assert (
        'name="reason"' in page
        and 'name="assignee"' in page
        and f'action="/alerts/{world["combo"]}/notes"' in page
    )


def test_triage_on_the_page_keeps_a_history_with_reasons(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    alert = world["combo"]
    csrf = login(client, world["admin"])

    def post(path: str, **form: str) -> str:
        r = client.post(f"/alerts/{alert}{path}", data={"csrf": csrf, **form}, follow_redirects=False)
        assert r.status_code == 303, (path, r.status_code, r.text[:300])
        return client.get(r.headers["location"].split("#")[0]).text

    page = post("/reopen")
    assert "Nothing changed: alert" in page and "cannot be reopened" in page
    assert _status(world, alert)[0] == "new"
    page = post("/ack")
    assert "is now acked" in page and _buttons(page) == ["resolve", "false-positive", "reopen"]
    page = post("/resolve", reason="   ")
    assert "Nothing changed: give a reason to resolve alert" in page and _status(world, alert)[0] == "acked"
    page = post("/false-positive")
    assert "Nothing changed: give a reason" in page and _status(world, alert)[0] == "acked"
    page = post("/assign", assignee="ana@acme.example")
    assert 'id="assignee">ana@acme.example<' in page and "Unassign" in page
    page = post("/notes", text="called the customer\r\nreset requested")
    page = post("/resolve", reason="passwords reset <b>today</b>")
    assert _status(world, alert) == ("resolved", "passwords reset <b>today</b>", "ana@acme.example")
    assert "passwords reset &lt;b&gt;today&lt;/b&gt;" in page and _buttons(page) == ["reopen"]
    page = post("/assign", clear="yes")
    assert 'id="assignee">nobody<' in page
    history = re.search(r'id="history">(.*?)</section>', page, re.S)
    assert history
    events = re.findall(r'<li class="event event-(\w+)">', history.group(1))
    assert events == ["status", "assign", "note", "status", "assign"]
    text = html.unescape(re.sub(r"<[^>]+>", " ", history.group(1)))
    assert "new → acked" in re.sub(r"\s+", " ", text) and "acked → resolved" in re.sub(r"\s+", " ", text)
    assert "called the customer\nreset requested" in text and ":tenant_admin:acme" in text
    with world["db"].session() as sess:
        assert sess.query(AlertEvent).filter_by(alert_id=alert).count() == 5


def test_viewers_see_the_history_but_no_forms(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    alert = world["combo"]
    csrf = login(client, world["admin"])
    client.post(f"/alerts/{alert}/notes", data={"csrf": csrf, "text": "looked at it"})
    csrf = login(client, world["viewer"])
    page = client.get(f"/alerts/{alert}").text
    assert "looked at it" in page and _buttons(page) == [] and 'name="assignee"' not in page
    assert 'type="checkbox"' not in client.get("/alerts").text
    for path, form in (("/notes", {"text": "x"}), ("/assign", {"assignee": "me"})):
        assert client.post(f"/alerts/{alert}{path}", data={"csrf": csrf, **form}).status_code == 403
    r = client.post("/alerts/bulk", data={"csrf": csrf, "ids": [str(alert)], "action": "ack"})
    assert r.status_code == 403 and _status(world, alert)[0] == "new"


def test_inbox_bulk_actions(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    first, combo = world["first"], world["combo"]
    csrf = login(client, world["admin"])
    inbox = client.get("/alerts?kind=record").text
    assert f'name="ids" value="{first}"' in inbox and f'name="ids" value="{combo}"' in inbox
    back = html.unescape(re.search(r'name="back" value="([^"]*)"', inbox).group(1))  # type: ignore[union-attr]
    assert back == "/alerts?kind=record"
    client.post(f"/alerts/{first}/ack", data={"csrf": csrf})

    def bulk(**form: Any) -> Any:
        return client.post("/alerts/bulk", data={"csrf": csrf, "back": back, **form}, follow_redirects=False)

    r = bulk(ids=[str(first), str(combo)], action="ack")
    assert r.status_code == 303 and r.headers["location"] == "/alerts?kind=record"
    flash = client.get(r.headers["location"]).text
    assert (
        "1 alert changed (ack)" in flash
        and f"Skipped, their state does not allow it: {first} (acked)" in flash
    )
    assert _status(world, combo)[0] == "acked"
    r = bulk(ids=[str(first), str(combo)], action="resolve")
    assert "give a reason" in client.get(r.headers["location"]).text and _status(world, combo)[0] == "acked"
    r = bulk(ids=[str(first), str(combo)], action="resolve", reason="handled in ticket 42")
    assert _status(world, first)[:2] == _status(world, combo)[:2] == ("resolved", "handled in ticket 42")
    bulk(ids=[str(first), str(combo)], action="assign", assignee="ana")
    assert _status(world, first)[2] == _status(world, combo)[2] == "ana"
    assert bulk(action="ack").headers["location"] == "/alerts?kind=record"  # nothing ticked: nothing done
    # Only pages of the console are places to go back to.
    r = bulk(ids=[str(combo)], action="reopen", back="https://evil.example/alerts")
    assert r.headers["location"] == "/alerts"
    # Another tenant's alert among the ticked ones: a 404 page, and nothing changes.
    r = bulk(ids=[str(first), str(world["globex"])], action="reopen")
    assert r.status_code == 404 and "globex" not in r.text
    assert _status(world, first)[0] == "resolved" and _status(world, world["globex"])[0] == "new"
    assert client.post("/alerts/bulk", data={"ids": [str(first)], "action": "reopen"}).status_code == 403


def test_inbox_filters_by_kind_source_and_date(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    login(client, world["admin"])

    def listed(query: str) -> set[int]:
        r = client.get(f"/alerts?{query}")
        assert r.status_code == 200, (query, r.text[:300])
        return {int(x) for x in re.findall(r'<td><a href="/alerts/(\d+)">\d+</a></td>', r.text)}

    both = {world["first"], world["combo"]}
    assert listed("") == both and listed("kind=record") == both and listed("kind=secret") == set()
    assert listed("source=local") == both and listed("source=pastebin") == set()
    assert listed("since=2000-01-01&until=2999-12-31") == both and listed("until=2000-01-01") == set()
    page = client.get("/alerts").text
    assert '<option value="local">local</option>' in page  # the source picker lists the alerts' sources
    assert 'type="date" id="since"' in page and '<option value="secret">secret</option>' in page
    assert client.get("/alerts?kind=bogus").status_code == 400
    assert client.get("/alerts?since=yesterday").status_code == 400


def test_another_tenants_alert_is_a_404_on_every_new_page_route(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    theirs = world["globex"]
    csrf = login(client, world["admin"])
    assert client.get(f"/alerts/{theirs}").status_code == 404
    for path, form in (
        ("/notes", {"text": "mine"}),
        ("/assign", {"assignee": "me"}),
        ("/resolve", {"reason": "x"}),
        ("/false-positive", {"reason": "x"}),
        ("/reopen", {}),
    ):
        r = client.post(f"/alerts/{theirs}{path}", data={"csrf": csrf, **form})
        assert r.status_code == 404 and "globex" not in r.text, path
    r = client.post(
        "/alerts/bulk?tenant=globex", data={"csrf": csrf, "ids": [str(world["combo"])], "action": "ack"}
    )
    assert r.status_code == 404
    assert client.get("/alerts?tenant=globex").status_code == 404
    with world["db"].session() as sess:
        assert sess.query(AlertEvent).count() == 0
    assert _status(world, theirs) == ("new", None, None)


def test_operator_triages_any_tenants_alert_and_the_stylesheet_is_served(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    csrf = login(client, world["operator"])
    page = client.get("/alerts?tenant=globex").text
    assert 'action="/alerts/bulk?tenant=globex"' in page
    r = client.post(
        "/alerts/bulk?tenant=globex",
        data={"csrf": csrf, "ids": [str(world["globex"])], "action": "false-positive", "reason": "test data"},
    )
    assert r.status_code == 200 and _status(world, world["globex"])[:2] == ("false_positive", "test data")
    css = client.get("/static/alert.css")
    assert css.status_code == 200 and "pre.excerpt" in css.text
    assert '<link rel="stylesheet" href="/static/alert.css">' in client.get(f"/alerts/{world['combo']}").text


def test_the_page_downloads_the_signed_evidence(world: dict[str, Any], cli: Any, tmp_path: Path) -> None:
    client: TestClient = world["client"]
    login(client, world["viewer"])
    page = client.get(f"/alerts/{world['combo']}").text
    assert f'id="evidence-zip" href="/alerts/{world["combo"]}/evidence"' in page
    r = client.get(f"/alerts/{world['combo']}/evidence")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert f'filename="alert-{world["combo"]}-evidence.zip"' in r.headers["content-disposition"]
    zip_path = tmp_path / "e.zip"
    zip_path.write_bytes(r.content)
    assert cli("evidence", "verify", str(zip_path)).code == 0
    assert client.get(f"/alerts/{world['globex']}/evidence").status_code == 404
