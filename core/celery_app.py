"""The Celery application: queues ``crawl`` and ``notify`` on the configured or embedded Redis.

Why these options: tasks acknowledge late and are re-queued when a worker dies mid-task, so a
delivery is never lost; every retry delay stays below the broker's visibility timeout, since a longer
ETA makes Redis hand the task out again and again. Task modules are named as strings so that core
imports nothing above it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from celery import Celery

from core.settings import Settings, load_settings

__all__ = ["TASK_MODULES", "app", "broker_url", "make_celery"]

TASK_MODULES = ("alerting.tasks", "crawlers.tasks", "pipelines.tasks")
RUNNING_REDIS_FILE = "redis.url"
#: What this process announced, per file: only that is withdrawn (a second ``run`` on the same home
#: must not delete the first one's announcement on its way out).
_announced: dict[Path, str] = {}
_announce_lock = threading.Lock()


def broker_url(settings: Settings) -> str:
    """The configured Redis, else the embedded one a running ``leaksentinel run`` announced."""
    if settings.redis_url:
        return settings.redis_url
    announced = settings.run_dir / RUNNING_REDIS_FILE
    if announced.is_file():
        return announced.read_text().strip()
    return "redis://127.0.0.1:1/0"  # nothing running: connecting fails fast and says so


def announce_embedded_redis(settings: Settings, url: str | None) -> None:
    """Tell other processes of this user on this home which embedded Redis is live (or that none is).

    The URL carries the broker's password, so the file is created 0600 (in a 0700 folder) before a
    byte is written, then renamed into place: there is no moment when another user could read it.
    ``url=None`` withdraws the announcement only if the file still holds what this process wrote.
    """
    path: Path = settings.run_dir / RUNNING_REDIS_FILE
    with _announce_lock:
        if url is None:
            mine = _announced.pop(path, None)
            if mine is None:
                return
            try:
                current = path.read_text(encoding="utf-8").strip()
            except (FileNotFoundError, UnicodeDecodeError):
                return
            if current == mine:
                path.unlink(missing_ok=True)
            return
        settings.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(settings.run_dir, 0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(url)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _announced[path] = url.strip()


def make_celery(settings: Settings, url: str | None = None) -> Celery:
    url = url or broker_url(settings)
    celery = Celery("leaksentinel", broker=url, backend=None, include=list(TASK_MODULES))
    celery.conf.update(
        task_default_queue="notify",
        task_routes={
            "alerting.*": {"queue": "notify"},
            "crawlers.*": {"queue": "crawl"},
            "pipelines.*": {"queue": "crawl"},
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
    )
    return celery


#: The app a worker process loads (``celery -A core.celery_app worker``); settings from the environment.
app = make_celery(load_settings())
