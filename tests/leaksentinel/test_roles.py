"""The roles of a fleet as separate processes: ``scheduler``, ``worker --queues crawl``, ``worker --queues
notify`` and ``serve`` on one home and one broker (an embedded Redis the test starts, given as a server URL,
as a fleet would be), and ``run`` with its own notify pool.

Why real processes: what the roles promise is about processes (a crawl fired by one, run by another,
delivered by a third; SIGTERM stopping each within 20 s and leaving no child behind), which no in-process
fake can show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil
import pytest
from service_procs import cli_ok, logs_tail, spawn, wait_for
from sqlalchemy import select

from alerting.signing import verify
from core.db import open_database
from core.models import CrawlJob
from core.redis_embedded import EmbeddedRedis, free_port
from core.settings import load_settings
from leaksentinel.sim import LoopbackHandler, LoopbackServer, Underground, WebhookReceiver, company_csv

pytestmark = pytest.mark.slow

NO_BROKER = "leaksentinel: no broker: set redis_url or start `leaksentinel run`"
STOP_S = 20


class _SlowPage(LoopbackServer):
    """A page that answers only after a long wait: a crawl still in progress when SIGTERM comes."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def handle_get(self, request: LoopbackHandler) -> None:
        self.log_request(request.path)
        if request.path == "/robots.txt":
            request.send_body(404, b"", "text/plain")
            return
        self.release.wait(60)
        with suppress(OSError):  # the crawl that asked was stopped: nobody reads the answer
            request.send_body(200, b"<html><body><p>late</p></body></html>", "text/html")


def _clean_env(home: Path) -> dict[str, str]:
    """The caller's environment minus any broker it names: the test decides which broker exists."""
    env = {k: v for k, v in os.environ.items() if k != "LEAKSENTINEL_REDIS_URL"}
    return {**env, "LEAKSENTINEL_HOME": str(home), "LEAKSENTINEL_SCHEDULER_TICK_S": "0.5"}


