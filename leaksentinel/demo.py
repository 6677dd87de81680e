"""``leaksentinel demo``: the whole path on a fresh machine with no network, in under a minute.

Why its own home (``$LEAKSENTINEL_HOME/demo``, wiped each run): the demo registers a made-up company
and crawls a simulated paste site; it must never mix that into the real deployment's data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from typing import IO, Any

from sqlalchemy import func, select

from alerting.signing import verify
from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Delivery
from core.settings import Settings
from crawlers.job import run_crawl
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from leaksentinel.service import Service
from leaksentinel.sim import Underground, WebhookReceiver, company_csv

__all__ = ["run_demo"]


def _say(out: IO[str], text: str) -> None:
    out.write(text + "\n")
    out.flush()


def run_demo(settings: Settings, out: IO[str] = sys.stdout, *, timeout_s: float = 45.0) -> dict[str, Any]:
    started = time.monotonic()
    home = settings.home / "demo"
    shutil.rmtree(home, ignore_errors=True)
    demo = settings.with_(home=home, database_url="", redis_url="", search_url="", allow_private_targets=True)
    with Underground(seed=7) as underground, WebhookReceiver() as receiver:
        company = underground.company
        db = open_database(demo)
        _say(out, f"leaksentinel demo: a simulated paste site at {underground.base_url}")
        company_id = add_tenant(db, company.name, [company.domain], [company.region], actor="demo")["id"]
        csv_path = home / "company.csv"
        csv_path.write_text(company_csv(company, include_card=True), encoding="utf-8")
        key = load_or_create_key(demo.key_path)
        hashed = home / "company.hashes.jsonl"
        with hashed.open("w", encoding="utf-8") as fh:
            for row in hash_csv(csv_path, key, key_column="id", region=company.region):
                fh.write(json.dumps(row) + "\n")
        registered = add_records(db, company_id, hashed, actor="demo")
        sub = add_subscription(db, demo, company_id, webhook=receiver.url, actor="demo")
        add_source(db, "paste-site", "pastebin", underground.base_url, actor="demo")
        _say(
            out,
            f"  registered {registered['records']} records of {company.name} as keyed hashes "
            f"(nothing in clear leaves the company)",
        )
        service = Service(demo, http=False, scheduler=False).start()
        try:
            summary = run_crawl(demo, "paste-site", stderr=subprocess.DEVNULL)
            with db.session() as sess:
                expected = int(sess.scalar(select(func.count()).select_from(Delivery)) or 0)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                with db.session() as sess:
                    sent = int(
                        sess.scalar(
                            select(func.count())
                            .select_from(Delivery)
                            .where(Delivery.status.in_(("sent", "dead")))
                        )
                        or 0
                    )
                if sent >= expected:
                    break
                time.sleep(0.2)
        finally:
            service.stop()
        alerts = list_alerts(db, company_id)
        events = [r for r in receiver.received if r.status == 200]
        valid = sum(
            1 for r in events if verify(sub["secret"], r.body, r.headers.get("x-leaksentinel-signature", ""))
        )
    seconds = time.monotonic() - started
    leaked = sum(a["records"] for a in alerts)
    _say(
        out,
        f"  crawled   {summary['postings']} postings in {summary['seconds']:.1f} s "
        f"({summary['fetched']} pages fetched, {summary['errors']} errors)",
    )
    reposts = sum(len(a["sightings"]) - 1 for a in alerts)
    _say(
        out,
        f"  found     {len(alerts)} leaks of {company.name}'s data ({leaked} records; "
        f"{reposts} repost(s) joined their leak's alert)",
    )
    _say(
        out, f"  delivered {len(events)} alert events to the company's webhook, {valid} with valid signatures"
    )
    for alert in alerts:
        _say(
            out,
            f"    alert {alert['id']:>3}  {alert['severity']:<8} {alert['records']:>3} records "
            f"({alert['new_records']} new)  {alert['url']}",
        )
    _say(out, f"  done in {seconds:.1f} s; nothing is left running.")
    _say(out, f"  look next: LEAKSENTINEL_HOME={home} leaksentinel alerts list")
    return {
        "alerts": len(alerts),
        "delivered": len(events),
        "valid_signatures": valid,
        "postings": summary["postings"],
        "seconds": round(seconds, 1),
        "home": str(home),
    }
