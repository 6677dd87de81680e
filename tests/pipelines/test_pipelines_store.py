"""Storing postings: one alert per (tenant, leak), reposts as sightings, record lineage, the outbox."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sqlalchemy import func, select

from core.db import open_database
from core.hashing import load_or_create_key
from core.models import Alert, Delivery, Sighting, Source
from core.posting import PostingDraft
from core.settings import Settings, load_settings
from leaksentinel.actions.subscriptions import add_subscription
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.company_hash import hash_csv
from pipelines.ingest import Ingest


def _emails(n: int, start: int = 0) -> list[str]:
    return [f"user{i:04d}@acme.example" for i in range(start, start + n)]


def _setup(tmp_path: Path) -> Settings:  # the tests take `database_url`: SQLite and PostgreSQL
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", [], [])
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,email\n" + "".join(f"r{i},{e}\n" for i, e in enumerate(_emails(200))))
    rows = hash_csv(csv_path, load_or_create_key(settings.key_path), key_column="id")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, "acme", tmp_path / "c.jsonl")
    add_subscription(db, settings, "acme", webhook="http://127.0.0.1:9/hook", secret="x")
    with db.session() as sess:
        for name in ("site-a", "site-b", "site-c"):
            sess.add(Source(name=name, kind="pastebin", url=f"http://{name}.example"))
    return settings


def _post(settings: Settings, source: str, url: str, text: str) -> None:
    draft = PostingDraft(source=source, url=url, raw=text.encode())
    with Ingest(settings, open_database(settings)) as ingest:
        ingest.detect(draft)
        ingest.store(draft)


def _combo(emails: list[str], header: str, seed: int) -> str:
    rng = random.Random(seed)
    lines = [header] + [f"{e}:{rng.choice(['123456', 'qwerty', 'passw0rd', 'dragon'])}" for e in emails]
    return "\n".join(lines) + "\n"


def test_three_reposts_on_three_sources_make_one_alert_with_three_sightings(
    tmp_path: Path, database_url: str
) -> None:
    settings = _setup(tmp_path)
    body = _combo(_emails(40), "== fresh acme combo ==", 1)
    _post(settings, "site-a", "http://site-a.example/1", body)
    _post(
        settings,
        "site-b",
        "http://site-b.example/x",
        body.replace("== fresh acme combo ==", "reupload, enjoy"),
    )
    _post(settings, "site-c", "http://site-c.example/p/9", body + "\nmirror of site-a\n")
    db = open_database(settings)
    with db.session() as sess:
        alerts = sess.scalars(select(Alert)).all()
        assert len(alerts) == 1
        urls = [s.url for s in sess.scalars(select(Sighting).order_by(Sighting.id))]
        assert urls == ["http://site-a.example/1", "http://site-b.example/x", "http://site-c.example/p/9"]
        assert alerts[0].records == 40 and alerts[0].new_records == 40
        # Notified once, not once per repost.
        assert sess.scalar(select(func.count()).select_from(Delivery)) == 1


def test_other_text_sharing_most_records_is_its_own_alert_reported_as_recycled(
    tmp_path: Path, database_url: str
) -> None:
    settings = _setup(tmp_path)
    _post(settings, "site-a", "http://site-a.example/1", _combo(_emails(100), "acme part 1", 1))
    # Another dump: 90 of its 100 records leaked before, laid out differently (CSV, not a combo list).
    recycled = _emails(90, start=10) + _emails(10, start=150)
    csv_text = "name,mail,city\n" + "".join(f"Person {i},{e},City{i % 7}\n" for i, e in enumerate(recycled))
    _post(settings, "site-b", "http://site-b.example/2", csv_text)
    db = open_database(settings)
    with db.session() as sess:
        alerts = sess.scalars(select(Alert).order_by(Alert.id)).all()
        assert len(alerts) == 2
        second = alerts[1]
        assert second.records == 100 and second.new_records == 10
        assert sess.scalar(select(func.count()).select_from(Delivery)) == 2


def test_an_unrelated_short_posting_is_not_taken_for_a_repost(tmp_path: Path, database_url: str) -> None:
    settings = _setup(tmp_path)
    _post(settings, "site-a", "http://site-a.example/1", "user0001@acme.example\n")
    _post(settings, "site-b", "http://site-b.example/1", "contact user0002@acme.example\n")
    with open_database(settings).session() as sess:
        assert sess.scalar(select(func.count()).select_from(Alert)) == 2


def test_a_false_positive_silences_the_same_finding_on_the_same_content(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    cli("tenant", "add", "acme")
    cli("watch", "add", "--tenant", "acme", "--keyword", "acme")
    first, repost, other = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    first.write_text("ACME hiring event next week\n")
    repost.write_text("ACME hiring event next week\n")
    other.write_text("selling acme customer database, 20k rows\n")
    cli("scan", "--store", str(first))
    alert = cli("alerts", "list", "--json").jsonl()[0]
    assert cli("alerts", "false-positive", str(alert["id"])).code == 0
    cli("scan", "--store", str(repost))
    alerts = cli("alerts", "list", "--json").jsonl()
    assert len(alerts) == 1 and alerts[0]["sightings"] == [str(first)]  # silenced, not even a sighting
    cli("scan", "--store", str(other))
    alerts = cli("alerts", "list", "--json").jsonl()
    assert len(alerts) == 2 and alerts[1]["url"] == str(other)  # other content: still reported
