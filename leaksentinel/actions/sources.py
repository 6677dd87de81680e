"""Sources: where the crawlers look, and on what schedule."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import AuditLog, CrawlJob, Posting, Source, utcnow
from core.secretbox import mask_url_credentials
from crawlers.health import is_stale
from crawlers.schedule import jitter_for, next_due, schedule_from_options
from leaksentinel.actions.naming import as_row_id, check_slug

__all__ = [
    "KINDS",
    "add_source",
    "find_source",
    "is_removed",
    "list_sources",
    "remove_source",
    "set_source",
    "source_to_dict",
]

KINDS = ("pastebin", "gists", "discourse", "phpbb", "xenforo", "telegram", "rss", "generic")


def check_url(url: str, what: str = "URL", schemes: tuple[str, ...] = ("http", "https")) -> str:
    parts = urlsplit(url or "")
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise BadInput(f"{what} must be an {'/'.join(schemes)} URL with a host, got {url!r}")
    return url


def is_removed(source: Source) -> bool:
    """A source removed with ``source remove`` (kept only so that its postings still name it)."""
    return bool((source.options or {}).get("removed"))


def find_source(sess: Session, name_or_id: str) -> Source:
    """A source by name or id; a removed source is not found (it cannot be crawled, set or resumed)."""
    if "\x00" in str(name_or_id) or len(str(name_or_id)) > 256:  # PostgreSQL refuses NUL in text
        raise NotFound(f"unknown source: {str(name_or_id)[:64]!r}")
    source = sess.scalar(select(Source).where(Source.name == name_or_id))
    if source is None and as_row_id(name_or_id) is not None:
        source = sess.get(Source, as_row_id(name_or_id))
    if source is None or is_removed(source):
        raise NotFound(f"unknown source: {name_or_id}")
    return source


def _last_error(source: Source) -> str | None:
    """The one-line error of the source's latest crawl job, when its last run did not succeed."""
    if source.last_status in (None, "ok"):
        return None
    sess = object_session(source)
    if sess is None:
        return None
    query = (
        select(CrawlJob.error).where(CrawlJob.source_id == source.id).order_by(CrawlJob.id.desc()).limit(1)
    )
    return sess.scalar(query)


def _next_run(source: Source) -> str | None:
    """When the scheduler next crawls it (never-run ``every`` sources: now; jitter only on later runs)."""
    if not source.enabled or not source.schedule:
        return None
    try:
        due = next_due(
            source.schedule, source.last_run, utcnow(), jitter_s=jitter_for(source.id, source.schedule)
        )
    except (ValueError, KeyError):  # a schedule written by hand that croniter refuses
        return None
    return due.isoformat() if due else None


def source_to_dict(source: Source, *, reveal_proxy: bool = True) -> dict[str, Any]:
    return {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "url": source.url,
        "schedule": source.schedule,
        "enabled": source.enabled,
        "render": source.render,
        # Proxy credentials are the operator's: everyone else sees that a proxy is used, not its password.
        "proxy": source.proxy if reveal_proxy else mask_url_credentials(source.proxy),
        "last_run": source.last_run.isoformat() if source.last_run else None,
        "last_status": source.last_status,
        "last_success": source.last_success.isoformat() if source.last_success else None,
        "last_error": _last_error(source),
        "next_run": _next_run(source),
        "health": _health(source),
        "health_reason": source.health_reason
        or ("stale: no successful run for several intervals" if _health(source) == "unhealthy" else None),
    }


def _health(source: Source) -> str:
    if source.health != "unhealthy" and is_stale(
        source.schedule, source.enabled, source.last_success, source.created_at, utcnow()
    ):
        return "unhealthy"
    return source.health or "unknown"


