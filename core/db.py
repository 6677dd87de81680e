"""Database engine, sessions and migrations, for SQLite (embedded) and PostgreSQL (distributed).

Why: every process (CLI, crawl job, worker, service) opens the same database; SQLite gets WAL and a
busy timeout so they can share the file, and the schema is always brought to Alembic's head first.
Opening also makes the home owner-only (core.home) and binds the key that seals secret columns
(core.secretbox) to the engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.home import secure_home
from core.secretbox import SecretBox, bind_box, secrets_key_path
from core.settings import Settings

__all__ = ["Database", "OutageLog", "RetryPolicy", "is_transient", "open_database", "retry_transient"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration's revision. A database at it is not handed to Alembic at all: importing Alembic and
#: reading every migration script cost each process (a crawl, a `scan`) about 0.3 s. Move it with each new
#: migration; tests/core/test_core_db_head.py fails until it is.
HEAD_REVISION = "0013"
_lock = threading.Lock()
_cache: dict[str, Database] = {}


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def _busy_timeout_ms() -> int:
    """How long a SQLite writer waits for the write lock before "database is locked" (30 s by default)."""
    return int(_env_number("LEAKSENTINEL_SQLITE_BUSY_TIMEOUT_MS", 30_000))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={_busy_timeout_ms()}")
    cur.close()


#: PostgreSQL SQLSTATEs worth another try: serialization failure, deadlock, the server shutting down or
#: ending the connection (restart, failover, pg_terminate_backend), connection failures.
_TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"}
)
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may pass if the same transaction is simply run again.

    Why this list: a lost connection (the server restarted, or ended our backend), a serialization
    failure or deadlock, and SQLite's write lock held past the busy timeout all leave nothing behind
    (the transaction rolled back); a constraint violation or a bad statement would fail again."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _TRANSIENT_SQLSTATES:
        return True
    text = str(orig).lower()
    if any(marker in text for marker in _SQLITE_BUSY):
        return True
    module = type(orig).__module__ if orig is not None else ""
    # Any OperationalError from a PostgreSQL driver: connection refused while the server restarts, an
    # admin shutdown, "server closed the connection unexpectedly"...
    return isinstance(exc, SAOperationalError) and module.startswith(("psycopg", "psycopg2"))


class RetryPolicy:
    """Bounded retries with exponential backoff and jitter (defaults ride out a ~10 s outage).

    ``LEAKSENTINEL_DB_RETRY_ATTEMPTS`` / ``_DB_RETRY_BASE_S`` / ``_DB_RETRY_MAX_S`` override the defaults
    (operators with slower failovers; tests that want a short budget)."""

    def __init__(self, attempts: int | None = None, base_s: float | None = None, max_s: float | None = None):
        self.attempts = max(1, int(attempts or _env_number("LEAKSENTINEL_DB_RETRY_ATTEMPTS", 8)))
        self.base_s = base_s if base_s is not None else _env_number("LEAKSENTINEL_DB_RETRY_BASE_S", 0.1)
        self.max_s = max_s if max_s is not None else _env_number("LEAKSENTINEL_DB_RETRY_MAX_S", 4.0)

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based): half to all of min(max, base * 2^(n-1))."""
        ceiling = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


def retry_transient(
    fn: Callable[[], T], *, what: str = "database work", policy: RetryPolicy | None = None
) -> T:
    """``fn()``, run again after a transient database error (``is_transient``), a bounded number of times.

    ``fn`` must be a whole transaction (open, work, commit), so a retry starts from scratch; the last
    error is raised when the attempts are used up or the error is not transient."""
    policy = policy or RetryPolicy()
    attempt = 1
    while True:
        try:
            return fn()
        except DBAPIError as exc:
            if attempt >= policy.attempts or not is_transient(exc):
                raise
            wait = policy.delay(attempt)
            log.warning(
                "%s: transient database error (attempt %d of %d), retrying in %.2f s: %s",
                what,
                attempt,
                policy.attempts,
                wait,
                " ".join(str(exc.orig).split())[:200],
            )
            time.sleep(wait)
            attempt += 1


