"""End to end: the simulated paste site, a real Celery worker process on the embedded Redis, a real
HTTP receiver and a real SMTP server; the crawl's alerts arrive once each, signed, and masked."""

from __future__ import annotations

import email
import json
import time
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from alerting.signing import verify
from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Delivery
from core.redis_embedded import free_port
from core.settings import load_settings
from crawlers.job import run_crawl
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from leaksentinel.service import Service
from leaksentinel.sim import Underground, WebhookReceiver, company_csv

pytestmark = pytest.mark.slow


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_crawl_delivers_each_alert_once_signed_by_webhook_and_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    inbox = _Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    monkeypatch.setenv("LEAKSENTINEL_SMTP_PORT", str(smtp_port))
    monkeypatch.setenv("LEAKSENTINEL_SMTP_STARTTLS", "never")
    settings = load_settings()
    db = open_database(settings)
    try:
        with Underground(seed=11) as site, WebhookReceiver() as receiver:
            company = site.company
            add_tenant(db, company.name, [company.domain], [company.region])
            csv_path = tmp_path / "company.csv"
            csv_path.write_text(company_csv(company), encoding="utf-8")
            hashed = tmp_path / "company.jsonl"
            key = load_or_create_key(settings.key_path)
            hashed.write_text(
                "".join(
                    json.dumps(r) + "\n"
                    for r in hash_csv(csv_path, key, key_column="id", region=company.region)
                )
            )
            add_records(db, company.name, hashed)
            sub = add_subscription(db, settings, company.name, webhook=receiver.url, secret="s3cret")
            add_subscription(db, settings, company.name, email="soc@acme-bank.example")
            add_source(db, "pastes", "pastebin", site.base_url)

            service = Service(settings, http=False, scheduler=False).start()
            try:
                summary = run_crawl(settings, "pastes")
                assert summary["status"] == "ok", summary
                assert summary["postings"] == len(site.pastes) and summary["new"] == len(site.pastes)
                # A repost (same records, near-identical text) joins its leak's alert: one alert per leak.
                leaks: dict[frozenset[str], list[Any]] = {}
                for paste in site.pastes:
                    if paste.leaked_keys:
                        leaks.setdefault(frozenset(paste.leaked_keys), []).append(paste)
                leaking = [group[0] for group in leaks.values()]
                assert len(leaking) < sum(len(g) for g in leaks.values())  # the fixture has a repost
                assert summary["alerts"] == len(leaking)
                assert _wait(
                    lambda: len(receiver.received) >= len(leaking) and len(inbox.messages) >= len(leaking), 60
                )
                time.sleep(1.0)  # nothing more may arrive
            except AssertionError:
                with db.session() as sess:
                    print([(d.status, d.attempts, d.last_error) for d in sess.scalars(select(Delivery))])
                raise
            finally:
                service.stop()

            # Exactly one event per alert, each validly signed, each with its own stable event id.
            events = [r for r in receiver.received if r.status == 200]
            assert len(events) == len(leaking)
            for r in events:
                assert verify("s3cret", r.body, r.headers["x-leaksentinel-signature"])
                assert r.json()["event_id"] == r.headers["x-leaksentinel-event-id"]
            alert_ids = sorted(r.json()["alert"]["id"] for r in events)
            with db.session() as sess:
                deliveries = sess.scalars(select(Delivery)).all()
                assert {d.status for d in deliveries} == {"sent"}
            assert len(set(r.headers["x-leaksentinel-event-id"] for r in events)) == len(events)
            # Each leak's records are the planted ones.
            by_url = {r.json()["alert"]["url"]: r.json()["alert"] for r in events}
            for group in leaks.values():
                # the alert names whichever of the leak's postings was stored first: the crawl fetches
                # pages concurrently, so a repost may be stored before its original
                paste = group[0]
                named = [a for url, a in by_url.items() if any(url.endswith(p.key) for p in group)]
                assert len(named) == 1, ([p.key for p in group], sorted(by_url))
                alert = named[0]
                assert alert["records"] == len(set(paste.leaked_keys))
                assert len(alert["sightings"]) >= 1
                assert {f["record_key"] for f in alert["findings"] if f["kind"] == "record"} == set(
                    paste.leaked_keys
                )
            assert len(alert_ids) == len(set(alert_ids))

            # No full value ever leaves the service, on either channel.
            secrets_in_clear = {r.email for r in company.records} | {r.phone for r in company.records}
            bodies = [r.body.decode("utf-8").lower() for r in events]
            mails = [m.decode("utf-8", errors="replace").lower() for m in inbox.messages]
            for value in secrets_in_clear:
                assert all(value.lower() not in text for text in bodies + mails), value
            assert len(inbox.messages) == len(leaking)
            msg: Message = email.message_from_bytes(inbox.messages[0])
            assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}
            assert sub["secret"] == "s3cret"

            # A second run fetches nothing old and stores nothing new.
            site.site.requests.clear()
            again = run_crawl(settings, "pastes")
            assert again["new"] == 0 and again["alerts"] == 0
            assert not [r for r in site.site.requests if "api_scrape_item" in r]
    finally:
        controller.stop()
