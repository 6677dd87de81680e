"""Alert delivery benchmark: alerts/s through the whole path (outbox -> relay -> Celery worker -> signed
webhook to a loopback receiver) and latency from posting stored to webhook received, beside a bare
Celery task round trip on the same broker and worker in the same run.

    python bench/alerts.py [--alerts 300] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from alerting.relay import Relay
from core.celery_app import make_celery
from core.db import open_database
from core.hashing import load_or_create_key
from core.posting import PostingDraft
from core.redis_embedded import EmbeddedRedis
from core.settings import load_settings
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from leaksentinel.processes import WorkerProcess
from pipelines.ingest import Ingest


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                alert_id = int(json.loads(body)["alert"]["id"])
                with rx.lock:
                    rx.arrivals.setdefault(alert_id, time.time())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--single", type=int, default=30, help="alerts sent one at a time for unloaded latency"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ls-bench-alerts-"))
    os.environ["LEAKSENTINEL_HOME"] = str(home)
    settings = load_settings(relay_interval_s=0.05)
    db = open_database(settings)
    add_tenant(db, "acme", [], [])
    csv_path = home / "c.csv"
    csv_path.write_text("email\n" + "".join(f"user{i}@acme.example\n" for i in range(args.alerts)))
    rows = hash_csv(csv_path, load_or_create_key(settings.key_path))
    (home / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, "acme", home / "c.jsonl")
    receiver = Receiver()
    add_subscription(db, settings, "acme", webhook=receiver.url, secret="bench")

    server = EmbeddedRedis()
    server.start()
    worker = WorkerProcess(settings, server.url, queues="notify", concurrency=args.concurrency).start()
    celery = make_celery(settings, server.url)
    client = redis.Redis.from_url(server.url)
    try:
        # Baseline: a bare task round trip (send -> worker runs it), same broker and worker.
        for i in range(20):  # warm-up: the worker pool starts
            celery.send_task("alerting.echo", args=[f"w{i}"], queue="notify")
        deadline = time.time() + 60
        while client.llen("leaksentinel:bench:echo") < 20 and time.time() < deadline:
            time.sleep(0.05)
        client.delete("leaksentinel:bench:echo")
        sent: dict[str, float] = {}
        start = time.time()
        for i in range(args.alerts):
            token = f"t{i}"
            sent[token] = time.time()
            celery.send_task("alerting.echo", args=[token], queue="notify")
        while client.llen("leaksentinel:bench:echo") < args.alerts and time.time() < deadline + 120:
            time.sleep(0.02)
        arrivals = [x.decode().split() for x in client.lrange("leaksentinel:bench:echo", 0, -1)]
        bare_lat = [float(t) - sent[tok] for tok, t in arrivals]
        bare_rate = len(arrivals) / (max(float(t) for _, t in arrivals) - start)

        # The whole path: store (outbox in the posting's transaction) -> relay -> worker -> webhook.
        relay = Relay(db, celery, settings)
        relay.start()
        ingest = Ingest(settings, db)
        stored: dict[int, float] = {}
        start = time.time()
        for i in range(args.alerts):
            draft = PostingDraft(
                source="local", url=f"bench:{i}", raw=f"leak {i}\nuser{i}@acme.example:pw\n".encode()
            )
            ingest.detect(draft)
            ingest.store(draft)
            stored[i + 1] = time.time()  # alert ids are 1..N in order
        while len(receiver.arrivals) < args.alerts and time.time() < start + 300:
            time.sleep(0.02)
        full_lat = [receiver.arrivals[a] - stored[a] for a in receiver.arrivals if a in stored]
        full_rate = len(receiver.arrivals) / (max(receiver.arrivals.values()) - start)

        # Unloaded latency: one alert at a time, the next stored when the previous arrived.
        single: list[float] = []
        for i in range(args.alerts, args.alerts + args.single):
            draft = PostingDraft(
                source="local",
                url=f"bench:{i}",
                raw=f"single {i}\nuser{i % args.alerts}@acme.example\n".encode(),
            )
            ingest.detect(draft)
            before = len(receiver.arrivals)
            t0 = time.time()
            ingest.store(draft)
            while len(receiver.arrivals) == before and time.time() < t0 + 30:
                time.sleep(0.002)
            single.append(max(receiver.arrivals.values()) - t0)
        relay.stop()
    finally:
        worker.stop(5)
        server.stop()

    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {args.alerts} alerts, "
        f"worker concurrency {args.concurrency}, relay poll {settings.relay_interval_s}s"
    )
    print(f"{'path':<44} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    print(
        f"{'bare Celery task round trip (baseline)':<44} {bare_rate:>8.1f} "
        f"{1000 * statistics.median(bare_lat):>8.1f} {1000 * percentile(bare_lat, 0.99):>8.1f}"
    )
    print(
        f"{'alert burst: stored -> webhook received':<44} {full_rate:>8.1f} "
        f"{1000 * statistics.median(full_lat):>8.1f} {1000 * percentile(full_lat, 0.99):>8.1f}"
    )
    print(
        f"{'alert one at a time: stored -> received':<44} {'':>8} "
        f"{1000 * statistics.median(single):>8.1f} {1000 * percentile(single, 0.99):>8.1f}"
    )
    print(f"delivered {len(receiver.arrivals)}/{args.alerts + args.single}")


if __name__ == "__main__":
    main()
