"""The ``crawl`` task: one scheduled run of a source, executed by a worker on the ``crawl`` queue."""

from __future__ import annotations

from typing import Any

from core.celery_app import app
from core.errors import OperationalError
from core.settings import load_settings
from crawlers.job import run_crawl

__all__ = ["crawl"]


@app.task(name="crawlers.crawl", acks_late=True, ignore_result=True)
def crawl(source: str) -> dict[str, Any]:
    try:
        return run_crawl(load_settings(), source)
    except OperationalError as exc:  # already running: the schedule will come round again
        return {"source": source, "skipped": str(exc)}
