"""The metrics' sources, each on its own: database figures on SQLite and PostgreSQL, process figures added
up from the files of exited processes (and folded without changing a total), and ``/metrics`` auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import CrawlJob, Delivery, Source, utcnow
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.api.app import create_app
from leaksentinel.company_hash import hash_csv
from leaksentinel.scanning import scan_paths
from leaksentinel.telemetry import ProcessCollector, make_registry, render


def parse(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_database_figures_per_source_and_outbox(tmp_path: Path, database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    tenant = add_tenant(db, "acme", ["acme.example"], [])
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email\n1,jane@acme.example\n2,bob@acme.example\n")
    rows = hash_csv(csv_path, load_or_create_key(settings.key_path), key_column="id")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, "acme", tmp_path / "c.jsonl")
    add_subscription(db, settings, tenant["id"], webhook="http://127.0.0.1:9/hook", secret="s")
    for i, email in enumerate(("jane@acme.example", "bob@acme.example")):
        leak = tmp_path / f"leak{i}.txt"
        leak.write_text(f"dump {i}\n{email}:pw\n")
        list(scan_paths(settings, [str(leak)], store=True))
    add_source(db, "pastes", "pastebin", "http://127.0.0.1:9", every="5m")
    now = utcnow()
    with db.session() as sess:
        source_id = sess.scalar(select(Source.id).where(Source.name == "pastes"))
        assert source_id is not None
        for status, stats in (
            ("ok", {"seconds": 2.5, "bytes": 1000, "new": 3, "postings": 5}),
            ("failed", {"seconds": 1.5, "bytes": 24, "new": 0, "postings": 1}),
            ("running", {"heartbeat": 1.0}),
        ):
            sess.add(
                CrawlJob(
                    source_id=source_id,
                    status=status,
                    stats=stats,
                    started_at=now,
                    finished_at=None if status == "running" else now,
                )
            )
        deliveries = sess.scalars(select(Delivery).order_by(Delivery.id)).all()
        assert len(deliveries) == 2
        deliveries[0].status, deliveries[0].sent_at, deliveries[0].attempts = "sent", now, 1
        deliveries[1].created_at = now - timedelta(seconds=90)  # still pending: the backlog's oldest

    text = render(make_registry(db=db, queue_depths={"crawl": 4, "notify": 0}, process=False))
    m = parse(text)
    src = '{source="pastes"}'
    assert m[f"leaksentinel_crawl_runs_total{src}"] == 2  # finished runs only
    assert m[f"leaksentinel_crawl_failures_total{src}"] == 1
    assert m[f"leaksentinel_crawl_seconds_total{src}"] == 4.0
    assert m[f"leaksentinel_crawl_bytes_total{src}"] == 1024
    assert m[f"leaksentinel_postings_total{src}"] == 3
    assert m[f"leaksentinel_postings_seen_total{src}"] == 6
    assert m[f"leaksentinel_crawl_last_duration_seconds{src}"] == 1.5  # the last finished run
    assert m[f"leaksentinel_crawl_last_bytes{src}"] == 24
    assert m[f"leaksentinel_crawls_running{src}"] == 1
    assert m['leaksentinel_outbox_rows{status="sent"}'] == 1
    assert m['leaksentinel_outbox_rows{status="pending"}'] == 1
    assert m["leaksentinel_outbox_backlog"] == 1
    assert 85 <= m["leaksentinel_outbox_oldest_age_seconds"] < 600
    assert m["leaksentinel_delivery_attempts_total"] == 1
    assert m['leaksentinel_alerts{status="new"}'] == 2
    assert m['leaksentinel_queue_depth{queue="crawl"}'] == 4
    # The built-in sources (local files, tips) and tenant data are not labels.
    assert 'source="local"' not in text and "acme" not in text


_CHILD = """
from core import telemetry
telemetry.count_delivery("webhook", "sent", {latency})
telemetry.count_delivery("webhook", "retry")
telemetry.count_scan(1000, 0.5)
"""


def _children(path: Path, latencies: list[float]) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)}
    for latency in latencies:
        subprocess.run(
            [sys.executable, "-c", _CHILD.format(latency=latency)], env=env, check=True, timeout=60
        )


def _scrape(path: Path) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessCollector(str(path)))
    return parse(render(registry))


def _collect(path: Path) -> dict[str, float]:
    """The children's figures: what the collector adds up, less this (test) process's own figures."""
    empty = path.parent / "empty"
    empty.mkdir(exist_ok=True)
    own = _scrape(empty)
    return {
        k: round(v - own.get(k, 0.0), 6) for k, v in _scrape(path).items() if k.startswith("leaksentinel_")
    }


def test_figures_of_exited_processes_are_added_up_and_folded_without_changing_totals(tmp_path: Path) -> None:
    path = tmp_path / "mp"
    path.mkdir()
    _children(path, [0.3, 3.0, 40.0])
    assert len(list(path.glob("counter_*.db"))) == 3  # one file per exited process, not yet folded
    m = _collect(path)
    assert m['leaksentinel_deliveries_total{channel="webhook",outcome="sent"}'] == 3
    assert m['leaksentinel_deliveries_total{channel="webhook",outcome="retry"}'] == 3
    assert m['leaksentinel_delivery_latency_seconds_count{channel="webhook"}'] == 3
    assert m['leaksentinel_delivery_latency_seconds_bucket{channel="webhook",le="0.5"}'] == 1
    assert m['leaksentinel_delivery_latency_seconds_bucket{channel="webhook",le="5.0"}'] == 2
    assert m['leaksentinel_delivery_latency_seconds_sum{channel="webhook"}'] == 43.3
    assert m["leaksentinel_scan_bytes_total"] == 3000 and m["leaksentinel_scan_seconds_total"] == 1.5
    # Folded into one archive per kind: a day of crawl subprocesses leaves two files, not thousands.
    assert sorted(p.name for p in path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    _children(path, [0.1, 0.2])
    m = _collect(path)
    assert m['leaksentinel_deliveries_total{channel="webhook",outcome="sent"}'] == 5
    assert m['leaksentinel_delivery_latency_seconds_count{channel="webhook"}'] == 5
    assert m['leaksentinel_delivery_latency_seconds_bucket{channel="webhook",le="0.25"}'] == 2
    assert m["leaksentinel_scan_bytes_total"] == 5000
    assert m == _collect(path)  # scraping again changes nothing


def test_metrics_need_an_operator_key_unless_public(tmp_path: Path, database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    tenant = add_tenant(db, "acme", ["acme.example"], [])
    operator = add_key(db, "operator")["api_key"]
    closed = TestClient(create_app(settings))
    assert closed.get("/metrics").status_code == 401
    assert closed.get("/metrics", headers={"Authorization": f"Bearer {tenant['api_key']}"}).status_code == 403
    answer = closed.get("/metrics", headers={"Authorization": f"Bearer {operator}"})
    assert answer.status_code == 200 and "leaksentinel_outbox_backlog 0.0" in answer.text
    public = TestClient(create_app(settings.with_(metrics_public=True)))
    answer = public.get("/metrics")
    assert answer.status_code == 200 and "leaksentinel_outbox_backlog" in answer.text
