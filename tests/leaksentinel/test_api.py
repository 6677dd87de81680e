"""The HTTP API: every endpoint, keys and roles, cross-tenant access (404, never 403), limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from core.db import open_database
from core.hashing import load_or_create_key
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
    """Runs on SQLite and (when configured) PostgreSQL."""
    settings = load_settings(api_rate_per_s=1000.0, api_burst=1000)
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    other = add_tenant(db, "other", ["other.example"], [])
    operator = add_key(db, "operator")["api_key"]
    analyst = add_key(db, "analyst")["api_key"]
    viewer = add_key(db, "tenant_viewer", "acme")["api_key"]
    client = TestClient(create_app(settings))
    key = load_or_create_key(settings.key_path)
    for tenant, email in (("acme", "jane@acme.example"), ("other", "bob@other.example")):
        csv_path = tmp_path / f"{tenant}.csv"
        csv_path.write_text(f"id,email\n{tenant}-1,{email}\n")
        body = "".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id"))
        r = client.post(
            f"/api/v1/watches/records?tenant={tenant}",
            content=body,
            headers=_auth(operator) | {"Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 201, r.text
    leak = tmp_path / "leak.txt"
    leak.write_text("jane@acme.example:pw\nbob@other.example:pw\n")
    list(scan_paths(settings, [str(leak)], store=True))
    return {
        "client": client,
        "acme": acme["api_key"],
        "other": other["api_key"],
        "operator": operator,
        "analyst": analyst,
        "viewer": viewer,
        "settings": settings,
    }


def test_keys_are_required_and_checked(world: dict[str, Any]) -> None:
    c = world["client"]
    assert c.get("/api/v1/alerts").status_code == 401
    assert c.get("/api/v1/alerts", headers=_auth("lsk_nope")).status_code == 401
    assert c.get("/api/v1/alerts", headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.get("/api/v1/me", headers=_auth(world["acme"])).json() == {
        "role": "tenant_admin",
        "tenant": "acme",
    }
    assert c.get("/health").json() == {"status": "ok"}


def _scope_calls(dependant: Any) -> set[str]:
    """Names of the scoping dependencies a route declares (searched through its sub-dependencies)."""
    found: set[str] = set()
    for dep in dependant.dependencies:
        name = getattr(dep.call, "__name__", "")
        if name in ("picked_tenant", "scoped_alert"):
            found.add(name)
        found |= _scope_calls(dep)
    return found


#: Object ids in paths: another tenant's object in any of them is a 404.
TENANT_OBJECTS = {"alert_id", "watch_id", "subscription_id", "sub_id"}
#: Routes any key (or no key) may call: their answers are checked for the other tenant's data instead.
OPEN = {
    ("GET", "/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs-assets/{name}"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/tenants"),
    ("POST", "/api/v1/tips"),
    ("POST", "/api/v1/scan"),
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/howto"),
}
#: Valid bodies, so that what answers is the scope or role check and not the body's validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/tenants"): {"name": "newco"},
    ("POST", "/api/v1/watches"): {"kind": "keyword", "value": "x"},
    ("POST", "/api/v1/subscriptions"): {"email": "soc@acme.example"},
    ("POST", "/api/v1/sources"): {"name": "pb2", "kind": "pastebin", "url": "http://127.0.0.1:9"},
    ("PATCH", "/api/v1/sources/{name}"): {"pause": True},
    ("POST", "/api/v1/deliveries/retry"): {"all_dead": True},
}
#: Safe values for path parameters that are not tenant objects.
OTHER_PARAMS = {"name": "pb", "posting_id": "1", "query_id": "1"}


def _login_console(client: TestClient, key: str) -> str:
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"csrf": token.group(1), "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/howto").text)
    assert found
    return found.group(1)


def test_every_route_answers_404_for_another_tenants_objects(world: dict[str, Any]) -> None:
    """Each route of the app (API and console, every method) is called by tenant acme with tenant
    other's objects in its path and ``?tenant=other``: each answers 404 (403 where the role is never
    enough), and the open routes show nothing of the other tenant."""
    c, acme, op = world["client"], world["acme"], world["operator"]
    app = c.app
    sub = c.post(
        "/api/v1/subscriptions?tenant=other",
        json={"webhook": "http://127.0.0.1:9/hook-of-other"},
        headers=_auth(op),
    ).json()
    c.post(
        "/api/v1/sources",
        json={"name": "pb", "kind": "pastebin", "url": "http://127.0.0.1:9"},
        headers=_auth(op),
    )
    theirs = {
        "alert_id": c.get("/api/v1/alerts?tenant=other", headers=_auth(op)).json()[0]["id"],
        "watch_id": c.get("/api/v1/watches?tenant=other", headers=_auth(op)).json()[0]["id"],
        "subscription_id": sub["id"],
        "sub_id": sub["id"],
    }
    console = TestClient(app)
    csrf = _login_console(console, acme)
    before = c.get("/api/v1/audit", headers=_auth(op)).json()[0]["id"]
    seen = 0
    for context in iter_route_contexts(app.routes):  # every route, routers' included
        route, template = context.original_route, str(context.path)
        methods = sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"})
        if not methods:
            assert template == "/static", template  # the one mount: public CSS
            continue
        params = {p.strip("{}").split(":")[0] for p in template.split("/") if p.startswith("{")}
        unknown = params - TENANT_OBJECTS - set(OTHER_PARAMS) - {"action"}
        assert not unknown or template.startswith("/docs-assets"), (template, unknown)
        path = template
        for param in params:
            value = theirs.get(param) or OTHER_PARAMS.get(param)
            if param == "action":
                value = "ack" if "/alerts/" in path else "pause"
            if template.startswith("/docs-assets"):
                value = "swagger-ui.css"
            path = path.replace("{" + param + "}", str(value))
        scoped = _scope_calls(route.dependant) if hasattr(route, "dependant") else set()
        for method in methods:
            seen += 1
            key = (method, template)
            url = f"{path}?tenant=other&q=x&format=stix"
            if template.startswith("/api/") or template in (
                "/metrics",
                "/health",
                "/healthz",
                "/readyz",
                "/openapi.json",
            ):
                body = BODIES.get(key, {}) if method != "GET" else None
                r = c.request(method, url, headers=_auth(acme), json=body)
            else:
                form = {"csrf": csrf, "confirm": "yes", "kind": "keyword", "value": "x"}
                if key == ("POST", "/logout"):
                    continue  # would end this session; logout has its own tests
                r = console.request(
                    method, url, data=form if method == "POST" else None, follow_redirects=False
                )
            if key in OPEN:
                assert r.status_code < 500, (key, r.status_code)
                assert "other.example" not in r.text and "hook-of-other" not in r.text, key
            elif params & TENANT_OBJECTS or scoped:
                assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
            else:
                assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
    assert seen >= 50
    # Nothing of the other tenant changed: no audit entry since, its watch and subscription still there.
    assert c.get("/api/v1/audit", headers=_auth(op)).json()[0]["id"] == before
    assert [s["id"] for s in c.get("/api/v1/subscriptions?tenant=other", headers=_auth(op)).json()] == [
        sub["id"]
    ]
    # The control: the same calls on acme's own objects are not 404.
    own = c.get("/api/v1/alerts", headers=_auth(acme)).json()[0]["id"]
    assert c.get(f"/api/v1/alerts/{own}", headers=_auth(acme)).status_code == 200
    assert console.get(f"/alerts/{own}").status_code == 200
    assert c.get("/api/v1/watches?tenant=acme", headers=_auth(acme)).status_code == 200
    # Scanning with a tenant key only reveals that tenant's findings.
    text = "jane@acme.example and bob@other.example"
    found = c.post("/api/v1/scan", content=text, headers=_auth(acme) | {"Content-Type": "text/plain"}).json()
    assert {f["tenant"] for f in found} == {"acme"}


def test_roles(world: dict[str, Any]) -> None:
    c = world["client"]
    viewer, analyst, operator, acme = world["viewer"], world["analyst"], world["operator"], world["acme"]
    alert_id = c.get("/api/v1/alerts", headers=_auth(viewer)).json()[0]["id"]
    assert c.post(f"/api/v1/alerts/{alert_id}/ack", headers=_auth(viewer)).status_code == 403
    assert c.post(f"/api/v1/alerts/{alert_id}/ack", headers=_auth(acme)).json()["status"] == "acked"
    assert c.post("/api/v1/tenants", json={"name": "x"}, headers=_auth(acme)).status_code == 403
    assert c.post("/api/v1/tenants", json={"name": "newco"}, headers=_auth(operator)).status_code == 201
    assert len(c.get("/api/v1/alerts", headers=_auth(analyst)).json()) == 2
    assert c.get("/api/v1/sources", headers=_auth(acme)).status_code == 403
    assert c.get("/api/v1/deliveries", headers=_auth(analyst)).status_code == 403
    posting = c.get(f"/api/v1/alerts/{alert_id}", headers=_auth(acme)).json()
    assert posting["findings"] and "jane@acme.example" not in json.dumps(posting)


def test_operator_endpoints(world: dict[str, Any]) -> None:
    c, op = world["client"], world["operator"]
    r = c.post(
        "/api/v1/sources",
        json={"name": "pb", "kind": "pastebin", "url": "http://127.0.0.1:9", "every": "5m"},
        headers=_auth(op),
    )
    assert r.status_code == 201, r.text
    assert (
        c.post(
            "/api/v1/sources",
            json={"name": "bad", "kind": "pastebin", "url": "file:///etc"},
            headers=_auth(op),
        ).status_code
        == 422
    )
    assert c.patch("/api/v1/sources/pb", json={"pause": True}, headers=_auth(op)).json()["enabled"] is False
    assert c.get("/api/v1/sources/pb/jobs", headers=_auth(op)).json() == []
    assert c.post("/api/v1/sources/pb/crawl", headers=_auth(op)).status_code == 503  # no workers here
    assert c.get("/api/v1/sources/nope/jobs", headers=_auth(op)).status_code == 404
    assert c.get("/api/v1/deliveries", headers=_auth(op)).json() == []
    assert (
        c.post("/api/v1/deliveries/retry", json={"all_dead": True}, headers=_auth(op)).json()["retried"] == 0
    )
    postings = c.get("/api/v1/postings/1", headers=_auth(op)).json()
    assert "jane@acme.example" in postings["text"]  # analysts and operators see the evidence
    assert c.get("/api/v1/postings/999", headers=_auth(op)).status_code == 404
    metrics = c.get("/metrics", headers=_auth(op))
    assert metrics.status_code == 200 and "leaksentinel_crawl_runs_total" in metrics.text
    assert 'leaksentinel_alerts{status="new"} 2' in metrics.text
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers=_auth(world["acme"])).status_code == 403


def test_tip_line_is_public_and_rate_limited(world: dict[str, Any]) -> None:
    c = world["client"]
    r = c.post("/api/v1/tips", json={"text": "leak of jane@acme.example:pw", "note": "from a forum"})
    assert r.status_code == 202, r.text
    assert c.post("/api/v1/tips", json={}).status_code == 422
    codes = [c.post("/api/v1/tips", json={"text": f"t{i}"}).status_code for i in range(10)]
    assert 429 in codes


def test_oversized_and_malformed_bodies(world: dict[str, Any]) -> None:
    settings = world["settings"].with_(api_max_body_bytes=10_000)
    c = TestClient(create_app(settings))
    big = "x" * 20_000
    r = c.post("/api/v1/scan", content=big, headers=_auth(world["operator"]) | {"Content-Type": "text/plain"})
    assert r.status_code == 413
    bad = c.post(
        "/api/v1/watches/records?tenant=acme",
        content="not json\n",
        headers=_auth(world["operator"]) | {"Content-Type": "application/x-ndjson"},
    )
    assert bad.status_code == 422
    assert (
        c.post(
            "/api/v1/watches?tenant=acme",
            json={"kind": "regex", "value": "(a)\\1"},
            headers=_auth(world["operator"]),
        ).status_code
        == 422
    )


def test_rate_limit_per_key(tmp_path: Path) -> None:
    settings = load_settings(api_rate_per_s=0.001, api_burst=3)
    db = open_database(settings)
    key = add_key(db, "analyst")["api_key"]
    c = TestClient(create_app(settings))
    codes = [c.get("/api/v1/me", headers=_auth(key)).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_openapi_document(world: dict[str, Any]) -> None:
    doc = world["client"].get("/openapi.json").json()
    assert (
        doc["openapi"].startswith("3.")
        and "/api/v1/alerts" in doc["paths"]
        and "/api/v1/tips" in doc["paths"]
    )


def test_cluster_and_audit(world: dict[str, Any], tmp_path: Path) -> None:
    c, op = world["client"], world["operator"]
    repost = tmp_path / "repost.txt"
    repost.write_text("jane@acme.example:pw\nbob@other.example:pw\n")
    list(scan_paths(world["settings"], [str(repost)], store=True))
    cluster = c.get("/api/v1/postings/1/cluster", headers=_auth(op)).json()
    assert [p["id"] for p in cluster] == [1, 2] and all(p["exact"] for p in cluster)
    alert_id = c.get("/api/v1/alerts", headers=_auth(world["acme"])).json()[0]["id"]
    c.post(f"/api/v1/alerts/{alert_id}/ack", headers=_auth(world["acme"]))
    mine = c.get("/api/v1/audit", headers=_auth(world["acme"])).json()
    # Its own changes and those made for it (the operator registering its records, adding its viewer key).
    assert [e["action"] for e in mine] == ["alert.acked", "watch.add", "key.add"]
    assert mine[0]["actor"].endswith(":acme") and "other" not in json.dumps(mine)
    everything = c.get("/api/v1/audit", headers=_auth(op)).json()
    assert {"tenant.add", "watch.add", "alert.acked"} <= {e["action"] for e in everything}
    assert c.get("/api/v1/audit", headers=_auth(world["viewer"])).status_code == 403
