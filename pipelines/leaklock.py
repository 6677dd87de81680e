"""Serialise the "new leak or repost?" decision per tenant and near-duplicate band.

Why: two workers storing the same text at once each look for an earlier copy, and under PostgreSQL's
READ COMMITTED neither sees the other's uncommitted posting, so both raise an alert. Taking a lock on
every (tenant, band) and (tenant, exact text) the posting falls in, before looking, makes the second
one wait until the first has committed; it then sees the first posting and joins its alert as a
sighting. Near duplicates (Hamming distance <= 3) always share at least one band, so they always meet
on at least one lock.

- PostgreSQL: ``pg_advisory_xact_lock`` on a 64-bit hash of each key, taken in sorted order (no
  deadlock between two such transactions), released at commit or rollback.
- SQLite: the database's write lock (one writer at a time); transactions already begin with
  ``BEGIN IMMEDIATE`` (core.db), and a no-op write here makes sure the lock is held even in one that
  did not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipelines.fastsql import Prepared
from pipelines.neardup import band_values

__all__ = [
    "PAUSE_ENV",
    "leak_lock_keys",
    "lock_leak_decisions",
    "lock_leak_decisions_many",
    "pause_for_tests",
]

#: Tests only: seconds to wait inside the critical section, so a race without the lock is reliable.
PAUSE_ENV = "LEAKSENTINEL_TEST_LEAK_DECISION_PAUSE_S"


#: Built once: a text() clause per posting was a measurable share of a crawl's storing.
_SQLITE_WRITE_LOCK = Prepared(text("UPDATE sources SET id = id WHERE 0"))
_PG_LOCK = Prepared(text("SELECT pg_advisory_xact_lock(:key)"))


def _key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def leak_lock_keys(tenant_ids: Iterable[int], simhash: int | None, content_hash: str) -> list[int]:
    """The advisory lock keys of a posting for these tenants, sorted (the order every locker uses)."""
    names: set[str] = set()
    for tenant in tenant_ids:
        names.add(f"leak:{tenant}:text:{content_hash}")
        if simhash is not None:
            names.update(f"leak:{tenant}:band{band}:{value}" for band, value in band_values(simhash))
    return sorted({_key(n) for n in names})


def lock_leak_decisions(
    sess: Session, tenant_ids: Iterable[int], simhash: int | None, content_hash: str
) -> None:
    """Hold, until this transaction ends, the right to decide new-leak-or-repost for these tenants."""
    lock_leak_decisions_many(sess, [(tenant_ids, simhash, content_hash)])


def lock_leak_decisions_many(
    sess: Session, postings: Iterable[tuple[Iterable[int], int | None, str]]
) -> None:
    """`lock_leak_decisions` for several postings stored in one transaction, each given as (tenant ids,
    SimHash, content hash): every key taken at once, in the one sorted order, so a batch never holds
    some of its locks while it waits for others that a concurrent batch holds in the reverse order."""
    keys: set[int] = set()
    for tenant_ids, simhash, content_hash in postings:
        keys.update(leak_lock_keys(tenant_ids, simhash, content_hash))
    if not keys:  # no posting with findings: no decision to make
        return
    conn = sess.connection()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        for key in sorted(keys):
            _PG_LOCK.execute(conn, {"key": key})
    elif dialect == "sqlite":
        # A write statement takes SQLite's write lock (RESERVED) even when it changes no row.
        _SQLITE_WRITE_LOCK.execute(conn, {})


def pause_for_tests() -> None:
    """Sleep inside the critical section when the test-only variable asks for it (never in production)."""
    raw = os.environ.get(PAUSE_ENV)
    if raw:
        with contextlib.suppress(ValueError):
            time.sleep(min(float(raw), 30.0))
