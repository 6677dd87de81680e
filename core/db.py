"""Database engine, sessions and migrations, for SQLite (embedded) and PostgreSQL (distributed).

Why: every process (CLI, crawl job, worker, service) opens the same database; SQLite gets WAL and a
busy timeout so they can share the file, and the schema is always brought to Alembic's head first.
Opening also makes the home owner-only (core.home) and binds the key that seals secret columns
(core.secretbox) to the engine.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from core.home import secure_home
from core.secretbox import SecretBox, bind_box, secrets_key_path
from core.settings import Settings

__all__ = ["Database", "open_database"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_lock = threading.Lock()
_cache: dict[str, Database] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    """An engine plus a session factory; one per URL per process."""

    def __init__(self, url: str, secrets_key: Path | None = None) -> None:
        """``secrets_key``: the file whose key seals the secret columns (core.secretbox)."""
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Take the write lock at BEGIN so concurrent writers queue instead of failing on upgrade.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))

            @event.listens_for(self.engine, "connect")
            def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None

        if secrets_key is not None:
            bind_box(self.engine.dialect, SecretBox(secrets_key))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        sess = self.sessions()
        try:
            yield sess
            sess.commit()
        except BaseException:
            sess.rollback()
            raise
        finally:
            sess.close()

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """The process-wide Database for these settings, migrated on first open."""
    url = settings.effective_database_url
    with _lock:
        db = _cache.get(url)
        if db is None:
            if url.startswith("sqlite"):
                secure_home(settings)  # creates the database file 0600 before SQLite can make it 0644
            else:
                with contextlib.suppress(OSError):  # a server database: the home only holds keys
                    secure_home(settings)
            db = Database(url, secrets_key=secrets_key_path(settings.home, settings.secrets_key_file))
            if migrate:
                db.migrate()
            _cache[url] = db
        return db
