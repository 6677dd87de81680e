"""With ``run`` up on the home, ``watch add --yara`` hands the retro-hunt to its crawl workers and returns at
once; the watch list then says it finished, with its matches (a real Celery worker on the embedded Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.redis_embedded import EmbeddedRedis
from core.settings import load_settings
from leaksentinel.processes import WorkerProcess

pytestmark = pytest.mark.slow

RULES = 'rule Falcon { strings: $a = "project-falcon" nocase condition: $a }\n'


@pytest.fixture
def crawl_worker(tmp_path: Path, database_url: str) -> Iterator[str]:
    """What ``run`` provides: an embedded Redis announced in the home, and a worker on the crawl queue."""
    settings = load_settings()
    redis = EmbeddedRedis()
    redis.start()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "redis.url").write_text(redis.url)
    log = (tmp_path / "worker.log").open("wb")
    worker = WorkerProcess(
        settings, redis.url, queues="crawl", concurrency=1, log=log, loglevel="INFO"
    ).start()
    try:
        yield redis.url
    finally:
        worker.stop(5)
        redis.stop()
        log.close()


def test_hunt_is_queued_for_the_workers_and_listed_when_done(cli, tmp_path: Path, crawl_worker: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("tenant", "add", "acme").code == 0
    paths = []
    for i in range(3):
        path = tmp_path / f"p{i}.txt"
        words = " ".join(f"w{i}_{j}" for j in range(30))
        path.write_text(f"dump {i}\n{words}\n" + ("project-falcon plans\n" if i != 1 else "nothing\n"))
        paths.append(str(path))
    assert cli("scan", "--store", *paths).code == 0
    rules = tmp_path / "falcon.yar"
    rules.write_text(RULES)

    added = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json")
    assert added.code == 0, added.err
    out = added.json()
    assert out["retro"] == {"status": "queued", "where": "worker"}
    human = cli("watch", "list", "--tenant", "acme").out
    assert "queued for a worker" in human or "running" in human or "done" in human

    deadline = time.monotonic() + 60
    state: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        rows = cli("watch", "list", "--tenant", "acme", "--json").jsonl()
        state = next(r for r in rows if r["id"] == out["id"])["retro"]
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert state["status"] == "done", (state, (tmp_path / "worker.log").read_text(errors="replace")[-2000:])
    assert (state["postings"], state["matches"], state["alerts"]) == (3, 2, 2)
    assert state["queued_at"] and state["finished_at"]
    alerts = cli("alerts", "list", "--json").jsonl()
    assert sorted(Path(a["url"]).name for a in alerts) == ["p0.txt", "p2.txt"]
    assert all(a["kinds"] == ["yara"] for a in alerts)
    assert (
        "done: 3 stored postings searched, 2 matched, 2 new alerts"
        in cli("watch", "list", "--tenant", "acme").out
    )
    audit = [a for a in cli("audit", "--json").jsonl() if a["action"] == "watch.retro_hunt"]
    assert len(audit) == 1 and audit[0]["actor"] == "retro-hunt" and audit[0]["detail"]["matches"] == 2
