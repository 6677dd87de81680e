"""Transient database errors are retried a bounded number of times; anything else is raised at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.db import RetryPolicy, is_transient, retry_transient


def _locked_error(tmp_path: Path) -> DBAPIError:
    """A real "database is locked" from SQLAlchemy: another connection holds the write lock."""
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    except DBAPIError as exc:
        return exc
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
    raise AssertionError("the insert did not wait for the lock")


def _integrity_error(tmp_path: Path) -> DBAPIError:
    engine = create_engine(f"sqlite:///{tmp_path / 'y.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    except IntegrityError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no duplicate key error")


def test_a_held_write_lock_is_transient_and_a_constraint_violation_is_not(tmp_path: Path) -> None:
    assert is_transient(_locked_error(tmp_path))
    assert not is_transient(_integrity_error(tmp_path))
    assert not is_transient(ValueError("not a database error"))


def test_retry_runs_a_transient_failure_again_then_gives_up(tmp_path: Path) -> None:
    locked = _locked_error(tmp_path)
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise locked
        return "stored"

    assert retry_transient(flaky, policy=RetryPolicy(attempts=5, base_s=0.01, max_s=0.05)) == "stored"
    assert len(calls) == 3 and calls[2] - calls[0] >= 0.01  # it backed off between attempts

    calls.clear()

    def down() -> str:
        calls.append(time.monotonic())
        raise locked

    with pytest.raises(DBAPIError):
        retry_transient(down, policy=RetryPolicy(attempts=4, base_s=0.001, max_s=0.002))
    assert len(calls) == 4  # bounded

    calls.clear()
    duplicate = _integrity_error(tmp_path)

    def bad() -> str:
        calls.append(time.monotonic())
        raise duplicate

    with pytest.raises(IntegrityError):
        retry_transient(bad, policy=RetryPolicy(attempts=4, base_s=0.001))
    assert len(calls) == 1  # never retried


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=8, base_s=0.1, max_s=4.0)
    assert 0.05 <= policy.delay(1) <= 0.1
    assert 0.4 <= policy.delay(4) <= 0.8
    assert 2.0 <= policy.delay(8) <= 4.0
