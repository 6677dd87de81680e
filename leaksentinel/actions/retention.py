"""``leaksentinel purge``: posting text, search entries and evidence older than ``retention_days`` go,
unless an alert holds them.

Why keep the rows: ids, URLs and hashes are what alerts, sightings, repost detection (exact and
near-duplicate) and retro-match (candidate hashes) work from; only the leaked text itself, its search
entry and its raw bytes are what retention is about. A posting is held when it is an alert's first
posting or one of its sightings: the alert's evidence must stay.

Each batch deletes the search entries and evidence files first, then clears the text: a purge stopped
half-way leaves rows whose text is still there, and the next purge finds and finishes them. A purged
posting is one whose text is empty; its ``evidence_sha256`` stays as the record of what was fetched.

Where the text lives: in ``posting_texts`` (core.models.PostingText), one row per posting, with the month it
was fetched as ``retain_month``. On SQLite purge deletes those rows. On PostgreSQL the table is
range-partitioned by that month, and a purge drops every month partition wholly older than the cutoff
(``DROP TABLE``: no dead tuples, no vacuum, the space back at once); rows of the month the cutoff falls in
(and of the DEFAULT and held partitions) are deleted one by one as on SQLite. Before a month is dropped,
in one transaction with ``alerts`` and ``sightings`` locked against new rows, the texts an alert holds
move to the "held" partition (``retain_month`` HELD_MONTH: an UPDATE of the key moves the row), so an
alert raised at any time before the drop keeps its text, and a text whose posting was fetched again
later (its ``fetched`` moved past the cutoff) moves to that later month.

Why native partitioning and not pg_partman: pg_partman is an extension, and ``CREATE EXTENSION
pg_partman`` needs a superuser (it is not a trusted extension) on a server the operator may not own,
plus its background worker or a cron job to run its maintenance. What it would maintain here is small:
``upkeep`` (run by every purge, which the scheduler runs daily) creates this month's and the next two
months' partitions ahead, and a DEFAULT partition catches a text of any other month (a backfilled or
restored posting) so no insert ever fails; the next upkeep moves such rows into a partition of their own.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from core.db import Database, retry_transient
from core.errors import BadInput
from core.evidence_store import blob_key, is_digest, open_evidence_store
from core.fetch_record import forget_fetch_record
from core.models import HELD_MONTH, Alert, Posting, PostingText, Sighting, month_of
from core.search import open_backend
from core.settings import Settings

__all__ = ["month_partitions", "purge", "upkeep"]

BATCH = 500
#: Months (this one included) whose partitions upkeep creates ahead.
AHEAD = 3
TABLE = "posting_texts"
_MONTH_PARTITION = re.compile(r"^posting_texts_p(\d{4})(\d{2})$")


def _held() -> Any:
    """Ids of postings an alert holds (its first posting, or a sighting of it)."""
    return select(Alert.posting_id).union(select(Sighting.posting_id))


def purge(
    db: Database, settings: Settings, *, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Purge what retention allows; with ``dry_run`` only count it. Returns the counts ``purge`` prints."""
    if settings.retention_days < 1:
        raise BadInput(f"retention_days must be at least 1, got {settings.retention_days}")
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    partitioned = not db.is_sqlite
    if partitioned and not dry_run:
        upkeep(db, now=now)
    # On PostgreSQL, the partitions of months wholly before the cutoff are dropped after the loop; the loop
    # deletes only the texts elsewhere (the cutoff's month, the DEFAULT and held partitions).
    whole_months = month_of(cutoff)
    old_months = [m for m in month_partitions(db, strays=dry_run) if m < whole_months] if partitioned else []
    old = Posting.fetched < cutoff
    held_ids = _held()
    with db.session() as sess:
        held = sess.scalar(select(func.count()).where(old, Posting.id.in_(held_ids))) or 0
    result: dict[str, Any] = {"postings": 0, "search_entries": 0, "evidence_files": 0, "held_by_alerts": held}
    backend = None if dry_run else open_backend(settings)
    counted: set[str] = set()
    last = 0
    try:
        while True:
            with db.session() as sess:
                rows = sess.execute(
                    select(Posting.id, Posting.evidence_sha256, PostingText.fetch_record)
                    .join(PostingText, PostingText.posting_id == Posting.id)
                    .where(old, Posting.id > last, Posting.id.not_in(held_ids))
                    .order_by(Posting.id)
                    .limit(BATCH)
                ).all()
            if not rows:
                break
            last = rows[-1][0]
            ids = [r[0] for r in rows]
            digests = {r[1] for r in rows if r[1]}
            files = _evidence_to_delete(db, settings, ids, digests, cutoff)
            result["postings"] += len(ids)
            result["search_entries"] += len(ids)  # one entry per posting
            result["evidence_files"] += len(set(files) - counted)
            counted.update(files)
            if backend is None:
                continue
            backend.delete(ids)
            store = open_evidence_store(settings)  # the evidence directory or bucket (core.evidence_store)
            for digest in files:
                store.delete(blob_key(digest))
            for posting_id, raw_digest, fetch in rows:  # the HTTP exchange and screenshot (core.fetch_record)
                forget_fetch_record(store, posting_id, raw_digest in files, fetch)
            with db.session() as sess:
                gone = delete(PostingText).where(
                    PostingText.posting_id.in_(ids),
                    PostingText.posting_id.not_in(_held()),  # an alert raised meanwhile wins
                )
                if old_months:  # every retain_month is a month's first day
                    gone = gone.where(PostingText.retain_month.not_in(old_months))
                sess.execute(gone.execution_options(synchronize_session=False))
    finally:
        if backend is not None:
            backend.close()
    if not dry_run:
        for month in old_months:
            retry_transient(partial(_drop_month, db, month, cutoff), what=f"dropping {_name(month)}")
    result["partitions_dropped"] = len(old_months)
    result["dry_run"] = dry_run
    return result


