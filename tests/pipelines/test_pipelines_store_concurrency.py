"""One alert per leak when two processes store the same text at the same moment.

Each child process detects the same three leaks (two tenants watch the same records), waits at a start
barrier (a file), then stores them under its own source. A test-only pause inside the "new leak or
repost?" critical section (``pipelines.leaklock.PAUSE_ENV``) holds each decision open long enough that,
without the per-tenant, per-band lock, both processes would look for an earlier copy before either
committed and both would raise an alert (on PostgreSQL every round did, with the lock removed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Alert, Delivery, Posting, Sighting, Source
from core.settings import load_settings
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from pipelines.leaklock import PAUSE_ENV, leak_lock_keys

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import pathlib, sys, time
from core.db import open_database
from core.posting import PostingDraft
from core.settings import load_settings
from pipelines.ingest import Ingest

name, texts, barrier = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
settings = load_settings()
db = open_database(settings)
with Ingest(settings, db) as ingest:
    drafts = []
    for path in sorted(texts.glob("*.txt")):
        draft = PostingDraft(source=name, url=f"http://{name}.example/{path.stem}", raw=path.read_bytes())
        ingest.detect(draft)
        drafts.append(draft)
    (barrier / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.002)
    for draft in drafts:
        result = ingest.store(draft)
        print(result.posting_id, result.new, result.alerts, flush=True)
"""


def _setup(tmp_path: Path) -> None:
    settings = load_settings()
    db = open_database(settings)
    emails = [f"user{i:04d}@acme.example" for i in range(120)]
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email\n" + "".join(f"r{i},{e}\n" for i, e in enumerate(emails)))
    rows = hash_csv(csv_path, load_or_create_key(settings.key_path), key_column="id")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for tenant in ("acme", "beta"):  # two tenants watching the same records: one alert each per leak
        add_tenant(db, tenant, [], [])
        add_records(db, tenant, tmp_path / "c.jsonl")
        add_subscription(db, settings, tenant, webhook="http://127.0.0.1:9/hook", secret="x")
    with db.session() as sess:
        for name in ("site-a", "site-b"):
            sess.add(Source(name=name, kind="pastebin", url=f"http://{name}.example"))
    texts = tmp_path / "texts"
    texts.mkdir()
    for n in range(3):  # three different leaks (different records, different text)
        body = [f"== combo {n} from a fresh breach =="] + [
            f"{e}:hunter{n}{i}" for i, e in enumerate(emails[n * 40 : n * 40 + 30])
        ]
        (texts / f"leak{n}.txt").write_text("\n".join(body) + "\n")


def _race(tmp_path: Path, pause_s: float) -> list[str]:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, PAUSE_ENV: str(pause_s)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, name, str(tmp_path / "texts"), str(barrier)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("site-a", "site-b")
    ]
    deadline = time.monotonic() + 90
    while not all((barrier / f"ready-{n}").exists() for n in ("site-a", "site-b")):
        assert time.monotonic() < deadline, "children never got ready"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    (barrier / "go").touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-3000:]
        outs.append(out.decode())
    return outs


def test_two_processes_storing_the_same_leaks_raise_one_alert_per_tenant(
    tmp_path: Path, database_url: str
) -> None:
    _setup(tmp_path)
    _race(tmp_path, pause_s=0.4)
    db = open_database(load_settings())
    with db.session() as sess:
        assert sess.scalar(select(func.count()).select_from(Posting)) == 6  # both copies are kept
        alerts = sess.scalars(select(Alert)).all()
        # One alert per (tenant, leak): 2 tenants x 3 leaks, whichever process stored first.
        assert len(alerts) == 6, [(a.tenant_id, a.posting_id) for a in alerts]
        assert len({(a.tenant_id, a.posting_id) for a in alerts}) == 6
        # One delivery per alert (one subscription per tenant): each leak notified once per tenant.
        assert sess.scalar(select(func.count()).select_from(Delivery)) == 6
        # The other copy joined each alert as a sighting.
        for alert in alerts:
            urls = sorted(sess.scalars(select(Sighting.url).where(Sighting.alert_id == alert.id)))
            assert len(urls) == 2 and {u.split("/")[2] for u in urls} == {"site-a.example", "site-b.example"}


def test_lock_keys_meet_for_near_duplicates_and_separate_tenants() -> None:
    """Texts one bit apart share bands, so their keys overlap; another tenant never shares a key."""
    a = leak_lock_keys([1], 0x0123_4567_89AB_CDEF, "h1")
    b = leak_lock_keys([1], 0x0123_4567_89AB_CDEE, "h2")
    assert set(a) & set(b) and a == sorted(a)
    assert not set(a) & set(leak_lock_keys([2], 0x0123_4567_89AB_CDEF, "h1"))
