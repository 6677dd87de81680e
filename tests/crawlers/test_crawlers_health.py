"""Crawler health: failing sources, silent parsers and stale schedules are flagged, and operators told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerting.signing import verify
from alerting.tasks import deliver_operator_event
from core.db import open_database
from core.models import OperatorEvent
from core.settings import load_settings
from crawlers.health import assess_run, is_stale
from crawlers.job import run_crawl
from leaksentinel.actions.sources import add_source, list_sources, set_source
from leaksentinel.sim import Underground, WebhookReceiver


def test_assess_run_rules() -> None:
    ok = {"fetched": 5, "postings": 3}
    assert assess_run(ok, failed=False, failures_in_row=2, ever_produced=True).health == "healthy"
    assert assess_run({}, failed=True, failures_in_row=0, ever_produced=True).health == "healthy"
    bad = assess_run({"error": "timeout"}, failed=True, failures_in_row=2, ever_produced=True)
    assert bad.health == "unhealthy" and "3 runs in a row" in (bad.reason or "")
    silent = assess_run({"fetched": 12, "postings": 0}, failed=False, failures_in_row=0, ever_produced=True)
    assert silent.health == "unhealthy" and "no posting" in (silent.reason or "")
    # An incremental run that only re-read the listing is fine.
    assert (
        assess_run({"fetched": 1, "postings": 0}, failed=False, failures_in_row=0, ever_produced=True).health
        == "healthy"
    )


def test_is_stale() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert is_stale("every 60", True, now - timedelta(minutes=4), now, now)
    assert not is_stale("every 60", True, now - timedelta(minutes=2), now, now)
    assert not is_stale("every 60", False, None, now - timedelta(days=1), now)
    assert not is_stale(None, True, None, now - timedelta(days=1), now)
    assert is_stale("cron */5 * * * *", True, now - timedelta(minutes=16), now, now)


@pytest.mark.slow
def test_a_failing_source_turns_unhealthy_tells_the_operator_once_and_recovers() -> None:
    with WebhookReceiver() as receiver:
        settings = load_settings(operator_webhook=receiver.url, operator_webhook_secret="ops")
        db = open_database(settings)
        add_source(db, "flaky", "pastebin", "http://127.0.0.1:9")
        for _ in range(4):
            assert run_crawl(settings, "flaky", timeout_s=60)["status"] == "failed"
        listed = next(s for s in list_sources(db) if s["name"] == "flaky")
        assert listed["health"] == "unhealthy" and "in a row" in listed["health_reason"]
        with db.session() as sess:
            events = sess.scalars(select(OperatorEvent)).all()
            assert [e.kind for e in events] == ["source.unhealthy"]
            first = events[0].id
        assert deliver_operator_event(settings, first) == "sent"
        hit = receiver.received[-1]
        assert verify("ops", hit.body, hit.headers["x-leaksentinel-signature"])
        assert "flaky" in hit.json()["message"]

        with Underground(seed=2, n_noise=2) as site:
            set_source(db, "flaky", url=site.base_url)
            assert run_crawl(settings, "flaky")["status"] == "ok"
        listed = next(s for s in list_sources(db) if s["name"] == "flaky")
        assert listed["health"] == "healthy"
        with db.session() as sess:
            assert [e.kind for e in sess.scalars(select(OperatorEvent).order_by(OperatorEvent.id))] == [
                "source.unhealthy",
                "source.recovered",
            ]