def _name(month: date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_partitions(db: Database, *, strays: bool = False) -> list[date]:
    """The months that have a partition of their own, oldest first (PostgreSQL; none on SQLite); with
    ``strays``, also the months of texts in the DEFAULT partition (the next upkeep's partitions)."""
    if db.is_sqlite:
        return []
    with db.engine.connect() as conn:
        months = set(_month_partitions(conn))
        if strays:
            months.update(_stray_months(conn))
        return sorted(months)


def _stray_months(conn: Connection) -> set[date]:
    return set(
        conn.execute(
            text(f"SELECT DISTINCT date_trunc('month', retain_month)::date FROM {TABLE}_default")
        ).scalars()
    )


def _month_partitions(conn: Connection) -> list[date]:
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:parent AS regclass)"
        ),
        {"parent": TABLE},
    ).scalars()
    months = []
    for name in names:
        match = _MONTH_PARTITION.match(name)
        if match:
            months.append(date(int(match[1]), int(match[2]), 1))
    return sorted(months)


def upkeep(db: Database, *, now: datetime | None = None) -> list[str]:
    """PostgreSQL: create the partitions of this month and the next ones ahead, and give every month found
    in the DEFAULT partition a partition of its own (its rows moved there). Returns the partitions made.

    Runs in one transaction with ``posting_texts`` locked against writes (SHARE ROW EXCLUSIVE): a text
    stored meanwhile waits a moment, then lands in its partition."""
    if db.is_sqlite:
        return []
    month = month_of(now or datetime.now(UTC))
    wanted = set()
    for _ in range(AHEAD):
        wanted.add(month)
        month = _next(month)
    made: list[str] = []
    with db.engine.begin() as conn:
        existing = set(_month_partitions(conn))
        if wanted <= existing and not conn.execute(text(f"SELECT 1 FROM {TABLE}_default LIMIT 1")).first():
            return made
        conn.execute(text(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE"))
        existing = set(_month_partitions(conn))
        strays = _stray_months(conn)
        for month in sorted((wanted | strays) - existing):
            if month >= HELD_MONTH:  # cannot happen (the held partition takes them); never shadow it
                continue
            name, upper = _name(month), _next(month)
            # Made apart, filled from the DEFAULT partition, then attached: CREATE ... PARTITION OF would
            # fail while the DEFAULT partition holds rows of that month.
            conn.execute(text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
            conn.execute(
                text(
                    f"WITH moved AS (DELETE FROM {TABLE}_default WHERE retain_month >= :lo AND retain_month < :hi "
                    f"RETURNING posting_id, retain_month, text, fetch_record) "
                    f"INSERT INTO {name} (posting_id, retain_month, text, fetch_record) SELECT * FROM moved"
                ),
                {"lo": month, "hi": upper},
            )
            conn.execute(
                text(
                    f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{month}') TO ('{upper}')"
                )
            )
            made.append(name)
    return made


def _drop_month(db: Database, month: date, cutoff: datetime) -> None:
    """Drop one month's partition, after moving out what must stay: texts an alert holds (to the held
    partition) and texts of postings fetched again after the cutoff (to their month). One transaction,
    ``posting_texts`` locked first (as a store does: text, then alerts), then alerts and sightings against
    new rows, so an alert committed before the drop keeps its text."""
    name, upper = _name(month), _next(month)
    with db.engine.begin() as conn:
        conn.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
        conn.execute(text("LOCK TABLE alerts, sightings IN SHARE MODE"))
        if month not in _month_partitions(conn):  # another purge dropped it
            return
        conn.execute(
            text(
                f"UPDATE {TABLE} SET retain_month = :held WHERE retain_month >= :lo AND retain_month < :hi "
                "AND posting_id IN (SELECT posting_id FROM alerts UNION SELECT posting_id FROM sightings)"
            ),
            {"held": HELD_MONTH, "lo": month, "hi": upper},
        )
        conn.execute(
            text(
                f"UPDATE {TABLE} t SET retain_month = date_trunc('month', p.fetched AT TIME ZONE 'UTC')::date "
                "FROM postings p WHERE p.id = t.posting_id AND t.retain_month >= :lo AND t.retain_month < :hi "
                "AND p.fetched >= :cutoff"
            ),
            {"lo": month, "hi": upper, "cutoff": cutoff},
        )
        conn.execute(text(f"DROP TABLE {name}"))


def _evidence_to_delete(
    db: Database, settings: Settings, ids: list[int], digests: set[str], cutoff: datetime
) -> list[str]:
    """Evidence files of these postings that no other posting still keeping its text shares (the files are
    content-addressed: one file may back several postings). A posting this purge also empties (old, not
    held: on PostgreSQL its text may wait for its month's partition to be dropped) keeps nothing."""
    if not digests:
        return []
    with db.session() as sess:
        shared = set(
            sess.scalars(
                select(Posting.evidence_sha256).where(
                    Posting.evidence_sha256.in_(digests),
                    Posting.id.not_in(ids),
                    Posting.text != "",
                    (Posting.fetched >= cutoff) | Posting.id.in_(_held()),
                )
            )
        )
    store = open_evidence_store(settings)
    return sorted(d for d in digests - shared if is_digest(d) and store.exists(blob_key(d)))
