"""Stored → webhook latency through the real service, while crawls run and, as the baseline, while none do.

`leaksentinel run` runs as a subprocess on a temporary home (embedded broker, its crawl pool and its own
notify pool, relay, scheduler, API). Probes are postings that leak one registered record, stored from this
process the way `scan --store` stores them (posting, alert and outbox in one transaction); a loopback
receiver timestamps each signed webhook. Latency = webhook received − probe stored.

1. Baseline: probes with no source configured (nothing crawls).
2. Under crawl load: several pastebin sources on the simulated paste site, crawl-now sent again as soon
   as a source's crawl ends, so the crawl pool never idles; probes stored meanwhile (the crawls' own
   alerts go to the same receiver and compete for the notify pool, as in production).

Bounded: under 3 minutes on 2 cores. Issue 14's target: p99 < 2 s while crawling.

    python bench/alerts.py [--probes 40] [--interval 0.25] [--sources 3] [--pastes 60]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil
from sqlalchemy import select

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import CrawlJob, Delivery
from core.posting import PostingDraft
from core.redis_embedded import free_port
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from leaksentinel.sim import Underground, WebhookReceiver, company_csv
from pipelines.ingest import Ingest

DEADLINE_S = 170.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


class Probes:
    """Stores probe postings and matches each to the webhook that announced it (by the alert's URL)."""

    def __init__(self, ingest: Ingest, emails: list[str], receiver: WebhookReceiver) -> None:
        self.ingest, self.emails, self.receiver = ingest, emails, receiver
        self.stored: dict[str, float] = {}
        self.n = 0

    def store(self, phase: str) -> str:
        self.n += 1
        url = f"bench:{phase}:{self.n}"
        email = self.emails[self.n % len(self.emails)]
        draft = PostingDraft(
            source="local",
            url=url,
            raw=f"probe {phase} {self.n} {time.time_ns()}\n{email}:hunter2\n".encode(),
        )
        self.ingest.detect(draft)
        self.ingest.store(draft)
        self.stored[url] = time.time()  # posting, alert and outbox row committed
        return url

    def arrivals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.receiver.received:
            try:
                url = r.json()["alert"]["url"]
            except (ValueError, KeyError, TypeError):
                continue
            if url in self.stored:
                out.setdefault(url, r.at)
        return out

    def latencies(self, urls: list[str], timeout_s: float) -> list[float]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(set(urls) & set(self.arrivals())) < len(urls):
            time.sleep(0.05)
        got = self.arrivals()
        return [got[u] - self.stored[u] for u in urls if u in got]


def crawls_running(proc: subprocess.Popen[bytes]) -> int:
    """Crawl subprocesses alive under ``run`` now (read from the process table: the bench must not take
    SQLite's lock to watch the service it measures)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    n = 0
    for child in children:
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        n += "crawlers.run" in cmd
    return n


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=60, help="probes per phase")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between probes")
    parser.add_argument("--sources", type=int, default=3, help="sources crawled again and again")
    parser.add_argument("--pastes", type=int, default=20, help="noise pastes on the simulated site")
    args = parser.parse_args()
    started = time.monotonic()
    load = os.getloadavg()  # a busy machine slows crawls and deliveries alike: say so beside the figures
    home = Path(tempfile.mkdtemp(prefix="ls-bench-alerts-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEAKSENTINEL_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env |= {"LEAKSENTINEL_HOME": str(home), "LEAKSENTINEL_SCHEDULER_TICK_S": "0.5"}
    os.environ.clear()
    os.environ.update(env)
    settings = load_settings()
    db = open_database(settings)

    with Underground(seed=11, n_noise=args.pastes) as site, WebhookReceiver() as receiver:
        company = site.company
        tenant = add_tenant(db, company.name, [company.domain], [])
        csv_path = home / "customers.csv"
        csv_path.write_text(company_csv(company), encoding="utf-8")
        rows = hash_csv(
            csv_path, load_or_create_key(settings.key_path), key_column="id", region=company.region
        )
        (home / "customers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        add_records(db, company.name, home / "customers.jsonl")
        add_subscription(db, settings, tenant["id"], webhook=receiver.url, secret="bench")
        operator = {"Authorization": f"Bearer {add_key(db, 'operator')['api_key']}"}
        emails = [r.email for r in company.records][:50]

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = home / "run.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "leaksentinel", "run", "--port", str(port)],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stop_crawls = threading.Event()
        crawl_thread: threading.Thread | None = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit(f"run did not start:\n{log_path.read_text()[-2000:]}")
            ingest = Ingest(settings, db)
            probes = Probes(ingest, emails, receiver)
            for _ in range(3):  # warm-up: the notify pool's first task imports its modules
                probes.latencies([probes.store("warmup")], 30)

            # 1. Baseline: nothing crawls.
            assert crawls_running(proc) == 0
            urls = []
            for _ in range(args.probes):
                urls.append(probes.store("idle"))
                time.sleep(args.interval)
            baseline = probes.latencies(urls, 30)

            # 2. Under crawl load: every source crawled again as soon as its crawl ends.
            names = [f"pastes{i}" for i in range(args.sources)]
            for name in names:
                add_source(db, name, "pastebin", site.base_url, every="1m")

            def keep_crawling() -> None:
                """Crawl-now for the next source whenever the crawl pool has a free slot."""
                turn = 0
                while not stop_crawls.wait(0.5):
                    if crawls_running(proc) >= settings.worker_concurrency:
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        name = names[turn % len(names)]
                        httpx.post(f"{base}/api/v1/sources/{name}/crawl", headers=operator, timeout=5)
                    turn += 1
                    stop_crawls.wait(1.0)  # the crawl subprocess takes a moment to appear

            crawl_thread = threading.Thread(target=keep_crawling, daemon=True)
            crawl_thread.start()
            deadline = time.monotonic() + 60
            while crawls_running(proc) == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            phase_start = time.time()
            urls, during = [], []
            for _ in range(args.probes):
                if time.monotonic() - started > DEADLINE_S - 40:
                    break
                url = probes.store("crawl")
                urls.append(url)
                if crawls_running(proc) > 0:
                    during.append(url)
                time.sleep(args.interval)
            loaded = probes.latencies(urls, 30)
            arrivals = probes.arrivals()
            loaded_during = [arrivals[u] - probes.stored[u] for u in during if u in arrivals]
            phase_end = time.time()
            stop_crawls.set()
            time.sleep(1.0)
            with db.session() as sess:
                jobs = sess.scalars(select(CrawlJob)).all()
                # Crawls that overlapped the phase (finished or not), and how long the finished ones took.
                crawl_jobs = sum(
                    1
                    for j in jobs
                    if (j.finished_at is None or _epoch(j.finished_at) >= phase_start)
                    and _epoch(j.started_at) <= phase_end
                )
                crawl_seconds = [float((j.stats or {}).get("seconds") or 0) for j in jobs if j.status == "ok"]
                crawl_postings = sum(
                    int((j.stats or {}).get("postings") or 0) for j in jobs if j.status == "ok"
                )
                # Alerts the crawls found: stored when their outbox row was written (the database's clock
                # is this machine's), received when the webhook arrived.
                created = dict(sess.execute(select(Delivery.event_id, Delivery.created_at)).all())
            probe_urls = set(probes.stored)
            crawl_alerts = []
            for r in receiver.received:
                try:
                    is_probe = r.json()["alert"]["url"] in probe_urls
                except (ValueError, KeyError, TypeError):
                    continue
                when = created.get(r.headers.get("x-leaksentinel-event-id", ""))
                if not is_probe and when is not None:
                    crawl_alerts.append(r.at - _epoch(when))
            metrics = httpx.get(f"{base}/metrics", headers=operator, timeout=10).text
        finally:
            stop_crawls.set()
            if crawl_thread is not None:
                crawl_thread.join(5)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(25)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def row(label: str, values: list[float], sent: int) -> str:
        if not values:
            return f"{label:<46} {0:>4}/{sent:<4} (none arrived)"
        return (
            f"{label:<46} {len(values):>4}/{sent:<4} {1000 * statistics.median(values):>8.0f} "
            f"{1000 * percentile(values, 0.99):>8.0f} {1000 * max(values):>8.0f}"
        )

    count_line = next(
        (ln for ln in metrics.splitlines() if ln.startswith("leaksentinel_delivery_latency_seconds_count")),
        "",
    )
    print(
        f"machine: {os.cpu_count()} cores (load average {load[0]:.1f} at start), Python {sys.version.split()[0]}; "
        "`leaksentinel run` "
        f"(notify pool {settings.notify_concurrency}, crawl pool {settings.worker_concurrency}, relay poll "
        f"{settings.relay_interval_s}s); probe every {args.interval}s"
    )
    print(f"{'stored -> webhook received':<46} {'n':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(row("baseline: no crawl running", baseline, args.probes))
    print(row("under crawl load: all probes of the phase", loaded, len(urls)))
    print(row("  of which stored while a crawl was running", loaded_during, len(during)))
    print(row("alerts the crawls found (stored in the crawl)", crawl_alerts, len(crawl_alerts)))
    median_crawl = statistics.median(crawl_seconds) if crawl_seconds else 0.0
    print(
        f"crawl load: {args.sources} sources x {len(site.pastes)} pastes; {crawl_jobs} crawls overlapped the "
        f"phase; {len(crawl_seconds)} finished ok in all (median {median_crawl:.1f} s, {crawl_postings} postings); "
        f"webhooks received in all {len(receiver.received)}"
    )
    print(f"from run's /metrics: {count_line}")
    target = percentile(loaded_during or loaded or [float("inf")], 0.99)
    print(f"target p99 < 2 s while crawling: {'met' if target < 2.0 else 'NOT met'} ({target:.2f} s)")
    print(f"bench took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
