"""API hardening (issue 11): tenant scope by id, audit by tenant id, hostile bodies, failed-auth limits;
and the subscription endpoints of issue 10 (fields kept, unknown fields refused, unsubscribe)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import open_database
from core.errors import BadInput
from core.models import AuditLog, Subscription, Tenant
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.api.app import create_app
from leaksentinel.api.limits import AUTH_FAILURE_BURST


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(database_url: str) -> dict[str, Any]:
    """Runs on SQLite and (when configured) PostgreSQL."""
    settings = load_settings(api_rate_per_s=1000.0, api_burst=1000)
    db = open_database(settings)
    return {
        "settings": settings,
        "db": db,
        "client": TestClient(create_app(settings)),
        "operator": add_key(db, "operator")["api_key"],
    }


def test_a_tenant_named_with_the_digits_of_another_ones_id_takes_nothing_over(api: dict[str, Any]) -> None:
    """Tenant `acme` has id 1. A tenant *named* "1" (refused now; one stored before the rule is made
    directly here) must not be what acme's key reads or writes: the key acts through its tenant's id."""
    c, db = api["client"], api["db"]
    acme = add_tenant(db, "acme", ["acme.example"], [])
    assert acme["id"] == 1
    with pytest.raises(BadInput, match="all digits"):
        add_tenant(db, "1", [], [])
    r = c.post("/api/v1/tenants", json={"name": "1"}, headers=_auth(api["operator"]))
    assert r.status_code == 422 and "all digits" in r.text
    with db.session() as sess:  # what an older database may hold
        squatter = Tenant(name="1", regions=[], settings={})
        sess.add(squatter)
        sess.flush()
        sess.add(Subscription(tenant_id=squatter.id, channel="email", target="spy@evil.example", secret=None))
    key = _auth(acme["api_key"])
    assert c.get("/api/v1/subscriptions", headers=key).json() == []
    assert c.get("/api/v1/subscriptions?tenant=1", headers=key).json() == []  # "1" is its own id
    added = c.post("/api/v1/subscriptions", json={"email": "soc@acme.example"}, headers=key)
    assert added.status_code == 201 and added.json()["tenant"] == "acme"
    with db.session() as sess:
        owners = {s.target: s.tenant_id for s in sess.query(Subscription)}
    assert owners == {"spy@evil.example": 2, "soc@acme.example": 1}
    assert [w["tenant"] for w in c.get("/api/v1/watches", headers=key).json()] == ["acme"]
    # An operator naming "1" means the tenant whose id is 1.
    assert c.get("/api/v1/watches?tenant=1", headers=_auth(api["operator"])).json()[0]["tenant"] == "acme"


@pytest.mark.parametrize(
    "name", ["acme\n", "ac\x00me", "acme\r", "Acme", "", "a" * 65, "12", "0", "tab\tname"]
)
def test_names_refuse_digits_controls_and_trailing_newlines(api: dict[str, Any], name: str) -> None:
    with pytest.raises(BadInput):
        add_tenant(api["db"], name, [], [])


def test_a_tenants_audit_is_its_own_whatever_characters_its_name_has(api: dict[str, Any]) -> None:
    """`_` was a LIKE wildcard: `acme_bank` read `acme-bank`'s audit (watch names, webhook URLs)."""
    c, db = api["client"], api["db"]
    dash = add_tenant(db, "acme-bank", [], [])
    under = add_tenant(db, "acme_bank", [], [])
    percent_like = add_tenant(db, "acme", [], [])
    r = c.post(
        "/api/v1/subscriptions",
        json={"webhook": "http://127.0.0.1:9/secret-hook"},
        headers=_auth(dash["api_key"]),
    )
    assert r.status_code == 201, r.text
    c.post("/api/v1/watches", json={"kind": "keyword", "value": "x"}, headers=_auth(under["api_key"]))
    theirs = c.get("/api/v1/audit", headers=_auth(under["api_key"])).json()
    assert [e["action"] for e in theirs] == ["watch.add"]
    assert "secret-hook" not in str(theirs) and "acme-bank" not in str(theirs)
    mine = c.get("/api/v1/audit", headers=_auth(dash["api_key"])).json()
    assert [e["action"] for e in mine] == ["subscription.add"]
    assert c.get("/api/v1/audit", headers=_auth(percent_like["api_key"])).json() == []
    everything = c.get("/api/v1/audit?tenant=acme-bank", headers=_auth(api["operator"])).json()
    assert [e["action"] for e in everything] == ["subscription.add"]


