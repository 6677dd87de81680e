"""Counts over time for the console's charts: postings and alerts per day, each source's recent runs,
crawl jobs with their durations and bytes, a tenant's alerts per week by severity.

Why here and not in the routes: the console pages draw, these functions count (the same split as every
other action). Days are UTC calendar days computed by the database (``strftime`` on SQLite, ``to_char``
of the UTC time on PostgreSQL), so a day's count does not depend on the server's time zone; weeks are
folded from days in Python (Monday first, as ISO weeks), which keeps one dialect-specific expression.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.models import SEVERITIES, Alert, CrawlJob, Posting, Source, utcnow
from crawlers.schedule import describe_schedule
from leaksentinel.actions.sources import find_source, is_removed, list_sources, source_to_dict
from leaksentinel.actions.tenants import tenant_by_id

__all__ = [
    "MAX_DAYS",
    "MAX_WEEKS",
    "daily_activity",
    "fleet_sources",
    "job_to_dict",
    "list_jobs",
    "source_names",
    "tenant_weekly_alerts",
    "week_start",
]

#: Chart windows are bounded: a request cannot ask the database to group years of rows by day.
MAX_DAYS = 366
MAX_WEEKS = 104
#: Runs per source drawn as a sparkline.
RUNS_PER_SOURCE = 20


def _day(sess: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, as ``YYYY-MM-DD`` text, on this session's database."""
    if sess.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def _days(first: date, count: int) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def _today(now: datetime | None) -> date:
    return (now or utcnow()).astimezone(UTC).date()


def _per_day(sess: Session, column: Any, since: datetime, *where: Any) -> dict[str, int]:
    day = _day(sess, column)
    rows = sess.execute(select(day, func.count()).where(column >= since, *where).group_by(day)).all()
    return {str(d)[:10]: int(n) for d, n in rows if d is not None}


def daily_activity(db: Database, days: int = 30, *, now: datetime | None = None) -> dict[str, list[Any]]:
    """Postings stored (by fetch time) and alerts raised (by first sighting) per UTC day, for the last
    ``days`` days including today, oldest first: ``{"days": [...], "postings": [...], "alerts": [...]}``."""
    days = max(1, min(int(days), MAX_DAYS))
    first = _today(now) - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    with db.read_session() as sess:
        postings = _per_day(sess, Posting.fetched, since)
        alerts = _per_day(sess, Alert.first_seen, since)
    labels = _days(first, days)
    return {
        "days": labels,
        "postings": [postings.get(d, 0) for d in labels],
        "alerts": [alerts.get(d, 0) for d in labels],
    }


def week_start(day: date) -> date:
    """The Monday of the ISO week holding ``day``."""
    return day - timedelta(days=day.weekday())


