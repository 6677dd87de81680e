"""Prometheus exporters of the fleet roles and of ``run``, scraped over loopback from real processes.

Why processes: the figures are counted in Celery pool children and in crawl subprocesses that exit when
the crawl ends; only an exporter that adds up their multiprocess files shows them, which no in-process
test can tell.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_procs import cli_ok, logs_tail, spawn, wait_for

from core.redis_embedded import EmbeddedRedis
from leaksentinel.sim import Underground, WebhookReceiver, company_csv

pytestmark = pytest.mark.slow
STOP_S = 20


def _two_ports() -> tuple[int, int]:
    """Two free loopback ports, never the same one (two calls of free_port can return one port twice)."""
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return int(a.getsockname()[1]), int(b.getsockname()[1])


def parse(text: str) -> dict[str, float]:
    """Samples as ``name{k="v",...}`` (labels sorted) → value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def scrape(port: int, headers: dict[str, str] | None = None, path: str = "/metrics") -> str:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)
    except httpx.HTTPError:
        return ""
    return answer.text if answer.status_code == 200 else ""


def _events(receiver: WebhookReceiver) -> int:
    """Distinct events received (a webhook re-sent after a timeout under load counts once)."""
    return len({r.headers.get("x-leaksentinel-event-id") for r in receiver.received})


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("LEAKSENTINEL_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    return {**env, "LEAKSENTINEL_HOME": str(home), "LEAKSENTINEL_SCHEDULER_TICK_S": "0.5"}


def _setup_tenant(env: dict[str, str], tmp_path: Path, site: Underground, receiver: WebhookReceiver) -> None:
    company = site.company
    cli_ok(env, "tenant", "add", company.name, "--domain", company.domain)
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(company_csv(company), encoding="utf-8")
    hashed = cli_ok(env, "hash", "--csv", str(csv_path), "--key-column", "id", "--region", company.region)
    records = tmp_path / "customers.jsonl"
    records.write_text(hashed.stdout, encoding="utf-8")
    cli_ok(env, "watch", "add", "--tenant", company.name, "--records", str(records))
    cli_ok(env, "subscribe", "--tenant", company.name, "--webhook", receiver.url, "--secret", "s3cret")


def _stop(procs: dict[str, subprocess.Popen[bytes]], logs: list[Path]) -> None:
    stopping = time.monotonic()
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(STOP_S + 5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{name} did not stop:\n{logs_tail(logs)}")
    assert time.monotonic() - stopping < STOP_S


def test_worker_and_scheduler_exporters_serve_what_their_processes_did(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    with EmbeddedRedis() as broker, Underground(seed=5, n_noise=2) as site, WebhookReceiver() as receiver:
        env = {
            **_clean_env(home),
            "LEAKSENTINEL_REDIS_URL": broker.url,
            "LEAKSENTINEL_ALLOW_PRIVATE_TARGETS": "true",
        }
        _setup_tenant(env, tmp_path, site, receiver)
        sched_port, worker_port = _two_ports()
        logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "worker")}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        with logs["scheduler"].open("wb") as log_file:
            procs["scheduler"] = spawn(env, log_file, "scheduler", "--metrics-port", str(sched_port))
        with logs["worker"].open("wb") as log_file:
            procs["worker"] = spawn(
                env,
                log_file,
                *(
                    "worker",
                    "--queues",
                    "crawl,notify",
                    "--concurrency",
                    "1",
                    "--metrics-port",
                    str(worker_port),
                ),
            )
        all_logs = list(logs.values())
        try:
            before_worker = parse(wait_for(lambda: scrape(worker_port), 30, "no worker exporter", all_logs))
            before_sched = parse(wait_for(lambda: scrape(sched_port), 30, "no scheduler exporter", all_logs))
            sent_key = 'leaksentinel_deliveries_total{channel="webhook",outcome="sent"}'
            count_key = 'leaksentinel_delivery_latency_seconds_count{channel="webhook"}'
            assert before_worker.get(sent_key, 0) == 0 and before_worker.get(count_key, 0) == 0
            assert 'leaksentinel_queue_depth{queue="crawl"}' in before_worker
            # The worker serves what its processes did, not the database's figures (the scheduler does).
            assert "leaksentinel_outbox_backlog" not in before_worker
            assert before_sched["leaksentinel_outbox_backlog"] == 0
            assert 'leaksentinel_queue_depth{queue="notify"}' in before_sched

            # Work happens: the scheduler fires the new source, the worker crawls it and delivers alerts.
            cli_ok(
                env, "source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url, "--every", "1m"
            )
            wait_for(lambda: receiver.received, 90, "no alert delivered", all_logs)

            def delivered_counted() -> dict[str, float] | None:
                now = parse(scrape(worker_port))
                return now if now.get(sent_key, 0) >= _events(receiver) else None

            worker = wait_for(delivered_counted, 60, "deliveries not counted by the worker", all_logs)
            assert worker[count_key] == worker[sent_key] >= 1  # one latency observation per delivery
            assert worker['leaksentinel_delivery_latency_seconds_bucket{channel="webhook",le="+Inf"}'] >= 1
            assert worker['leaksentinel_tasks_total{state="SUCCESS",task="alerting.notify"}'] >= 1
            assert worker['leaksentinel_tasks_total{state="SUCCESS",task="crawlers.crawl"}'] >= 1
            # Counted in the crawl subprocess, which has exited: its file was added up (and folded).
            assert (
                worker["leaksentinel_scan_bytes_total"] > 0
                and worker["leaksentinel_scanned_postings_total"] > 0
            )
            assert worker["leaksentinel_scan_seconds_total"] > 0

            def crawl_recorded() -> dict[str, float] | None:
                now = parse(scrape(sched_port))
                return now if now.get('leaksentinel_crawl_runs_total{source="pastes"}', 0) >= 1 else None

            sched = wait_for(crawl_recorded, 90, "the crawl is not in the scheduler's figures", all_logs)
            assert sched['leaksentinel_scheduled_crawls_total{source="pastes"}'] >= 1
            assert sched['leaksentinel_crawl_bytes_total{source="pastes"}'] > 0
            assert sched['leaksentinel_crawl_seconds_total{source="pastes"}'] > 0
            assert sched['leaksentinel_crawl_last_bytes{source="pastes"}'] > 0
            assert sched['leaksentinel_postings_total{source="pastes"}'] > 0
            assert sched['leaksentinel_outbox_rows{status="sent"}'] >= _events(receiver)
            text = scrape(sched_port) + scrape(worker_port)
            # Labels are bounded: no tenant data (company, domain, records) in any figure.
            assert site.company.domain not in text and site.company.name not in text
        finally:
            _stop(procs, all_logs)
        assert scrape(worker_port) == "" and scrape(sched_port) == ""  # the exporters stopped with the roles
        assert "Traceback" not in logs_tail([logs["scheduler"]]), logs_tail(all_logs)


def test_run_metrics_add_up_its_pools_and_keep_their_key_check(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _clean_env(home)
    with Underground(seed=5, n_noise=2) as site, WebhookReceiver() as receiver:
        _setup_tenant(env, tmp_path, site, receiver)
        operator = json.loads(
            cli_ok(env, "key", "add", "--role", "operator", "--json").stdout.splitlines()[-1]
        )
        op = {"Authorization": f"Bearer {operator['api_key']}"}
        tenant_key = json.loads(
            cli_ok(
                env, "key", "add", "--role", "tenant_viewer", "--tenant", site.company.name, "--json"
            ).stdout.splitlines()[-1]
        )["api_key"]
        port, metrics_port = _two_ports()
        log_path = tmp_path / "run.log"
        with log_path.open("wb") as log_file:
            proc = spawn(env, log_file, "run", "--port", str(port), "--metrics-port", str(metrics_port))
        try:
            wait_for(lambda: scrape(metrics_port), 30, "no exporter on run", [log_path])
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: scrape(port, op), 30, "no /metrics on run", [log_path])
            # /metrics keeps its key check: none → 401, a tenant's key → 403, an operator's → 200.
            assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
            answer = httpx.get(
                f"{base}/metrics", headers={"Authorization": f"Bearer {tenant_key}"}, timeout=10
            )
            assert answer.status_code == 403
            cli_ok(
                env, "source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url, "--every", "1m"
            )
            wait_for(lambda: receiver.received, 90, "no alert delivered", [log_path])
            sent_key = 'leaksentinel_deliveries_total{channel="webhook",outcome="sent"}'

            def counted(port_: int, headers: dict[str, str] | None) -> dict[str, float] | None:
                now = parse(scrape(port_, headers))
                return now if now.get(sent_key, 0) >= _events(receiver) else None

            api = wait_for(
                lambda: counted(port, op), 30, "/metrics does not add up the notify pool", [log_path]
            )
            assert api['leaksentinel_delivery_latency_seconds_count{channel="webhook"}'] == api[sent_key]
            assert api["leaksentinel_scan_bytes_total"] > 0  # from the crawl pool's crawl subprocess

            def crawl_finished() -> bool:
                return parse(scrape(port, op)).get('leaksentinel_crawl_runs_total{source="pastes"}', 0) >= 1

            wait_for(crawl_finished, 90, "the finished crawl is not in /metrics", [log_path])
            exported = wait_for(lambda: counted(metrics_port, None), 30, "the exporter differs", [log_path])
            assert exported["leaksentinel_outbox_backlog"] >= 0 and exported[sent_key] >= api[sent_key]
        finally:
            _stop({"run": proc}, [log_path])
