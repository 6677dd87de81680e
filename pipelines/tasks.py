"""The ``yara_retro_hunt`` task: a YARA watch added today searched over the stored postings, on a worker.

Why a task: the hunt reads the archive (bounded by the ``yara_retro_*`` settings), which may take
minutes; the command or API call that added the watch returns at once and the watch's state says when
the hunt is done. It runs on the ``crawl`` queue, beside the other archive-sized work, never in front
of alert deliveries.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.celery_app import app
from core.db import open_database
from core.settings import load_settings
from pipelines.retro import mark_hunt_queued, yara_retro_hunt

__all__ = ["HUNT_QUEUE", "HUNT_TASK", "retro_hunt"]

HUNT_TASK = "pipelines.yara_retro_hunt"
HUNT_QUEUE = "crawl"


@app.task(name=HUNT_TASK, bind=True, acks_late=True, ignore_result=True)
def retro_hunt(self: Any, watch_id: int, token: str | None = None) -> dict[str, Any]:
    """One hunt; a message handed out twice finds its findings stored and raises nothing twice. A hunt
    stopped with its worker is queued again, and picks up when the workers are back."""
    settings = load_settings()
    db = open_database(settings)
    result = yara_retro_hunt(db, settings, int(watch_id), token=token)
    if result.status == "interrupted":
        again = mark_hunt_queued(db, int(watch_id))
        self.apply_async(args=[int(watch_id)], kwargs={"token": again}, queue=HUNT_QUEUE)
    return asdict(result)