def add_source(
    db: Database,
    name: str,
    kind: str,
    url: str,
    *,
    every: str | None = None,
    cron: str | None = None,
    render: bool = False,
    proxy: str | None = None,
    options: dict[str, Any] | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    check_slug(name, "source")
    if kind not in KINDS:
        raise BadInput(f"unknown source kind {kind!r}: one of {', '.join(KINDS)}")
    check_url(url, "source URL")
    if proxy:
        check_url(proxy, "proxy URL", ("http", "https"))
    schedule = schedule_from_options(every, cron)
    with db.session() as sess:
        if sess.scalar(select(Source).where(Source.name == name)) is not None:
            raise BadInput(f"source {name!r} already exists")
        source = Source(
            name=name,
            kind=kind,
            url=url,
            schedule=schedule,
            enabled=True,
            render=render,
            proxy=proxy,
            options=dict(options or {}),
            cursor={},
        )
        sess.add(source)
        sess.flush()
        sess.add(
            AuditLog(
                actor=actor,
                action="source.add",
                object_type="source",
                object_id=str(source.id),
                detail={"name": name, "kind": kind, "url": url, "schedule": schedule},
            )
        )
        return source_to_dict(source)


def list_sources(db: Database, *, reveal_proxy: bool = True) -> list[dict[str, Any]]:
    """Crawled sources (not the implicit `local` and `tips`, nor one-off tip crawls, nor removed ones).

    ``reveal_proxy``: only for operators (the CLI on the machine is one); others get masked proxy URLs."""
    with db.session() as sess:
        query = select(Source).where(Source.kind.not_in(("local", "tips"))).order_by(Source.id)
        return [
            source_to_dict(s, reveal_proxy=reveal_proxy)
            for s in sess.scalars(query)
            if not (s.options or {}).get("tip") and not is_removed(s)
        ]


#: Marks a removed source's stored name; never part of a slug, so a new source can never collide with it.
REMOVED_MARK = "~removed-"


def remove_source(db: Database, name_or_id: str, actor: str = "cli") -> dict[str, Any]:
    """Remove a source: no longer listed, scheduled or crawlable; its name free again; its postings kept.

    Why a soft delete: postings (and through them alerts, findings, evidence) reference the source with
    ``ON DELETE CASCADE``, and the contract keeps a removed source's postings. So the row stays, disabled,
    without a schedule, marked ``options["removed"]``, and renamed ``NAME~removed-ID`` (``~`` is never in a
    slug): the name can be reused at once, and alerts, search and evidence still name where a posting came
    from. Its crawl jobs stay as history. A crawl already running finishes, but what it finds after this
    point is not stored (its source name no longer resolves); a queued one finds no source.
    """
    with db.session() as sess:
        source = find_source(sess, name_or_id)
        if source.kind in ("local", "tips") or (source.options or {}).get("tip"):
            raise BadInput(
                f"source {source.name} is built in (it holds scanned files and tips); it cannot be removed"
            )
        name = source.name
        suffix = f"{REMOVED_MARK}{source.id}"
        stored_as = name[: 64 - len(suffix)] + suffix
        postings = sess.scalar(
            select(func.count()).select_from(Posting).where(Posting.source_id == source.id)
        )
        running = sess.scalar(
            select(func.count())
            .select_from(CrawlJob)
            .where(CrawlJob.source_id == source.id, CrawlJob.status == "running")
        )
        removed_at = utcnow()
        source.options = {
            **(source.options or {}),
            "removed": {"at": removed_at.isoformat(), "by": actor, "name": name, "schedule": source.schedule},
        }
        source.name = stored_as
        source.enabled = False
        source.schedule = None
        sess.add(
            AuditLog(
                actor=actor,
                action="source.remove",
                object_type="source",
                object_id=str(source.id),
                detail={
                    "name": name,
                    "stored_as": stored_as,
                    "postings_kept": postings,
                    "running_jobs": running,
                },
            )
        )
        sess.flush()
        return source_to_dict(source) | {
            "name": name,
            "removed": True,
            "removed_at": removed_at.isoformat(),
            "stored_as": stored_as,
            "postings_kept": int(postings or 0),
            "running_jobs": int(running or 0),
        }


def set_source(
    db: Database,
    name: str,
    *,
    every: str | None = None,
    cron: str | None = None,
    pause: bool = False,
    resume: bool = False,
    url: str | None = None,
    proxy: str | None = None,
    render: bool | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    if pause and resume:
        raise BadInput("give either --pause or --resume, not both")
    schedule = schedule_from_options(every, cron)
    if url:
        check_url(url, "source URL")
    if proxy:
        check_url(proxy, "proxy URL")
    with db.session() as sess:
        source = find_source(sess, name)
        changes: dict[str, Any] = {}
        if schedule:
            source.schedule = changes["schedule"] = schedule
        if pause:
            source.enabled = changes["enabled"] = False
        if resume:
            source.enabled = changes["enabled"] = True
        if url:
            source.url = changes["url"] = url
        if proxy is not None:
            source.proxy = changes["proxy"] = proxy or None
        if render is not None:
            source.render = changes["render"] = render
        sess.add(
            AuditLog(
                actor=actor,
                action="source.set",
                object_type="source",
                object_id=str(source.id),
                detail=changes,
            )
        )
        return source_to_dict(source)