def _tree(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        parent = psutil.Process(proc.pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


@contextmanager
def _killed_at_exit(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_scheduler_workers_and_serve_as_separate_processes_alert_crawl_now_and_stop_clean(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    with (
        EmbeddedRedis() as broker,
        Underground(seed=5, n_noise=2) as site,
        WebhookReceiver() as receiver,
        _SlowPage() as slow_page,
    ):
        env = {
            **_clean_env(home),
            "LEAKSENTINEL_REDIS_URL": broker.url,
            # A server URL means a fleet, which refuses loopback targets; the sim and receiver are loopback.
            "LEAKSENTINEL_ALLOW_PRIVATE_TARGETS": "true",
        }
        company = site.company
        cli_ok(env, "tenant", "add", company.name, "--domain", company.domain)
        csv_path = tmp_path / "customers.csv"
        csv_path.write_text(company_csv(company), encoding="utf-8")
        hashed = cli_ok(env, "hash", "--csv", str(csv_path), "--key-column", "id", "--region", company.region)
        records = tmp_path / "customers.jsonl"
        records.write_text(hashed.stdout, encoding="utf-8")
        cli_ok(env, "watch", "add", "--tenant", company.name, "--records", str(records))
        cli_ok(env, "subscribe", "--tenant", company.name, "--webhook", receiver.url, "--secret", "s3cret")
        cli_ok(env, "source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url, "--every", "1m")
        cli_ok(env, "source", "add", "slow", "--kind", "generic", "--url", slow_page.base_url + "/slow")
        operator = json.loads(
            cli_ok(env, "key", "add", "--role", "operator", "--json").stdout.splitlines()[-1]
        )
        op = {"Authorization": f"Bearer {operator['api_key']}"}

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        roles = {
            "scheduler": ["scheduler"],
            "crawl": ["worker", "--queues", "crawl", "--concurrency", "1"],
            "notify": ["worker", "--queues", "notify", "--concurrency", "1"],
            "serve": ["serve", "--port", str(port)],
        }
        logs = {name: tmp_path / f"{name}.log" for name in roles}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, args in roles.items():
            with logs[name].open("wb") as log_file:
                procs[name] = spawn(env, log_file, *args)
        all_logs = list(logs.values())
        with _killed_at_exit(list(procs.values())):
            # 1. The scheduler fires the never-crawled source, the crawl worker crawls it, the notify
            #    worker delivers the signed alert that the scheduler's relay published.
            wait_for(lambda: receiver.received, 90, "no alert delivered", all_logs)
            first = receiver.received[0]
            assert verify("s3cret", first.body, first.headers["x-leaksentinel-signature"], tolerance_s=600)
            assert first.json()["type"] == "alert.created"

            # 2. Crawl-now through `serve` goes through the broker to the crawl worker.
            jobs_url = f"{base}/api/v1/sources/pastes/jobs"

            def ok_jobs() -> int:
                jobs = httpx.get(jobs_url, headers=op, timeout=10).json()
                return len([j for j in jobs if j["status"] == "ok"])

            before = wait_for(ok_jobs, 30, "the scheduled crawl did not end ok", all_logs)
            answer = httpx.post(f"{base}/api/v1/sources/pastes/crawl", headers=op, timeout=10)
            assert answer.status_code == 202, answer.text
            wait_for(lambda: ok_jobs() > before, 60, "crawl-now was not crawled", all_logs)

            # 3. SIGTERM to every role while the crawl worker is mid-crawl: each stops in < 20 s,
            #    nothing is left behind, the cut crawl is `interrupted`.
            answer = httpx.post(f"{base}/api/v1/sources/slow/crawl", headers=op, timeout=10)
            assert answer.status_code == 202, answer.text
            wait_for(lambda: "/slow" in slow_page.requests, 60, "the slow crawl did not start", all_logs)
            trees = {name: _tree(proc) for name, proc in procs.items()}
            assert len(trees["crawl"]) > 1 and len(trees["notify"]) > 1  # supervisor + Celery worker
            stopping = time.monotonic()
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
            for name, proc in procs.items():
                proc.wait(STOP_S + 5)
                assert time.monotonic() - stopping < STOP_S, f"{name} took too long to stop"
                assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{logs_tail([logs[name]])}"
            time.sleep(0.5)
            for name, tree in trees.items():
                assert not _alive(tree), f"{name} left processes behind: {_alive(tree)}"
        slow_page.release.set()
    # The crawl worker's Celery logs the task it cut short (with Celery's traceback); the other roles log none.
    text = logs_tail([logs["scheduler"], logs["notify"], logs["serve"]])
    assert "Traceback" not in text, text
    assert "crawl pastes: ok" in text and "sent by webhook" in text
    db = open_database(load_settings(environ=env))
    with db.session() as sess:
        statuses = {j.status for j in sess.scalars(select(CrawlJob)).all()}
    assert "running" not in statuses and "interrupted" in statuses


def test_run_has_a_notify_pool_and_a_crawl_pool(tmp_path: Path) -> None:
    env = _clean_env(tmp_path / "home")
    port = free_port()
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log_file:
        proc = spawn(env, log_file, "run", "--port", str(port))
    with _killed_at_exit([proc]):

        def pools() -> list[list[str]]:
            found = []
            for child in _tree(proc)[1:]:
                try:
                    cmd = child.cmdline()
                except psutil.NoSuchProcess:
                    continue
                if "celery" in cmd and "worker" in cmd and "-Q" in cmd and child.ppid() == proc.pid:
                    found.append(cmd)
            return found

        def both() -> bool:
            return len(pools()) == 2

        wait_for(both, 30, "run did not start two worker pools", [log_path])
        queues = sorted(cmd[cmd.index("-Q") + 1] for cmd in pools())
        assert queues == ["crawl", "notify"]
        tree = _tree(proc)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_S + 5)
        assert time.monotonic() - stopping < STOP_S
        time.sleep(0.5)
        assert not _alive(tree), _alive(tree)


@pytest.mark.parametrize("role", ["worker", "scheduler", "serve"])
def test_a_role_with_no_broker_exits_1_with_one_line(tmp_path: Path, role: str) -> None:
    home = tmp_path / "home"
    env = _clean_env(home)
    answer = subprocess.run(
        [sys.executable, "-m", "leaksentinel", role], env=env, capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 1, answer.stderr
    assert answer.stderr.strip() == NO_BROKER and answer.stdout == ""
    # An announcement left by a `run` that died (nothing listens there) is no broker either.
    (home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / "run" / "redis.url").write_text(f"redis://:pw@127.0.0.1:{free_port()}/0", encoding="utf-8")
    answer = subprocess.run(
        [sys.executable, "-m", "leaksentinel", role], env=env, capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 1, answer.stderr
    assert answer.stderr.strip() == NO_BROKER


def test_worker_refuses_an_unknown_queue(tmp_path: Path) -> None:
    env = _clean_env(tmp_path / "home")
    answer = subprocess.run(
        [sys.executable, "-m", "leaksentinel", "worker", "--queues", "crawl,bogus"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 2
    assert len(answer.stderr.strip().splitlines()) == 1 and "bogus" in answer.stderr
