"""Posting texts by month: on PostgreSQL a purge drops whole month partitions of ``posting_texts``, yet
every text an alert holds (even one raised after its month began) survives; SQLite deletes the rows.
Partitions exist before texts need them, a text of a month never seen lands in the DEFAULT partition
(never a failed insert) and gets a partition of its own at the next upkeep; migration 0011 moves the
texts stored before it."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from core.db import Database, open_database
from core.models import HELD_MONTH, Alert, Posting, PostingText, Sighting, Source, Tenant, month_of
from core.settings import load_settings
from leaksentinel.actions.retention import month_partitions, purge, upkeep

NOW = datetime.now(UTC)


def _months_back(n: int) -> datetime:
    """Mid-month, ``n`` months before this one."""
    year, month = NOW.year, NOW.month - n
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 15, 12, tzinfo=UTC)


def _partitions(db: Database) -> set[str]:
    """The partitions of posting_texts, read from the catalogue (pg_inherits, pg_class)."""
    with db.engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'posting_texts'::regclass"
                )
            ).scalars()
        )


def _table_exists(db: Database, name: str) -> bool:
    with db.engine.connect() as conn:
        return (
            conn.execute(text("SELECT 1 FROM pg_class WHERE relname = :n"), {"n": name}).first() is not None
        )


def _store(db: Database, names_fetched: dict[str, datetime]) -> dict[str, int]:
    ids = {}
    with db.session() as sess:
        source = sess.scalar(select(Source).where(Source.name == "paste"))
        if source is None:
            source = Source(name="paste", kind="pastebin", url="http://127.0.0.1:1/")
            sess.add(source)
            sess.flush()
        for name, fetched in names_fetched.items():
            body = f"leaked row {name} alice@example.com"
            p = Posting(
                source_id=source.id,
                url=f"http://127.0.0.1:1/{name}",
                fetched=fetched,
                content_hash=hashlib.sha256(body.encode()).hexdigest(),
                text=body,
            )
            sess.add(p)
            sess.flush()
            ids[name] = p.id
    return ids


def _texts(db: Database) -> dict[int, str]:
    with db.session() as sess:
        return {p.id: p.text for p in sess.scalars(select(Posting))}


def test_purge_drops_old_months_and_keeps_what_alerts_hold(database_url: str) -> None:
    settings = load_settings()
    assert settings.retention_days == 180
    db = open_database(settings)
    old = _months_back(8)  # wholly before the cutoff (about six months back)
    ids = _store(db, {"unheld": old, "first": old, "sighted": old, "later": old, "new": NOW})
    with db.session() as sess:  # an alert from the start, and one of its sightings
        tenant = Tenant(name="acme")
        sess.add(tenant)
        sess.flush()
        alert = Alert(tenant_id=tenant.id, posting_id=ids["first"], severity="high")
        sess.add(alert)
        sess.flush()
        sess.add(Sighting(alert_id=alert.id, posting_id=ids["sighted"], url="http://127.0.0.1:1/sighted"))
    postgres = bool(database_url)
    month_table = f"posting_texts_p{month_of(old):%Y%m}"
    if postgres:
        made = upkeep(db, now=NOW)  # the month never seen until now gets its own partition
        assert month_table in made and month_table in _partitions(db)
        with db.engine.connect() as conn:  # the old texts moved out of the DEFAULT partition into it
            assert conn.execute(text(f"SELECT count(*) FROM {month_table}")).scalar_one() == 4
            assert conn.execute(text("SELECT count(*) FROM posting_texts_default")).scalar_one() == 0
    with db.session() as sess:  # held later: an alert raised long after its month began
        tenant_id = sess.scalar(select(Tenant.id))
        assert tenant_id is not None
        sess.add(Alert(tenant_id=tenant_id, posting_id=ids["later"], severity="low"))
    before = _texts(db)
    partitions_before = _partitions(db) if postgres else set()

    dry = purge(db, settings, dry_run=True)
    assert dry["postings"] == 1 and dry["held_by_alerts"] == 3
    assert dry["partitions_dropped"] == (1 if postgres else 0)
    assert _texts(db) == before  # a dry run drops and deletes nothing
    if postgres:
        assert _partitions(db) == partitions_before and _table_exists(db, month_table)

    done = purge(db, settings)
    assert done["postings"] == 1 and done["held_by_alerts"] == 3 and not done["dry_run"]
    assert done["partitions_dropped"] == (1 if postgres else 0)
    after = _texts(db)
    assert after[ids["unheld"]] == ""  # its text went, its row stays
    for kept in ("first", "sighted", "later", "new"):
        assert after[ids[kept]] == before[ids[kept]]
    if postgres:
        assert month_table not in _partitions(db) and not _table_exists(db, month_table)
        with db.session() as sess:
            held_months = dict(sess.execute(select(PostingText.posting_id, PostingText.retain_month)).all())
        assert {held_months[ids[n]] for n in ("first", "sighted", "later")} == {HELD_MONTH}
        assert held_months[ids["new"]] == month_of(NOW)
    with db.session() as sess:
        row = sess.get(Posting, ids["unheld"])
        assert row is not None and row.url.endswith("/unheld") and len(row.content_hash) == 64
        assert sess.scalar(select(Posting.id).where(Posting.text == "")) == ids["unheld"]

    again = purge(db, settings)
    assert again["postings"] == 0 and again["partitions_dropped"] == 0
    assert _texts(db) == after


def test_a_text_held_alert_released_is_purged_from_the_held_partition(database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    ids = _store(db, {"once": _months_back(8)})
    with db.session() as sess:
        tenant = Tenant(name="acme")
        sess.add(tenant)
        sess.flush()
        sess.add(Alert(tenant_id=tenant.id, posting_id=ids["once"], severity="low"))
    assert purge(db, settings)["postings"] == 0
    assert _texts(db)[ids["once"]]
    with db.session() as sess:  # the alert is deleted: nothing holds the text any more
        for alert in sess.scalars(select(Alert)):
            sess.delete(alert)
    assert purge(db, settings)["postings"] == 1
    assert _texts(db)[ids["once"]] == ""


def test_partitions_exist_ahead_and_a_text_of_an_unseen_month_is_never_refused(database_url: str) -> None:
    if not database_url:
        pytest.skip("partitions are PostgreSQL's (SQLite keeps one plain table)")
    db = open_database(load_settings())
    upkeep(db, now=NOW)
    months = set(month_partitions(db))
    this = month_of(NOW)
    following = (this.replace(day=28) + timedelta(days=7)).replace(day=1)
    assert {this, following} <= months  # made before any text needs them
    assert {"posting_texts_default", "posting_texts_held"} <= _partitions(db)

    far = datetime(2031, 5, 9, 8, tzinfo=UTC)  # a month no partition was made for
    assert month_of(far) not in months
    ids = _store(db, {"future": far})  # lands in the DEFAULT partition: the insert does not fail
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT posting_id FROM posting_texts_default")).scalars().all() == [
            ids["future"]
        ]
    assert upkeep(db, now=NOW) == ["posting_texts_p203105"]  # the next upkeep gives it its own partition
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM posting_texts_default")).scalar_one() == 0
        assert conn.execute(text("SELECT posting_id FROM posting_texts_p203105")).scalars().all() == [
            ids["future"]
        ]
    assert _texts(db)[ids["future"]] == "leaked row future alice@example.com"
    assert upkeep(db, now=NOW) == []  # nothing left to do


def _alembic(db: Database, revision: str, *, down: bool = False) -> None:
    import core.db

    cfg = Config()
    cfg.set_main_option("script_location", str(core.db._MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


@pytest.mark.empty_database
def test_migration_0011_moves_the_stored_texts(database_url: str) -> None:
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        _alembic(db, "0010")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sources (id, name, kind, url, enabled, render, options, cursor, health, "
                    "failures_in_row, created_at) VALUES (1, 'p', 'pastebin', 'u', true, false, '{}', '{}', "
                    "'unknown', 0, :now)"
                ),
                {"now": NOW},
            )
            for pid, fetched, body in ((1, _months_back(9), "old text"), (2, NOW, "new text"), (3, NOW, "")):
                conn.execute(
                    text(
                        "INSERT INTO postings (id, source_id, url, fetched, content_hash, size, text) "
                        "VALUES (:id, 1, :url, :f, 'h', 0, :t)"
                    ),
                    {"id": pid, "url": f"u{pid}", "f": fetched, "t": body},
                )
        _alembic(db, "head")
        with db.session() as sess:
            rows = {r.posting_id: (r.retain_month, r.text) for r in sess.scalars(select(PostingText))}
            texts = {p.id: p.text for p in sess.scalars(select(Posting))}
        assert rows == {1: (month_of(_months_back(9)), "old text"), 2: (month_of(NOW), "new text")}
        assert texts == {1: "old text", 2: "new text", 3: ""}
        if database_url:  # the old month got a partition; the text sits in it, not in DEFAULT
            assert f"posting_texts_p{month_of(_months_back(9)):%Y%m}" in _partitions(db)
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM posting_texts_default")).scalar_one() == 0
        _alembic(db, "0010", down=True)  # and back
        with db.engine.connect() as conn:
            back = dict(conn.execute(text("SELECT id, text FROM postings")).all())
        assert back == {1: "old text", 2: "new text", 3: ""}
    finally:
        db.dispose()


def test_month_of_is_the_utc_month() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2026, 12, 1)
    later = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)
    assert month_of(later.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))) == date(2027, 1, 1)


def test_postings_listed_read_their_texts_in_one_more_query_not_one_each(database_url: str) -> None:
    from sqlalchemy import event

    db = open_database(load_settings())
    ids = _store(db, {f"p{i}": NOW for i in range(30)})
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read_session() as sess:
            texts = [p.text for p in sess.scalars(select(Posting).order_by(Posting.id))]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert texts == [f"leaked row p{i} alice@example.com" for i in range(30)]
    assert len(ids) == 30
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, reads  # the postings, then their texts (selectin), whatever their number


def test_a_posting_fetched_again_keeps_its_text_when_its_old_month_is_dropped(database_url: str) -> None:
    if not database_url:
        pytest.skip("partitions are PostgreSQL's (SQLite keeps one plain table)")
    settings = load_settings()
    db = open_database(settings)
    old = _months_back(8)
    ids = _store(db, {"refetched": old, "gone": old})
    with db.session() as sess:  # fetched again today: its text row still carries the old month
        posting = sess.get(Posting, ids["refetched"])
        assert posting is not None
        posting.fetched = NOW
    done = purge(db, settings)
    assert done["postings"] == 1 and done["partitions_dropped"] == 1
    assert f"posting_texts_p{month_of(old):%Y%m}" not in _partitions(db)
    texts = _texts(db)
    assert texts[ids["gone"]] == "" and texts[ids["refetched"]] == "leaked row refetched alice@example.com"
    with db.session() as sess:
        row = sess.scalar(select(PostingText).where(PostingText.posting_id == ids["refetched"]))
        assert row is not None and row.retain_month == month_of(NOW)  # moved to the month it was fetched
