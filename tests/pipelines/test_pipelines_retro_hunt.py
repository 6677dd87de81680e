"""YARA retro-hunt: a YARA watch added today is run over the postings stored before, bounded, and raises
the alerts a crawl would have raised (one per leak, notified), never twice."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core.db import open_database
from core.models import Delivery, Finding, Posting, WatchItem, utcnow
from core.settings import load_settings
from leaksentinel.actions.watches import add_yara_watch, list_watches
from pipelines.retro import mark_hunt_queued, yara_retro_hunt

RULES = """rule Falcon {
    strings:
        $a = "PROJECT-FALCON" nocase
    condition:
        $a
}

rule FalconKey {
    strings:
        $k = /falcon_[0-9a-f]{8}/
    condition:
        $k
}
"""

#: Postings: two writings of one leak (a repost), one with both rules, one that matches nothing, one that a
#: keyword watch already alerted on.
POSTINGS = {
    "leak.txt": "forum dump 2026-11\nproject-falcon roadmap for q3\nowner list follows\nalpha beta gamma\n",
    "other.txt": "unrelated chatter about football results and the weather in the north\n",
    "both.txt": "second leak\nfalcon_deadbeef is the staging key\nPROJECT-FALCON budget sheet\n",
    "kw.txt": "third leak of globex-internal notes\nproject-falcon crew rota\nnothing else here\n",
}
REPOST = "leak-mirror.txt"  # the same text as leak.txt, stored later: a sighting of the same leak


def _files(tmp_path: Path) -> list[str]:
    paths = []
    for name, text in POSTINGS.items():
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    (tmp_path / REPOST).write_text(POSTINGS["leak.txt"])
    paths.append(str(tmp_path / REPOST))
    return paths


def _alerts(cli: Any, tenant: str) -> list[dict[str, Any]]:
    rows = [a for a in cli("alerts", "list", "--json").jsonl() if a["tenant"] == tenant]
    return sorted(rows, key=lambda a: a["url"])


def _comparable(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (Path(a["url"]).name, a["kinds"], a["severity"], sorted(Path(s).name for s in a["sightings"]))
        for a in alerts
    ]


def test_hunt_raises_what_a_crawl_would_have_raised_and_nothing_twice(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "falcon.yar"
    rules.write_text(RULES)
    for tenant in ("crawled", "hunted"):
        assert cli("tenant", "add", tenant).code == 0
        assert cli("watch", "add", "--tenant", tenant, "--keyword", "globex-internal").code == 0
        sub = cli("subscribe", "--tenant", tenant, "--webhook", "http://127.0.0.1:9/hook")
        assert sub.code == 0, sub.err
    # "crawled" has the rules before the postings arrive; "hunted" adds them afterwards.
    assert cli("watch", "add", "--tenant", "crawled", "--yara", str(rules)).code == 0
    assert cli("scan", "--store", *_files(tmp_path)).code == 0
    before = _alerts(cli, "hunted")
    assert [(Path(a["url"]).name, a["kinds"]) for a in before] == [("kw.txt", ["keyword"])]

    added = cli("watch", "add", "--tenant", "hunted", "--yara", str(rules), "--json")
    assert added.code == 0, added.err
    retro = added.json()["retro"]
    assert retro["where"] == "here" and retro["status"] == "done"
    assert (retro["postings"], retro["matches"], retro["alerts"]) == (5, 4, 2)
    # leak.txt + its repost, both.txt (two rules), kw.txt (joins the keyword alert)
    assert retro["findings"] == 5

    crawled, hunted = _alerts(cli, "crawled"), _alerts(cli, "hunted")
    assert _comparable(hunted) == _comparable(crawled)
    assert [a["kinds"] for a in hunted] == [["yara"], ["keyword", "yara"], ["yara"]]
    assert [len(a["sightings"]) for a in hunted] == [1, 1, 2]  # one alert per leak: the repost joined

    db = open_database(load_settings())
    with db.session() as sess:
        rules_found = sess.execute(
            select(Finding.watch, Finding.tenant_id).where(Finding.kind == "yara")
        ).all()
        deliveries = int(sess.scalar(select(func.count()).select_from(Delivery)) or 0)
    assert len(rules_found) == 10  # five per tenant
    # both tenants' new alerts are handed to their webhook (the keyword alerts too): 3 + 3
    assert deliveries == 6

    # the watch list says how the hunt ended; the audit log has a line for it
    listed = [r for r in cli("watch", "list", "--tenant", "hunted", "--json").jsonl() if r["kind"] == "yara"]
    assert listed[0]["retro"]["status"] == "done" and listed[0]["retro"]["matches"] == 4
    assert "token" not in listed[0]["retro"]
    assert (
        "done: 5 stored postings searched, 4 matched, 2 new alerts"
        in cli("watch", "list", "--tenant", "hunted").out
    )
    audit = [
        a
        for a in cli("audit", "--json").jsonl()
        if a["action"] == "watch.retro_hunt" and a["object_id"] == str(listed[0]["id"])
    ]
    assert len(audit) == 1 and audit[0]["detail"]["alerts"] == 2 and audit[0]["detail"]["status"] == "done"

    # run again (the command, and adding the same rules again): nothing new, no second alert
    again = cli("watch", "hunt", "--tenant", "hunted", str(listed[0]["id"]), "--json")
    assert again.code == 0, again.err
    assert (
        again.json()["retro"]["matches"],
        again.json()["retro"]["findings"],
        again.json()["retro"]["alerts"],
    ) == (
        4,
        0,
        0,
    )
    readded = cli("watch", "add", "--tenant", "hunted", "--yara", str(rules), "--json").json()
    assert readded["created"] is False and readded["retro"]["status"] == "done"
    assert _comparable(_alerts(cli, "hunted")) == _comparable(crawled)
    with db.session() as sess:
        assert (
            int(sess.scalar(select(func.count()).select_from(Finding).where(Finding.kind == "yara")) or 0)
            == 10
        )
        assert int(sess.scalar(select(func.count()).select_from(Delivery)) or 0) == 6
    assert "retro-hunt of watch" in cli("watch", "hunt", "--tenant", "hunted", str(listed[0]["id"])).out


def test_hunt_of_another_kind_or_tenant_is_refused(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    assert cli("tenant", "add", "acme").code == 0
    assert cli("tenant", "add", "globex").code == 0
    kw = cli("watch", "add", "--tenant", "acme", "--keyword", "x", "--json").json()
    yr = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json").json()
    assert yr["retro"]["status"] == "done" and yr["retro"]["postings"] == 0
    wrong_kind = cli("watch", "hunt", "--tenant", "acme", str(kw["id"]))
    assert wrong_kind.code == 2 and "only YARA watches" in wrong_kind.err
    other = cli("watch", "hunt", "--tenant", "globex", str(yr["id"]))
    assert other.code != 0 and "has no watch" in other.err


def _store_many(cli: Any, tmp_path: Path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        path = tmp_path / f"p{i}.txt"
        # distinct texts (no two are near duplicates), each matching the rules
        path.write_text(
            f"posting {i} {'xyz' * i}\n" + " ".join(f"w{i}_{j}" for j in range(40)) + "\nproject-falcon\n"
        )
        paths.append(str(path))
    assert cli("scan", "--store", *paths).code == 0
    return paths


def _setup_watch(cli: Any, tmp_path: Path) -> int:
    assert cli("tenant", "add", "acme").code == 0
    db = open_database(load_settings())
    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    # registered without a hunt (no settings): the test runs the hunt itself
    return int(add_yara_watch(db, 1, rules)["id"])


def _alert_urls(cli: Any) -> list[str]:
    return sorted(Path(a["url"]).name for a in cli("alerts", "list", "--json").jsonl())


def test_bounds_stop_the_hunt_newest_first_and_a_rerun_completes_it(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    _store_many(cli, tmp_path, 5)
    watch_id = _setup_watch(cli, tmp_path)
    db = open_database(load_settings())
    settings = load_settings()

    by_count = yara_retro_hunt(db, settings.with_(yara_retro_max_postings=2), watch_id)
    assert (by_count.status, by_count.limited, by_count.postings, by_count.alerts) == (
        "limited",
        "postings",
        2,
        2,
    )
    assert _alert_urls(cli) == ["p3.txt", "p4.txt"]  # the newest two

    with db.session() as sess:
        sizes = [len(t.encode()) for t in sess.scalars(select(Posting.text).order_by(Posting.id.desc()))]
    by_bytes = yara_retro_hunt(db, settings.with_(yara_retro_max_bytes=sum(sizes[:3]) + 1), watch_id)
    assert (by_bytes.status, by_bytes.limited, by_bytes.postings, by_bytes.alerts) == (
        "limited",
        "bytes",
        3,
        1,
    )
    assert by_bytes.bytes == sum(sizes[:3])
    assert _alert_urls(cli) == ["p2.txt", "p3.txt", "p4.txt"]

    ticks = iter(range(0, 10_000, 10))  # every look at the clock: ten seconds later
    by_time = yara_retro_hunt(db, settings, watch_id, seconds=25, clock=lambda: float(next(ticks)))
    assert by_time.status == "limited" and by_time.limited == "time" and by_time.postings <= 2

    whole = yara_retro_hunt(db, settings, watch_id)
    assert (whole.status, whole.limited, whole.postings, whole.matches) == ("done", None, 5, 5)
    assert _alert_urls(cli) == [f"p{i}.txt" for i in range(5)]
    assert len(cli("alerts", "list", "--json").jsonl()) == 5
    state = next(r for r in list_watches(db, 1) if r["id"] == watch_id)["retro"]
    assert state["status"] == "done" and state["postings"] == 5 and state["finished_at"]


def test_purged_postings_are_skipped_and_a_running_hunt_is_not_started_twice(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    _store_many(cli, tmp_path, 3)
    watch_id = _setup_watch(cli, tmp_path)
    db = open_database(load_settings())
    settings = load_settings()
    with db.session() as sess:
        oldest = sess.scalar(select(func.min(Posting.id)))
        sess.get(Posting, oldest).text = ""  # type: ignore[union-attr]

    # a hunt handed to a worker and running there: another start is refused while it is fresh
    token = mark_hunt_queued(db, watch_id)
    with db.session() as sess:
        item = sess.get(WatchItem, watch_id)
        assert item is not None
        item.data = {
            **item.data,
            "retro": {
                "status": "running",
                "started_at": utcnow().isoformat(),
                "limit_s": 900,
                "token": token,
            },
        }
    assert yara_retro_hunt(db, settings, watch_id).status == "busy"
    assert _alert_urls(cli) == []
    # the same message handed out again (its worker died) carries the token: it runs
    redelivered = yara_retro_hunt(db, settings, watch_id, token=token)
    assert (redelivered.status, redelivered.postings, redelivered.alerts) == ("done", 2, 2)
    assert _alert_urls(cli) == ["p1.txt", "p2.txt"]

    # a "running" state left by a process that died long ago does not block a new hunt
    with db.session() as sess:
        item = sess.get(WatchItem, watch_id)
        assert item is not None
        item.data = {
            **item.data,
            "retro": {
                "status": "running",
                "started_at": "2020-01-01T00:00:00+00:00",
                "limit_s": 60,
                "token": "x",
            },
        }
    assert yara_retro_hunt(db, settings, watch_id).status == "done"
    assert len(cli("alerts", "list", "--json").jsonl()) == 2


def test_a_stale_broker_announcement_falls_back_to_hunting_here(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """``run`` crashed and left its announcement: the command does not hang, it hunts itself."""
    from core.redis_embedded import free_port

    _store_many(cli, tmp_path, 2)
    assert cli("tenant", "add", "acme").code == 0
    settings = load_settings()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "redis.url").write_text(f"redis://:pw@127.0.0.1:{free_port()}/0")
    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    started = time.monotonic()
    added = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json")
    assert added.code == 0, added.err
    assert time.monotonic() - started < 15
    retro = added.json()["retro"]
    assert (retro["where"], retro["status"], retro["alerts"]) == ("here", "done", 2)
    assert json.loads(added.lines[-1])["retro"]["postings"] == 2


def test_sigterm_stops_the_hunt_between_postings_and_says_interrupted(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A worker told to stop ends its hunt at the next posting (``run`` stops within 20 s); the task then
    queues it again, and a rerun finishes it without a second alert."""
    import os
    import signal

    _store_many(cli, tmp_path, 3)
    watch_id = _setup_watch(cli, tmp_path)
    db = open_database(load_settings())
    settings = load_settings()
    calls = {"n": 0}

    def clock() -> float:
        calls["n"] += 1
        if calls["n"] == 6:  # while the second posting is read
            os.kill(os.getpid(), signal.SIGTERM)
        return time.monotonic()

    before = signal.getsignal(signal.SIGTERM)
    stopped = yara_retro_hunt(db, settings, watch_id, clock=clock)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    assert stopped.status == "interrupted" and 1 <= stopped.postings < 3
    state = next(r for r in list_watches(db, 1) if r["id"] == watch_id)["retro"]
    assert state["status"] == "interrupted"
    # adding the same rules again runs an unfinished hunt again
    rules = tmp_path / "r.yar"
    readded = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json").json()
    assert readded["created"] is False and readded["retro"]["status"] == "done"
    assert readded["retro"]["alerts"] == 3 - stopped.alerts
    assert len(cli("alerts", "list", "--json").jsonl()) == 3