def test_bodies_that_are_not_text_are_a_short_400_and_never_logged(
    api: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    c = TestClient(create_app(api["settings"]), raise_server_exceptions=False)
    secret = "4111111111111111:hunter2"
    bodies = [
        ("/api/v1/tips", b'{"text": "' + secret.encode() + b'\xff\xfe"}', "application/json"),
        ("/api/v1/tips", b'{"text": "' + secret.encode() + b'\\ud800"}', "application/json"),
        ("/api/v1/tips", b'{"text": "' + secret.encode() + b'", "note": "\\udc00x"}', "application/json"),
        ("/api/v1/scan", secret.encode() + b"\xc3\x28", "text/plain"),
    ]
    with caplog.at_level(logging.DEBUG):
        for path, body, kind in bodies:
            headers = {"Content-Type": kind} | (_auth(api["operator"]) if "scan" in path else {})
            r = c.post(path, content=body, headers=headers)
            assert r.status_code in (400, 422), (path, body, r.status_code, r.text)
            assert len(r.content) < 400 and "hunter2" not in r.text and "4111" not in r.text
    assert "hunter2" not in caplog.text
    # A valid surrogate pair (an emoji) is text, and goes through.
    ok = c.post(
        "/api/v1/tips",
        content=b'{"text": "leak \\ud83d\\ude00"}',
        headers={"Content-Type": "application/json"},
    )
    assert ok.status_code == 202, ok.text


def test_validation_errors_echo_only_a_short_excerpt(api: dict[str, Any]) -> None:
    c = api["client"]
    r = c.post("/api/v1/tips", json={"text": "x" * 1_500_000})
    assert r.status_code == 422
    assert len(r.content) < 1000, len(r.content)
    assert "1500000 characters" in r.text
    r = c.post("/api/v1/tenants", json={"name": ["y" * 100_000]}, headers=_auth(api["operator"]))
    assert r.status_code == 422 and len(r.content) < 1000


def test_failed_authentication_is_limited_per_client_address(api: dict[str, Any]) -> None:
    c = api["client"]
    codes = [
        c.get("/api/v1/me", headers=_auth(f"lsk_wrong{i}")).status_code for i in range(AUTH_FAILURE_BURST + 5)
    ]
    assert codes[:AUTH_FAILURE_BURST] == [401] * AUTH_FAILURE_BURST
    assert set(codes[AUTH_FAILURE_BURST:]) == {429}
    # While the address is blocked, even a right key is refused from it; /metrics counts too.
    assert c.get("/api/v1/me", headers=_auth(api["operator"])).status_code == 429
    assert c.get("/metrics", headers=_auth("lsk_wrong")).status_code == 429
    # Another address is not affected.
    other = TestClient(c.app, client=("203.0.113.9", 50000))
    assert other.get("/api/v1/me", headers=_auth(api["operator"])).status_code == 200


def test_subscriptions_keep_slack_kinds_and_digest_and_refuse_unknown_fields(api: dict[str, Any]) -> None:
    c, db = api["client"], api["db"]
    acme = add_tenant(db, "acme", [], [])
    key = _auth(acme["api_key"])
    r = c.post(
        "/api/v1/subscriptions",
        json={"slack": "http://127.0.0.1:9/services/T0/B0/xyz", "kinds": ["record"], "digest": "daily"},
        headers=key,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["channel"] == "slack" and created["kinds"] == ["record"] and created["digest"] == "daily"
    assert "xyz" not in created["target"]  # a Slack webhook URL is a credential
    listed = c.get("/api/v1/subscriptions", headers=key).json()
    assert [(s["channel"], s["kinds"], s["digest"]) for s in listed] == [("slack", ["record"], "daily")]
    r = c.post("/api/v1/subscriptions", json={"email": "a@acme.example", "severity": "high"}, headers=key)
    assert r.status_code == 422 and "severity" in r.text  # misspelt min_severity: refused, not dropped
    assert (
        c.post(
            "/api/v1/subscriptions", json={"email": "a@acme.example", "kinds": ["nope"]}, headers=key
        ).status_code
        == 422
    )


def test_unsubscribe_removes_only_the_tenants_own_subscription_and_is_audited(api: dict[str, Any]) -> None:
    c, db = api["client"], api["db"]
    acme, globex = add_tenant(db, "acme", [], []), add_tenant(db, "globex", [], [])
    mine = c.post("/api/v1/subscriptions", json={"email": "soc@acme.example"}, headers=_auth(acme["api_key"]))
    theirs = c.post(
        "/api/v1/subscriptions", json={"email": "soc@globex.example"}, headers=_auth(globex["api_key"])
    )
    mine_id, theirs_id = mine.json()["id"], theirs.json()["id"]
    assert c.delete(f"/api/v1/subscriptions/{theirs_id}", headers=_auth(acme["api_key"])).status_code == 404
    r = c.delete(f"/api/v1/subscriptions/{mine_id}", headers=_auth(acme["api_key"]))
    assert r.status_code == 200 and r.json()["removed"] is True
    assert c.get("/api/v1/subscriptions", headers=_auth(acme["api_key"])).json() == []
    assert len(c.get("/api/v1/subscriptions", headers=_auth(globex["api_key"])).json()) == 1
    assert c.delete(f"/api/v1/subscriptions/{mine_id}", headers=_auth(acme["api_key"])).status_code == 404
    with db.session() as sess:
        row = sess.query(AuditLog).filter_by(action="subscription.remove").one()
        assert row.object_id == str(mine_id) and row.detail["tenant_id"] == acme["id"]
        assert row.actor.endswith(":acme")


def test_sources_are_removed_through_the_api_by_operators(api: dict[str, Any]) -> None:
    from leaksentinel.actions import sources

    if not hasattr(sources, "remove_source"):
        pytest.skip("actions.sources.remove_source is not there yet (another helper writes it)")
    c, op = api["client"], _auth(api["operator"])
    r = c.post(
        "/api/v1/sources", json={"name": "pb", "kind": "pastebin", "url": "http://127.0.0.1:9"}, headers=op
    )
    assert r.status_code == 201, r.text
    analyst = _auth(add_key(api["db"], "analyst")["api_key"])
    assert c.delete("/api/v1/sources/pb", headers=analyst).status_code == 403
    assert c.delete("/api/v1/sources/pb", headers=op).status_code == 200
    assert c.get("/api/v1/sources", headers=op).json() == []
    assert c.delete("/api/v1/sources/pb", headers=op).status_code == 404
    audit = c.get("/api/v1/audit", headers=op).json()
    assert audit[0]["action"] == "source.remove"


def test_openapi_has_a_bearer_scheme_on_key_routes(api: dict[str, Any]) -> None:
    doc = api["client"].get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert doc["paths"]["/api/v1/alerts"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in doc["paths"]["/api/v1/tips"]["post"]


def test_docs_are_served_from_local_files_under_the_csp(api: dict[str, Any], tmp_path: Path) -> None:
    c = api["client"]
    page = c.get("/docs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere
    assert "<script>" not in page.text  # no inline script
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "leaksentinel-docs.js"):
        r = c.get(f"/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 100, asset
    assert c.get("/docs-assets/..%2Fapp.py").status_code == 404
    assert c.get("/docs-assets/index.html").status_code == 404


def test_proxy_credentials_are_masked_for_every_role_but_operator(api: dict[str, Any]) -> None:
    from leaksentinel.actions.sources import add_source

    c, db = api["client"], api["db"]
    add_source(db, "onion", "generic", "http://forum.example/", proxy="http://user:hunter2@127.0.0.1:8118")
    analyst = add_key(db, "analyst")["api_key"]
    seen_by_operator = c.get("/api/v1/sources", headers=_auth(api["operator"])).json()
    seen_by_analyst = c.get("/api/v1/sources", headers=_auth(analyst)).json()
    assert seen_by_operator[0]["proxy"] == "http://user:hunter2@127.0.0.1:8118"
    assert seen_by_analyst[0]["proxy"] == "http://user:***@127.0.0.1:8118"
    assert "hunter2" not in c.get("/api/v1/sources", headers=_auth(analyst)).text


def test_nul_bytes_in_urls_are_a_400_not_a_database_error(api: dict[str, Any]) -> None:
    """PostgreSQL refuses NUL in text: found by the schemathesis run on PostgreSQL (a 500 before)."""
    c = api["client"]
    op = _auth(api["operator"])
    for url in ("/api/v1/alerts?tenant=%00", "/api/v1/sources/a%00b/jobs", "/api/v1/search?q=%00"):
        answer = c.get(url, headers=op)
        assert answer.status_code == 400 and "NUL" in answer.text, (url, answer.text)


def test_a_nul_in_a_tenant_name_given_to_the_cli_is_not_found(api: dict[str, Any], cli: Any) -> None:
    out = cli("alerts", "list", "--tenant", "ac\x00me")
    assert out.code in (1, 2) and "unknown tenant" in out.err and "Traceback" not in out.err


def test_ids_beyond_the_databases_integer_range_are_not_found(api: dict[str, Any]) -> None:
    """SQLite raises OverflowError, PostgreSQL a DataError: both are a 404 (a 500 on PostgreSQL before)."""
    c = api["client"]
    for url in ("/api/v1/postings/2147483648", "/api/v1/alerts/99999999999999999999"):
        answer = c.get(url, headers=_auth(api["operator"]))
        assert answer.status_code in (404, 422), (url, answer.status_code, answer.text)
