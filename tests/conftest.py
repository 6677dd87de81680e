"""Shared fixtures: a private home per test, the database on SQLite and (when configured) PostgreSQL,
and an in-process CLI runner."""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_URL = os.environ.get("LEAKSENTINEL_TEST_PG_URL", "")


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


def _fresh_pg_database() -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    name = f"ls_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_pg_database(name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from core import db as core_db

    for url, database in list(core_db._cache.items()):
        if name in url:
            database.dispose()
            del core_db._cache[url]
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs the test once on SQLite in the home and once on PostgreSQL (skipped when not configured)."""
    if request.param == "sqlite":
        yield ""
        return
    if not PG_URL:
        pytest.skip("LEAKSENTINEL_TEST_PG_URL not set: PostgreSQL variant skipped")
    url, name = _fresh_pg_database()
    monkeypatch.setenv("LEAKSENTINEL_DATABASE_URL", url)
    # A database URL alone must not switch off the embedded conveniences the tests rely on.
    monkeypatch.setenv("LEAKSENTINEL_ALLOW_PRIVATE_TARGETS", "true")
    try:
        yield url
    finally:
        _drop_pg_database(name)


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
