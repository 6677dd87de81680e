"""The ``crawl`` task: one scheduled run of a source, executed by a worker on the ``crawl`` queue."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from core.celery_app import app
from core.db import open_database
from core.errors import NotFound, OperationalError
from core.models import AuditLog
from core.netguard import TargetPolicy, UnsafeTarget, check_url
from core.settings import load_settings
from crawlers.job import Interrupted, run_crawl
from crawlers.tips import ensure_tip_source

__all__ = ["crawl", "crawl_tip"]

log = logging.getLogger(__name__)


#: How often a requested crawl looks again whether the run in progress has ended (below any visibility timeout).
BUSY_RETRY_S = 5


@app.task(name="crawlers.crawl", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def crawl(self: Any, source: str, scheduled: bool = False) -> dict[str, Any]:
    """One run of ``source``. A scheduled run that finds the source busy is skipped (the schedule comes
    round again); a run somebody asked for ("Run now", the API) waits for the run in progress, then runs:
    a person who pressed the button expects a crawl, not silence."""
    settings = load_settings()
    try:
        return run_crawl(settings, source)
    except NotFound as exc:  # removed since it was queued
        return {"source": source, "skipped": str(exc)}
    except Interrupted:  # the worker is stopping: the job is stored `interrupted`; the schedule comes again
        log.warning("crawl of %s interrupted: the worker is stopping", source)
        return {"source": source, "interrupted": True}
    except OperationalError as exc:  # already being crawled
        if scheduled or self.request.retries * BUSY_RETRY_S > settings.crawl_timeout_s:
            return {"source": source, "skipped": str(exc)}
        raise self.retry(countdown=BUSY_RETRY_S) from None


@app.task(name="crawlers.crawl_tip", acks_late=True, ignore_result=True)
def crawl_tip(url: str, note: str = "") -> dict[str, Any]:
    """A page reported to the tip line, crawled once.

    The URL is checked again here, not trusted because the API checked it: anything that can write to
    the broker can enqueue a task. A refused URL is recorded in the audit log and never fetched.
    """
    settings = load_settings()
    db = open_database(settings)
    try:
        target = check_url(str(url), policy=TargetPolicy.from_settings(settings))
    except UnsafeTarget as exc:
        reason = " ".join(str(exc).split())[:300]
        with db.session() as sess:
            sess.add(
                AuditLog(
                    actor="tip",
                    action="tip.refused",
                    object_type="tip",
                    object_id="tip-" + hashlib.sha256(str(url).encode("utf-8", "replace")).hexdigest()[:12],
                    detail={"url": str(url)[:500], "reason": reason},
                )
            )
        return {"url": str(url)[:200], "refused": reason}
    name = ensure_tip_source(db, target, str(note or ""))
    try:
        return run_crawl(settings, name)
    except OperationalError as exc:
        return {"source": name, "skipped": str(exc)}
