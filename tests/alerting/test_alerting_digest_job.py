"""Digest subscriptions: no message per alert, one digest per period through the outbox; exports."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from alerting.digest_job import run_digests
from alerting.signing import verify
from alerting.tasks import deliver
from core.db import open_database
from core.models import Alert, Delivery, Tenant
from core.settings import load_settings
from leaksentinel.actions.subscriptions import list_subscriptions
from leaksentinel.sim import WebhookReceiver


def _leak(cli, tmp_path: Path, name: str, emails: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text("".join(f"{e}:pw\n" for e in emails))
    assert cli("scan", "--store", str(path)).code == 0


def test_digest_subscriptions_get_one_summary_per_period(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme", "--domain", "acme.example")
    with WebhookReceiver() as receiver:
        assert (
            cli(
                "subscribe",
                "--tenant",
                "acme",
                "--webhook",
                receiver.url,
                "--secret",
                "d",
                "--digest",
                "hourly",
            ).code
            == 0
        )
        assert (
            cli(
                "subscribe",
                "--tenant",
                "acme",
                "--webhook",
                receiver.url + "/now",
                "--secret",
                "n",
                "--kinds",
                "secret",
            ).code
            == 0
        )
        _leak(cli, tmp_path, "one.txt", ["a@acme.example"])
        _leak(cli, tmp_path, "two.txt", ["b@acme.example", "c@acme.example"])
        settings = load_settings()
        db = open_database(settings)
        with db.session() as sess:
            # Neither subscription gets an immediate message: one is a digest, the other wants secrets only.
            assert sess.scalars(select(Delivery)).all() == []
            first_seen = sess.scalars(select(Alert.first_seen)).all()
        later = max(first_seen) + timedelta(hours=1)
        assert run_digests(db, settings, now=later) == 1
        assert run_digests(db, settings, now=later) == 0  # once per period
        with db.session() as sess:
            (delivery,) = sess.scalars(select(Delivery)).all()
            assert delivery.alert_id is None and delivery.event_type == "alert.digest"
        assert deliver(settings, delivery.id) == ("sent", None)
        (hit,) = receiver.received
        assert verify("d", hit.body, hit.headers["x-leaksentinel-signature"])
        body = hit.json()
        assert body["type"] == "alert.digest" and len(body["alerts"]) == 2 and body["tenant"] == "acme"
        assert "a@acme.example" not in hit.body.decode()


def test_export_stix_and_misp_from_the_cli(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme", "--domain", "acme.example")
    _leak(cli, tmp_path, "leak.txt", ["jane@acme.example"])
    alert_id = str(cli("alerts", "list", "--json").jsonl()[0]["id"])
    stix = cli("alerts", "export", alert_id, "--format", "stix")
    assert stix.code == 0, stix.err
    bundle = json.loads(stix.lines[-1])
    assert bundle["type"] == "bundle" and "jane@acme.example" not in stix.out
    misp = cli("alerts", "export", alert_id, "--format", "misp")
    assert "Event" in json.loads(misp.lines[-1]) and "jane@acme.example" not in misp.out
    assert cli("alerts", "export", alert_id, "--format", "pdf").code == 2
    assert cli("alerts", "export", "999", "--format", "stix").code == 2


def test_slack_subscription_hides_its_url(cli) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme")
    out = cli(
        "subscribe",
        "--tenant",
        "acme",
        "--slack",
        "https://hooks.slack.example/services/T0/B0/secret",
        "--json",
    )
    assert out.code == 0, out.err
    assert "secret" not in out.json()["target"] and out.json()["channel"] == "slack"
    assert (
        cli(
            "subscribe", "--tenant", "acme", "--webhook", "http://127.0.0.1:9/", "--email", "a@b.example"
        ).code
        == 2
    )
    bogus = cli("subscribe", "--tenant", "acme", "--email", "a@b.example", "--kinds", "bogus")
    assert bogus.code == 2 and "bogus" in bogus.err, bogus.err
    # Only the Slack subscription was stored, and listing it does not give its URL back either.
    db = open_database(load_settings())
    with db.session() as sess:
        tenant_id = sess.scalars(select(Tenant.id).where(Tenant.name == "acme")).one()
    listed = list_subscriptions(db, tenant_id)
    assert [s["channel"] for s in listed] == ["slack"]
    assert "secret" not in json.dumps(listed)
