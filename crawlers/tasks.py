"""The ``crawl`` task: one scheduled run of a source, executed by a worker on the ``crawl`` queue."""

from __future__ import annotations

from typing import Any

from core.celery_app import app
from core.db import open_database
from core.errors import OperationalError
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.tips import ensure_tip_source

__all__ = ["crawl", "crawl_tip"]


@app.task(name="crawlers.crawl", acks_late=True, ignore_result=True)
def crawl(source: str) -> dict[str, Any]:
    try:
        return run_crawl(load_settings(), source)
    except OperationalError as exc:  # already running: the schedule will come round again
        return {"source": source, "skipped": str(exc)}


@app.task(name="crawlers.crawl_tip", acks_late=True, ignore_result=True)
def crawl_tip(url: str, note: str = "") -> dict[str, Any]:
    """A page reported to the tip line, crawled once (the URL was checked when it was reported)."""
    settings = load_settings()
    name = ensure_tip_source(open_database(settings), url, note)
    try:
        return run_crawl(settings, name)
    except OperationalError as exc:
        return {"source": name, "skipped": str(exc)}