def tenant_weekly_alerts(
    db: Database, tenant_id: int, weeks: int = 12, *, now: datetime | None = None
) -> dict[str, Any]:
    """One tenant's alerts per week (by first sighting), by severity, oldest week first:
    ``{"weeks": ["2026-11-30", ...], "severity": {"low": [...], ...}, "total": n}``. Only that tenant's
    alerts are counted: the id is the scope (an unknown id is NotFound)."""
    weeks = max(1, min(int(weeks), MAX_WEEKS))
    first = week_start(_today(now)) - timedelta(weeks=weeks - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    with db.read_session() as sess:
        tenant_by_id(sess, tenant_id)
        day = _day(sess, Alert.first_seen)
        rows = sess.execute(
            select(day, Alert.severity, func.count())
            .where(Alert.tenant_id == tenant_id, Alert.first_seen >= since)
            .group_by(day, Alert.severity)
        ).all()
    labels = [(first + timedelta(weeks=i)).isoformat() for i in range(weeks)]
    index = {label: i for i, label in enumerate(labels)}
    counts = {sev: [0] * weeks for sev in SEVERITIES}
    for d, severity, n in rows:
        try:
            monday = week_start(date.fromisoformat(str(d)[:10])).isoformat()
        except ValueError:
            continue
        if monday in index:
            counts.setdefault(str(severity), [0] * weeks)[index[monday]] += int(n)
    return {"weeks": labels, "severity": counts, "total": sum(sum(v) for v in counts.values())}


def job_to_dict(job: CrawlJob) -> dict[str, Any]:
    """A crawl job as pages show it, with its duration (seconds) and the bytes it downloaded.

    The duration is the crawl's own measure (``stats.seconds``) when it recorded one, else finish minus
    start; a running job has none. Bytes are Scrapy's ``downloader/response_bytes`` summed by the run."""
    stats = job.stats if isinstance(job.stats, dict) else {}
    seconds: float | None = None
    if isinstance(stats.get("seconds"), int | float):
        seconds = float(stats["seconds"])
    elif job.finished_at is not None and job.started_at is not None:
        seconds = max(0.0, (job.finished_at - job.started_at).total_seconds())
    raw_bytes = stats.get("bytes")
    return {
        "id": job.id,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "status": job.status,
        "stats": stats,
        "error": job.error,
        "seconds": seconds,
        "bytes": int(raw_bytes) if isinstance(raw_bytes, int | float) else None,
        "postings": _int(stats.get("postings")),
        "new": _int(stats.get("new")),
    }


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def list_jobs(db: Database, name: str, *, limit: int = 200, reveal_proxy: bool = False) -> dict[str, Any]:
    """A source (as ``source_to_dict``) and its latest crawl jobs, newest first; NotFound for an unknown
    or removed source."""
    limit = max(1, min(int(limit), 1000))
    with db.read_session() as sess:
        source = find_source(sess, name)
        jobs = sess.scalars(
            select(CrawlJob).where(CrawlJob.source_id == source.id).order_by(CrawlJob.id.desc()).limit(limit)
        )
        view = source_to_dict(source, reveal_proxy=reveal_proxy)
        view["schedule_text"] = describe_schedule(source.schedule)
        return {"source": view, "jobs": [job_to_dict(j) for j in jobs]}


def fleet_sources(
    db: Database, runs: int = RUNS_PER_SOURCE, *, reveal_proxy: bool = False
) -> list[dict[str, Any]]:
    """Every listed source (as ``list_sources``) with its last ``runs`` finished crawl jobs, oldest first:
    ``yields`` (postings per run), ``failed`` (one flag per run), ``seconds`` (durations), and the schedule
    as people write it. One query for all sources' runs (a window function, on SQLite and PostgreSQL)."""
    runs = max(1, min(int(runs), 200))
    sources = list_sources(db, reveal_proxy=reveal_proxy)
    by_id: dict[int, list[dict[str, Any]]] = {s["id"]: [] for s in sources}
    if by_id:
        rank = (
            func.row_number().over(partition_by=CrawlJob.source_id, order_by=CrawlJob.id.desc()).label("rank")
        )
        inner = (
            select(CrawlJob.id, rank)
            .where(CrawlJob.source_id.in_(list(by_id)), CrawlJob.status != "running")
            .subquery()
        )
        with db.read_session() as sess:
            jobs = sess.scalars(
                select(CrawlJob)
                .join(inner, inner.c.id == CrawlJob.id)
                .where(inner.c.rank <= runs)
                .order_by(CrawlJob.id)
            )
            for job in jobs:
                by_id[job.source_id].append(job_to_dict(job))
    for source in sources:
        recent = by_id[source["id"]]
        source["runs"] = len(recent)
        source["yields"] = [j["postings"] or 0 for j in recent]
        source["failed"] = [j["status"] != "ok" for j in recent]
        source["seconds"] = [j["seconds"] or 0.0 for j in recent]
        source["failures"] = sum(source["failed"])
        source["schedule_text"] = describe_schedule(source["schedule"])
    return sources


def source_names(db: Database) -> list[str]:
    """Names of the sources postings can come from (crawled, scanned files, tips), for a search picker."""
    with db.read_session() as sess:
        rows = sess.scalars(select(Source).order_by(Source.name))
        return [s.name for s in rows if not is_removed(s) and not (s.options or {}).get("tip")]