#: Execution option marking a read-only session's connection (a deferred BEGIN on SQLite).
READ_ONLY_OPTION = "leaksentinel_read_only"


class Database:
    """An engine plus a session factory; one per URL per process."""

    def __init__(self, url: str, secrets_key: Path | None = None) -> None:
        """``secrets_key``: the file whose key seals the secret columns (core.secretbox)."""
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": _busy_timeout_ms() / 1000, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Take the write lock at BEGIN so concurrent writers queue instead of failing on upgrade;
            # read-only sessions (``read_session``) begin deferred and never wait for a writer (WAL).
            event.listen(
                self.engine,
                "begin",
                lambda conn: conn.exec_driver_sql(
                    "BEGIN" if conn.get_execution_options().get(READ_ONLY_OPTION) else "BEGIN IMMEDIATE"
                ),
            )

            @event.listens_for(self.engine, "connect")
            def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None

        if secrets_key is not None:
            bind_box(self.engine.dialect, SecretBox(secrets_key))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def at_head(self) -> bool:
        """True when the database says it is at HEAD_REVISION (a read; on SQLite it takes no write lock)."""
        try:
            with self.engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
                versions = [row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
        except DBAPIError:  # no alembic_version yet (a new database), or unreachable: let Alembic say
            return False
        return versions == [HEAD_REVISION]

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (nothing to do, and Alembic not even loaded, when
        the database is at HEAD_REVISION already: every process opens the database)."""
        if self.at_head():
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        # Alembic says "Context impl ..." at INFO on every open: noise in a role's log, and it broke the
        # one line a refused start must print (a machine with the wrong key). Its warnings still show.
        alembic_log = logging.getLogger("alembic")
        previous = alembic_log.level
        if previous < logging.WARNING:
            alembic_log.setLevel(logging.WARNING)
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # The machines of a fleet start together after an upgrade: without this, each ran the
                    # same DDL at once and all but one failed (duplicate type). One migrates; the others
                    # wait here, then read the version it committed and have nothing to do.
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            alembic_log.setLevel(previous)

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

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads: on SQLite it does not take the write lock, so pages, metrics
        and searches never queue behind a crawl's writes (WAL readers see the last commit). Writing
        through it fails or waits like any deferred transaction: use ``session`` for writes."""
        sess = self.read_sessions()
        try:
            yield sess
            sess.commit()  # ends the read; nothing to write, and loaded objects stay usable
        except BaseException:
            sess.rollback()
            raise
        finally:
            sess.close()

    def run(self, work: Callable[[Session], T], *, what: str = "database work") -> T:
        """``work(session)`` in one transaction, run again on a transient error (``retry_transient``)."""

        def attempt() -> T:
            with self.session() as sess:
                return work(sess)

        return retry_transient(attempt, what=what)

    def run_read(self, work: Callable[[Session], T], *, what: str = "database read") -> T:
        """``work(session)`` in a read-only unit of work (``read_session``: no write lock on SQLite), run
        again on a transient error."""

        def attempt() -> T:
            with self.read_session() as sess:
                return work(sess)

        return retry_transient(attempt, what=what)

    def dispose(self) -> None:
        self.engine.dispose()


class OutageLog:
    """What a loop says about its failed rounds: one warning when the database becomes unreachable and one
    line when it is back, instead of a traceback every tick (a 3 s restart printed dozens); any other
    error keeps its traceback."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not is_transient(exc):
            self.logger.error("%s failed", self.what, exc_info=exc)
            return
        if not self.down:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
            self.logger.warning("%s: the database is unreachable (%s); trying again", self.what, reason)
        self.down = True

    def ok(self) -> None:
        if self.down:
            self.logger.info("%s: the database is reachable again", self.what)
        self.down = False


#: The PostgreSQL advisory lock migrations hold (any constant no other code takes: "leaksent" in ASCII).
MIGRATION_LOCK = 0x6C65616B73656E74


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
