"""Read-only sessions do not take SQLite's write lock (issue 14, point 10): a page, a scrape or a search
answers at once while a crawl holds the lock; a normal session still queues behind it."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import func, select

from core.db import open_database
from core.models import Tenant
from core.settings import load_settings


def test_a_reader_does_not_wait_for_a_writer_on_sqlite(database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    with db.session() as sess:
        sess.add(Tenant(name="before"))
    if not db.is_sqlite:  # PostgreSQL readers never wait for writers; the read session must still work
        with db.read_session() as sess:
            assert sess.scalar(select(func.count()).select_from(Tenant)) == 1
        return
    path = db.engine.url.database
    assert path
    holder = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a crawl mid-write
    holder.execute(
        "INSERT INTO tenants (name, regions, settings, created_at) VALUES ('mid', '[]', '{}', '2026-01-01')"
    )
    try:
        started = time.monotonic()
        with db.read_session() as sess:
            count = sess.scalar(select(func.count()).select_from(Tenant))
        assert count == 1  # the last commit, not the writer's pending row
        assert time.monotonic() - started < 1.0
        # a writing session queues behind the lock: it is still waiting when the lock is let go
        done = threading.Event()

        def write() -> None:
            with db.session() as sess:
                sess.add(Tenant(name="after"))
            done.set()

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        assert not done.wait(0.5)
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert done.wait(30)
    with db.read_session() as sess:
        assert sess.scalar(select(func.count()).select_from(Tenant)) == 3
