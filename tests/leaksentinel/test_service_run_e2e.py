"""``leaksentinel run`` as an operator runs it, with nothing crawled by hand.

A fresh home; a tenant with hashed records and a signed webhook; a never-crawled ``--every`` source on
the simulated paste site; ``run`` started as a subprocess. The alert must arrive within one interval plus
a margin; crawl-now and a URL tip through the API must be crawled by the same ``run``; SIGTERM during a
crawl must stop everything in under 20 s and leave that job ``interrupted``, not ``running``. Runs on
SQLite and, when configured, on PostgreSQL (the ``database_url`` fixture sets the environment that the
subprocesses inherit).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from service_procs import cli_ok, wait_for
from sqlalchemy import select

from alerting.signing import verify
from core.db import open_database
from core.models import CrawlJob
from core.redis_embedded import free_port
from core.settings import load_settings
from leaksentinel.sim import LoopbackHandler, LoopbackServer, Underground, WebhookReceiver, company_csv

pytestmark = pytest.mark.slow

INTERVAL_S = 60  # `--every 1m`: the first run must not wait for it
MARGIN_S = 45


class _Pages(LoopbackServer):
    """A tip page holding leaked records, and a page that answers only after a long wait (a slow crawl)."""

    def __init__(self, leak_text: str) -> None:
        super().__init__()
        self.leak_text = leak_text
        self.release = threading.Event()

    def handle_get(self, request: LoopbackHandler) -> None:
        self.log_request(request.path)
        if request.path.startswith("/slow"):
            self.release.wait(60)
            request.send_body(200, b"<html><body><p>late</p></body></html>", "text/html")
            return
        if request.path == "/robots.txt":
            request.send_body(404, b"", "text/plain")
            return
        body = f"<html><head><title>tip</title></head><body><pre>{self.leak_text}</pre></body></html>"
        request.send_body(200, body.encode(), "text/html; charset=utf-8")


def test_run_crawls_a_new_every_source_alerts_takes_crawl_now_and_tips_and_stops_clean(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LEAKSENTINEL_HOME": str(home), "LEAKSENTINEL_SCHEDULER_TICK_S": "0.5"}
    with Underground(seed=5, n_noise=2) as site, WebhookReceiver() as receiver:
        company = site.company
        leaking = next(p for p in site.pastes if len(p.leaked_keys) >= 3)
        with _Pages(leaking.text) as pages:
            added = cli_ok(env, "tenant", "add", company.name, "--domain", company.domain, "--json")
            tenant_key = json.loads(added.stdout.splitlines()[-1])["api_key"]
            csv_path = tmp_path / "customers.csv"
            csv_path.write_text(company_csv(company), encoding="utf-8")
            hashed = cli_ok(
                env, "hash", "--csv", str(csv_path), "--key-column", "id", "--region", company.region
            )
            records = tmp_path / "customers.jsonl"
            records.write_text(hashed.stdout, encoding="utf-8")
            cli_ok(env, "watch", "add", "--tenant", company.name, "--records", str(records))
            cli_ok(
                env, "subscribe", "--tenant", company.name, "--webhook", receiver.url, "--secret", "s3cret"
            )
            cli_ok(
                env, "source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url, "--every", "1m"
            )
            cli_ok(env, "source", "add", "slow", "--kind", "generic", "--url", pages.base_url + "/slow")
            operator = json.loads(
                cli_ok(env, "key", "add", "--role", "operator", "--json").stdout.splitlines()[-1]
            )
            op = {"Authorization": f"Bearer {operator['api_key']}"}

            port = free_port()
            log_path = tmp_path / "run.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "leaksentinel", "run", "--port", str(port)],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            base = f"http://127.0.0.1:{port}"
            try:
                started = time.monotonic()
                # 1. The never-crawled `--every` source is crawled by `run` alone; the signed alert arrives.
                wait_for(lambda: receiver.received, INTERVAL_S + MARGIN_S, "no alert delivered", [log_path])
                first = receiver.received[0]
                assert time.monotonic() - started < INTERVAL_S + MARGIN_S
                assert verify(
                    "s3cret", first.body, first.headers["x-leaksentinel-signature"], tolerance_s=600
                )
                event = first.json()
                assert event["type"] == "alert.created" and event["alert"]["records"] >= 3
                # Links in the alert point where this `run` listens (no public_url set).
                assert event["alert"]["console_url"] == f"{base}/alerts/{event['alert']['id']}"

                # /metrics of `run` knows its broker's queues.
                metrics = httpx.get(f"{base}/metrics", headers=op, timeout=10).text
                assert 'leaksentinel_queue_depth{queue="crawl"}' in metrics
                assert 'leaksentinel_queue_depth{queue="notify"}' in metrics

                # 2. Crawl-now through the API is crawled by this run's own workers.
                jobs_url = f"{base}/api/v1/sources/pastes/jobs"
                before = len(httpx.get(jobs_url, headers=op, timeout=10).json())
                answer = httpx.post(f"{base}/api/v1/sources/pastes/crawl", headers=op, timeout=10)
                assert answer.status_code == 202, answer.text
                wait_for(
                    lambda: (
                        len(
                            [
                                j
                                for j in httpx.get(jobs_url, headers=op, timeout=10).json()
                                if j["status"] == "ok"
                            ]
                        )
                        > before
                    ),
                    60,
                    "crawl-now was not crawled",
                    [log_path],
                )

                # 3. A URL tip through the API is crawled by the same run; its posting joins an alert.
                tip_url = pages.base_url + "/tip/leak.html"
                tip = httpx.post(f"{base}/api/v1/tips", json={"url": tip_url}, timeout=10)
                assert tip.status_code == 202, tip.text

                def tip_sighted() -> bool:
                    answer = httpx.get(
                        f"{base}/api/v1/alerts", headers={"Authorization": f"Bearer {tenant_key}"}, timeout=10
                    )
                    assert answer.status_code == 200, answer.text
                    return any(tip_url in a["sightings"] for a in answer.json())

                wait_for(tip_sighted, 60, "the tip was not crawled into an alert", [log_path])

                # 4. SIGTERM during a crawl: everything stops in under 20 s, the job is `interrupted`.
                assert (
                    httpx.post(f"{base}/api/v1/sources/slow/crawl", headers=op, timeout=10).status_code == 202
                )
                wait_for(lambda: "/slow" in pages.requests, 60, "the slow crawl did not start", [log_path])
                stopping = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                proc.wait(25)
                assert time.monotonic() - stopping < 20
            finally:
                pages.release.set()
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log_text = log_path.read_text(errors="replace")
            assert "Traceback" not in log_text, log_text[-3000:]
            # What `run` logged: the crawl, the alert, the delivery.
            assert "crawl pastes: ok" in log_text
            assert "raised for " + company.name in log_text
            assert "sent by webhook" in log_text

    db = open_database(load_settings(environ=env))
    with db.session() as sess:
        statuses = [j.status for j in sess.scalars(select(CrawlJob)).all()]
    assert "running" not in statuses
    assert "interrupted" in statuses


def test_a_second_run_on_the_same_home_is_refused_and_leaves_the_first_alone(tmp_path: Path) -> None:
    env = {**os.environ, "LEAKSENTINEL_HOME": str(tmp_path / "home")}
    port = free_port()
    first = subprocess.Popen(
        [sys.executable, "-m", "leaksentinel", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        announced = (tmp_path / "home" / "run" / "redis.url").read_text()
        second = subprocess.run(
            [sys.executable, "-m", "leaksentinel", "run", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "already serving the home" in second.stderr and "Traceback" not in second.stderr
        # The first run's broker announcement is untouched, and it still serves.
        assert (tmp_path / "home" / "run" / "redis.url").read_text() == announced
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(25)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
