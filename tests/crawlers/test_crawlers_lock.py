"""Never two runs of one source at once: a file lock on one machine, a Redis lease across machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.db import open_database
from core.errors import OperationalError
from core.redis_embedded import EmbeddedRedis
from core.settings import load_settings
from crawlers.job import CrawlLock, run_crawl
from leaksentinel.actions.sources import add_source


def test_two_machines_sharing_redis_never_crawl_one_source_together(tmp_path: Path) -> None:
    with EmbeddedRedis() as redis_server:
        machine_a = load_settings(home=str(tmp_path / "a"), redis_url=redis_server.url)
        machine_b = load_settings(home=str(tmp_path / "b"), redis_url=redis_server.url)
        first = CrawlLock(machine_a, 7, 60)
        assert first.acquire()
        assert not CrawlLock(machine_b, 7, 60).acquire()  # other machine: the Redis lease holds it
        assert not CrawlLock(machine_a, 7, 60).acquire()  # same machine: the file lock holds it
        assert CrawlLock(machine_b, 8, 60).acquire()  # another source is free
        first.release()
        second = CrawlLock(machine_b, 7, 60)
        assert second.acquire()
        second.release()


def test_a_crawl_of_a_source_already_running_is_refused() -> None:
    settings = load_settings()
    add_source(open_database(settings), "busy", "pastebin", "http://127.0.0.1:9")
    from sqlalchemy import select

    from core.models import Source

    with open_database(settings).session() as sess:
        source_id = sess.scalar(select(Source.id).where(Source.name == "busy"))
    held = CrawlLock(settings, int(source_id or 0), 60)
    assert held.acquire()
    try:
        with pytest.raises(OperationalError, match="already being crawled"):
            run_crawl(settings, "busy")
    finally:
        held.release()