def test_api_watch_list_shows_the_hunt_to_its_tenant_only(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from leaksentinel.api.app import create_app

    _store_many(cli, tmp_path, 2)
    acme = cli("tenant", "add", "acme", "--json").json()["api_key"]
    other = cli("tenant", "add", "other", "--json").json()["api_key"]
    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    watch = cli("watch", "add", "--tenant", "acme", "--yara", str(rules), "--json").json()
    client = TestClient(create_app(load_settings(api_rate_per_s=1000.0, api_burst=1000)))
    mine = client.get("/api/v1/watches", headers={"Authorization": f"Bearer {acme}"})
    assert mine.status_code == 200, mine.text
    row = next(r for r in mine.json() if r["id"] == watch["id"])
    assert row["kind"] == "yara" and row["retro"]["status"] == "done" and row["retro"]["alerts"] == 2
    assert "token" not in row["retro"]
    theirs = client.get("/api/v1/watches", headers={"Authorization": f"Bearer {other}"})
    assert theirs.status_code == 200 and [r for r in theirs.json() if r["kind"] == "yara"] == []


def test_joining_an_existing_alert_gives_it_the_kinds_and_severity_a_crawl_would(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    assert cli("tenant", "add", "crawled", "--domain", "crawled.example").code == 0
    assert cli("tenant", "add", "hunted", "--domain", "hunted.example").code == 0
    assert cli("watch", "add", "--tenant", "crawled", "--yara", str(rules)).code == 0
    posting = tmp_path / "mixed.txt"
    posting.write_text("staff list\nann@crawled.example\nbob@hunted.example\nproject-falcon sheet\n")
    assert cli("scan", "--store", str(posting)).code == 0
    before = _alerts(cli, "hunted")
    assert [(a["kinds"], a["severity"]) for a in before] == [(["domain"], "low")]
    added = cli("watch", "add", "--tenant", "hunted", "--yara", str(rules), "--json").json()
    assert (added["retro"]["findings"], added["retro"]["alerts"]) == (1, 0)  # joined, not a second alert
    crawled, hunted = _alerts(cli, "crawled"), _alerts(cli, "hunted")
    assert [(a["kinds"], a["severity"]) for a in hunted] == [(a["kinds"], a["severity"]) for a in crawled]
    assert hunted[0]["kinds"] == ["domain", "yara"] and hunted[0]["severity"] == "medium"
    assert hunted[0]["id"] == before[0]["id"]


def test_a_queued_message_arriving_while_a_hunt_runs_here_finds_it_busy(
    cli, tmp_path: Path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    _store_many(cli, tmp_path, 2)
    watch_id = _setup_watch(cli, tmp_path)
    db = open_database(load_settings())
    settings = load_settings()
    token = mark_hunt_queued(db, watch_id)  # handed to a broker, then the command hunted here as well
    nested: list[str] = []

    def clock() -> float:
        if not nested:
            nested.append("")
            nested[0] = yara_retro_hunt(db, settings, watch_id, token=token).status
        return time.monotonic()

    here = yara_retro_hunt(db, settings, watch_id, clock=clock)
    assert nested == ["busy"]
    assert (here.status, here.alerts) == ("done", 2)
    assert len(cli("alerts", "list", "--json").jsonl()) == 2
