"""Shared fixtures: a private home per test, the database on SQLite and (when configured) PostgreSQL,
and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_URL = os.environ.get("LEAKSENTINEL_TEST_PG_URL", "")

#: Test modules that never open the database, in this process or in one they start: measured by recording
#: every ``core.db`` open per test (and every SQLite file left under the test's tmp_path) over the whole
#: suite. Every other module runs once per backend (``db_backend``), so a new test module runs on SQLite and
#: PostgreSQL unless it is added here; a DB-touching test that must stay on SQLite says why with
#: ``@pytest.mark.sqlite_only("reason")``.
DB_FREE_MODULES: frozenset[str] = frozenset(
    {
        "alerting/test_alerting_backoff.py",
        "alerting/test_alerting_digest.py",
        "alerting/test_alerting_docs_snippet.py",
        "alerting/test_alerting_email.py",
        "alerting/test_alerting_events.py",
        "alerting/test_alerting_exports.py",
        "alerting/test_alerting_signing.py",
        "alerting/test_alerting_slack.py",
        "alerting/test_alerting_webhook.py",
        "core/test_core_alert_story.py",
        "core/test_core_canonical.py",
        "core/test_core_crawl_memory.py",
        "core/test_core_evidence_store.py",
        "core/test_core_hashing.py",
        "core/test_core_masking.py",
        "core/test_core_netguard.py",
        "core/test_core_policy.py",
        "core/test_core_redis_embedded.py",
        "core/test_core_search.py",
        "core/test_core_search_native_selectors.py",
        "core/test_core_search_native_tokens.py",
        "core/test_core_search_selectors.py",
        "core/test_core_settings.py",
        "core/test_search_speed.py",
        "crawlers/test_crawlers_browserproxy.py",
        "crawlers/test_crawlers_decoding.py",
        "crawlers/test_crawlers_run_gc.py",
        "crawlers/test_crawlers_settings.py",
        "leaksentinel/test_cli_hash.py",
        "leaksentinel/test_sim_company.py",
        "leaksentinel/test_sim_pastebin.py",
        "leaksentinel/test_sim_receiver.py",
        "pipelines/test_pipelines_bench_shares.py",
        "pipelines/test_pipelines_candidate_segments.py",
        "pipelines/test_pipelines_documents.py",
        "pipelines/test_pipelines_domain_lines.py",
        "pipelines/test_pipelines_extract.py",
        "pipelines/test_pipelines_extract_variants.py",
        "pipelines/test_pipelines_fastscan.py",
        "pipelines/test_pipelines_fastscan_hygiene.py",
        "pipelines/test_pipelines_fastscan_scripts.py",
        "pipelines/test_pipelines_fastscan_speed.py",
        "pipelines/test_pipelines_fingerprint_native.py",
        "pipelines/test_pipelines_keywords.py",
        "pipelines/test_pipelines_lookalikes.py",
        "pipelines/test_pipelines_lookalikes_cache.py",
        "pipelines/test_pipelines_lookalikes_native.py",
        "pipelines/test_pipelines_native_build.py",
        "pipelines/test_pipelines_normalize_native.py",
        "pipelines/test_pipelines_phone_dfa.py",
        "pipelines/test_pipelines_regexes.py",
        "pipelines/test_pipelines_secrets.py",
        "pipelines/test_pipelines_shared_fold.py",
        "pipelines/test_pipelines_small_postings.py",
        "pipelines/test_pipelines_speed_documents.py",
        "pipelines/test_pipelines_speed_domain_lines.py",
        "pipelines/test_pipelines_speed_fold.py",
        "pipelines/test_pipelines_speed_keywords.py",
        "pipelines/test_pipelines_speed_lookalikes.py",
        "pipelines/test_pipelines_yara_watch.py",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): a database test that runs on SQLite only (the reason says why it is enough)",
    )
    config.addinivalue_line(
        "markers",
        "empty_database: on PostgreSQL, start from an empty database rather than the migrated template",
    )


def pytest_report_header(config: pytest.Config) -> str:
    if PG_URL:
        return "database tests: SQLite and PostgreSQL (LEAKSENTINEL_TEST_PG_URL is set)"
    return "database tests: SQLite only (set LEAKSENTINEL_TEST_PG_URL to also run them on PostgreSQL)"


def _module_of(metafunc: pytest.Metafunc) -> str:
    path = Path(str(metafunc.definition.path))
    try:
        return path.relative_to(Path(__file__).parent).as_posix()
    except ValueError:
        return path.as_posix()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that may touch the database runs once per backend: ``test_x[sqlite]``, ``test_x[postgres]``.

    Why: a test that is not parametrized never runs on PostgreSQL, and PostgreSQL is what the distributed
    setup uses. The PostgreSQL variant is only collected when ``LEAKSENTINEL_TEST_PG_URL`` is set."""
    if "db_backend" not in metafunc.fixturenames:
        return
    if _module_of(metafunc) in DB_FREE_MODULES and "database_url" not in metafunc.fixturenames:
        return
    backends = [pytest.param("sqlite", id="sqlite")]
    if PG_URL and metafunc.definition.get_closest_marker("sqlite_only") is None:
        backends.append(pytest.param("postgres", id="postgres", marks=pytest.mark.postgres))
    metafunc.parametrize("db_backend", backends, indirect=True)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's configuration or home."""
    for key in list(os.environ):
        if key.startswith("LEAKSENTINEL_") and not key.startswith("LEAKSENTINEL_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LEAKSENTINEL_HOME", str(tmp_path / "home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _admin_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_pg_database(template: str | None = None) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"ls_test_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), name


def _fresh_pg_database() -> tuple[str, str]:
    """An empty database (tests of the migrations themselves start from nothing)."""
    return _create_pg_database()


def _forget_pg_database(name: str) -> None:
    """Close this process's pooled connections to ``name`` (the drop would end them anyway)."""
    from core import db as core_db

    for url, database in list(core_db._cache.items()):
        if name in url:
            database.dispose()
            del core_db._cache[url]


def _drop_pg_database(name: str) -> None:
    import psycopg

    _forget_pg_database(name)
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _PgDatabases:
    """Copies of the template, made one ahead and dropped behind on a helper thread.

    Why: CREATE and DROP DATABASE take ~0.1 s each; done off the test's path, the PostgreSQL variant of a
    test costs little more than its SQLite one."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-test-db")
        self.spare: Future[tuple[str, str]] = self.worker.submit(_create_pg_database, template)
        self.drops: list[Future[None]] = []

    def take(self) -> tuple[str, str]:
        url_name = self.spare.result()
        self.spare = self.worker.submit(_create_pg_database, self.template)
        return url_name

    def give_back(self, name: str) -> None:
        _forget_pg_database(name)
        self.drops.append(self.worker.submit(_drop_pg_database, name))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.give_back(self.spare.result()[1])
        self.worker.shutdown(wait=True)
        failed = [f.exception() for f in self.drops if f.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} test databases could not be dropped: {failed[0]}")


@pytest.fixture(scope="session")
def _pg_databases() -> Iterator[_PgDatabases]:
    """A database migrated to head once per session; each test gets a copy (CREATE DATABASE ... TEMPLATE),
    which is faster than Alembic building the schema again."""
    from core.db import Database

    url, name = _create_pg_database()
    try:
        database = Database(url)
        try:
            database.migrate()
        finally:
            database.dispose()  # a template must have no connection while it is copied
        pool = _PgDatabases(name)
        try:
            yield pool
        finally:
            pool.close()
    finally:
        _drop_pg_database(name)


@pytest.fixture(autouse=True)
def db_backend(
    request: pytest.FixtureRequest, _isolated_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The database of this test: the SQLite file in the home, or a private PostgreSQL database.

    For PostgreSQL the URL goes in the environment, so the test, the in-process CLI and every process the
    test starts (``leaksentinel run``, crawl jobs, workers) use it."""
    backend = getattr(request, "param", None)
    if backend is None:  # a module listed as DB-free: keep the list honest
        yield "sqlite"
        if (Path(os.environ.get("LEAKSENTINEL_HOME", "")) / "leaksentinel.db").exists():
            pytest.fail(
                f"{request.node.nodeid} opened the database but its module is in DB_FREE_MODULES "
                "(tests/conftest.py): remove it from the list so it also runs on PostgreSQL",
                pytrace=False,
            )
        return
    if backend == "sqlite":
        yield backend
        return
    if not PG_URL:
        pytest.skip("LEAKSENTINEL_TEST_PG_URL not set: PostgreSQL variant skipped")
    pool: _PgDatabases = request.getfixturevalue("_pg_databases")
    if request.node.get_closest_marker("empty_database") is not None:
        url, name = _fresh_pg_database()
    else:
        url, name = pool.take()
    monkeypatch.setenv("LEAKSENTINEL_DATABASE_URL", url)
    # A database URL alone must not switch off the embedded conveniences the tests rely on.
    monkeypatch.setenv("LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", "true")
    try:
        yield backend
    finally:
        pool.give_back(name)


@pytest.fixture
def database_url(db_backend: str) -> str:
    """The PostgreSQL URL of this test, or "" on SQLite (the home's file)."""
    return os.environ.get("LEAKSENTINEL_DATABASE_URL", "") if db_backend == "postgres" else ""


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]

    def json(self) -> dict:  # type: ignore[type-arg]
        import json

        return json.loads(self.lines[-1])

    def jsonl(self) -> list[dict]:  # type: ignore[type-arg]
        import json

        return [json.loads(line) for line in self.lines]


@pytest.fixture
def cli() -> object:
    """Run the CLI in this process: ``cli("tenant", "add", "acme", stdin="...")``."""
    from leaksentinel.cli.main import main

    def run(*args: str, stdin: str | None = None) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(list(args))
        finally:
            sys.stdin = old_stdin
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the evidence-store tests: an emulator of the S3 API
    (not AWS S3 or MinIO), the only S3-compatible server that installs here. Skipped without moto/boto3."""
    pytest.importorskip("boto3", reason="boto3 not installed (the s3 extra): S3 store not tested")
    server_mod = pytest.importorskip(
        "moto.moto_server.threaded_moto_server",
        reason="moto[server] not installed: the S3 store is tested only against moto's S3 server",
    )
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
