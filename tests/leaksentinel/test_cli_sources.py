"""``source remove`` (postings stay, name reusable, audit log, never scheduled again) and tables for people.

Why the posting goes through the real pipeline (normalize, fingerprint, detect, store): the alert it raises
must still name its source after the source is removed, as ``alerts list`` renders it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

LONG_URL = "http://127.0.0.1:9/" + "/".join(f"segment-{i:02d}" for i in range(14)) + "/api_scraping.php"
LEAKED = "jane.doe@acme.example"


def _settings_db() -> tuple[Any, Any]:
    from core.db import open_database
    from core.settings import load_settings

    settings = load_settings()
    return settings, open_database(settings)


def _store_posting(source: str, url: str, text: str) -> int:
    """One posting through the crawl pipeline's stages, as a crawl of ``source`` would store it."""
    from core.hashing import load_or_create_key
    from core.posting import PostingDraft
    from pipelines.detect import detect_draft
    from pipelines.detection.engine import Detector
    from pipelines.fingerprint import FingerprintPipeline
    from pipelines.normalize import NormalizePipeline
    from pipelines.store import store_posting

    settings, db = _settings_db()
    detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
    now = datetime.now(UTC)
    draft = PostingDraft(source=source, url=url, raw=text.encode(), title="dump", published=now, fetched=now)
    NormalizePipeline(settings).apply(draft)
    FingerprintPipeline().apply(draft)
    detect_draft(detector, draft)
    return store_posting(db, settings, draft).posting_id


def _world(cli: Any, tmp_path: Path) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(f"id,email\nemp-1,{LEAKED}\n", encoding="utf-8")
    records = tmp_path / "records.jsonl"
    hashed = cli("hash", "--csv", str(csv_path), "--key-column", "id")
    assert hashed.code == 0, hashed.err
    records.write_text(hashed.out, encoding="utf-8")
    assert cli("tenant", "add", "acme").code == 0
    assert cli("watch", "add", "--tenant", "acme", "--records", str(records)).code == 0
    added = cli("source", "add", "pastes", "--kind", "pastebin", "--url", LONG_URL, "--every", "2m", "--json")
    assert added.code == 0, added.err


def test_remove_keeps_postings_and_their_alerts_name_the_source(
    cli: Any, tmp_path: Path, database_url: str
) -> None:
    from core.models import AuditLog, Posting, Source

    _world(cli, tmp_path)
    _store_posting("pastes", LONG_URL + "#1", f"leak of the day\n{LEAKED} hunter2\n")
    before = cli("alerts", "list", "--json").jsonl()
    assert len(before) == 1 and before[0]["source"] == "pastes"

    result = cli("source", "remove", "pastes", "--json")
    assert result.code == 0, result.err
    out = result.json()
    assert out["name"] == "pastes" and out["removed"] is True
    assert out["postings_kept"] == 1
    assert out["enabled"] is False and out["schedule"] is None

    assert [s["name"] for s in cli("source", "list", "--json").jsonl()] == []
    after = cli("alerts", "list", "--json").jsonl()
    assert [a["id"] for a in after] == [before[0]["id"]]
    assert after[0]["source"] == out["stored_as"] and after[0]["source"].startswith("pastes~removed-")
    assert after[0]["url"] == LONG_URL + "#1"

    _settings, db = _settings_db()
    with db.session() as sess:
        assert sess.scalar(select(func.count()).select_from(Posting)) == 1
        assert sess.scalar(select(func.count()).select_from(Source).where(Source.id == out["id"])) == 1
        entry = sess.scalars(select(AuditLog).where(AuditLog.action == "source.remove")).one()
        assert entry.object_id == str(out["id"]) and entry.actor == "cli"
        assert entry.detail["name"] == "pastes" and entry.detail["postings_kept"] == 1
    audit = cli("audit", "--json").jsonl()
    assert any(a["action"] == "source.remove" for a in audit)


def test_removed_source_is_never_scheduled_and_its_name_is_free(
    cli: Any, tmp_path: Path, database_url: str
) -> None:
    from crawlers.scheduler import Scheduler

    _world(cli, tmp_path)
    old_id = cli("source", "list", "--json").json()["id"]
    _settings, db = _settings_db()
    fired: list[str] = []
    scheduler = Scheduler(db, fired.append, jitter=False)
    assert scheduler.tick() == ["pastes"]  # a never-crawled --every source is due at once

    assert cli("source", "remove", str(old_id)).code == 0  # by id, as the contract allows
    assert Scheduler(db, fired.append, jitter=False).tick() == []

    again = cli("source", "add", "pastes", "--kind", "rss", "--url", "http://127.0.0.1:9/feed", "--json")
    assert again.code == 0, again.err
    assert again.json()["id"] != old_id
    assert [s["name"] for s in cli("source", "list", "--json").jsonl()] == ["pastes"]
    assert Scheduler(db, fired.append, jitter=False).tick() == []  # the new one has no schedule

    for args in (
        ("crawl", str(old_id)),
        ("source", "set", str(old_id), "--resume"),
        ("source", "remove", str(old_id)),
    ):
        refused = cli(*args)
        assert refused.code == 2, (args, refused)
        assert "unknown source" in refused.err and len(refused.err.strip().splitlines()) == 1


def test_remove_unknown_or_built_in_source_is_exit_2(cli: Any, tmp_path: Path, database_url: str) -> None:
    missing = cli("source", "remove", "nosuch")
    assert missing.code == 2 and "unknown source: nosuch" in missing.err
    posting = tmp_path / "dump.txt"
    posting.write_text("nothing here\n", encoding="utf-8")
    assert cli("scan", "--store", str(posting)).code == 0  # creates the built-in source `local`
    built_in = cli("source", "remove", "local")
    assert built_in.code == 2
    assert "built in" in built_in.err


def test_remove_prints_a_sentence_for_people(cli: Any, tmp_path: Path) -> None:
    _world(cli, tmp_path)
    result = cli("source", "remove", "pastes")
    assert result.code == 0
    assert result.out.startswith("source pastes removed; its 0 postings stay")


def test_source_list_table_is_whole_when_piped_with_schedules_as_written(cli: Any) -> None:
    assert cli("source", "add", "pastes", "--kind", "pastebin", "--url", LONG_URL, "--every", "2m").code == 0
    assert (
        cli("source", "add", "daily", "--kind", "rss", "--url", "http://127.0.0.1:9/f", "--every", "1d").code
        == 0
    )
    assert (
        cli("source", "add", "odd", "--kind", "rss", "--url", "http://127.0.0.1:9/g", "--every", "90s").code
        == 0
    )
    table = cli("source", "list")
    assert table.code == 0
    rows = {line.split("│")[1].strip(): line for line in table.out.splitlines() if line.startswith("│")}
    assert set(rows) == {"pastes", "daily", "odd"}  # one line per source: nothing wrapped
    assert LONG_URL in rows["pastes"]
    assert "every 2m" in rows["pastes"] and "every 120" not in table.out
    assert "every 1d" in rows["daily"] and "every 90s" in rows["odd"]
    assert (
        cli("source", "list", "--json").jsonl()[0]["schedule"] == "every 120"
    )  # the stored form, for scripts


def test_alerts_table_is_whole_when_piped(cli: Any, tmp_path: Path) -> None:
    _world(cli, tmp_path)
    _store_posting("pastes", LONG_URL + "#1", f"{LEAKED}\n")
    table = cli("alerts", "list")
    assert table.code == 0
    lines = [line for line in table.out.splitlines() if "pastes" in line]
    assert len(lines) == 1 and LONG_URL + "#1" in lines[0]


def test_cells_are_text_not_markup(cli: Any) -> None:
    """A URL or title holding ``[/b]`` is data: printed as is, never a rich markup error."""
    weird = "http://127.0.0.1:9/a[/b]/[bold]x"
    assert cli("source", "add", "weird", "--kind", "rss", "--url", weird).code == 0
    table = cli("source", "list")
    assert table.code == 0, table.err
    assert weird in table.out
    assert json.loads(cli("source", "list", "--json").lines[0])["url"] == weird


ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = ["source", "fetched", "postings", "new", "matches", "alerts", "errors", "seconds"]


def _crawl_cli(args: list[str], *, tty_stderr: bool) -> tuple[int, str, str]:
    """``python -m leaksentinel crawl ...`` with stdout a pipe and stderr a pipe or a pseudo-terminal."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    env = dict(os.environ)  # the test's home (and database URL) from the isolated environment
    if not tty_stderr:
        proc = subprocess.run(
            [sys.executable, "-m", "leaksentinel", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "leaksentinel", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    terminal = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed its end
                    break
                if not chunk:
                    break
                terminal += chunk
            elif child.poll() is not None:
                break
        assert child.stdout is not None
        out = child.stdout.read().decode()
        code = child.wait(timeout=30)
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
            child.wait()
    return code, out, terminal.decode(errors="replace")


def test_crawl_on_a_terminal_shows_a_progress_line_not_the_scrapy_log(cli: Any, database_url: str) -> None:
    from leaksentinel.sim import Underground

    with Underground(seed=3, n_noise=4) as site:
        added = cli(
            "source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url, "--delay", "0.15"
        )
        assert added.code == 0, added.err
        code, out, terminal = _crawl_cli(["crawl", "pastes", "--json"], tty_stderr=True)
    assert code == 0, terminal[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert list(summary)[: len(SUMMARY_KEYS)] == SUMMARY_KEYS
    assert summary["fetched"] > 3
    assert "pastes: starting" in terminal
    assert " pages, " in terminal and " postings (" in terminal and " matches, " in terminal
    # The spinner line is transient; after it ends (the cursor shown again) the run's own final numbers stay as
    # the last line, since stdout (JSON here) does not show them on the terminal.
    after_spinner = terminal.rsplit("\x1b[?25h", 1)[-1]
    assert f"pastes: {summary['fetched']} pages, {summary['postings']} postings ({summary['new']} new)" in (
        after_spinner
    )
    assert "[scrapy" not in terminal and "INFO:" not in terminal


def test_crawl_log_only_with_verbose(cli: Any, database_url: str) -> None:
    from leaksentinel.sim import Underground

    with Underground(seed=3, n_noise=2) as site:
        assert cli("source", "add", "pastes", "--kind", "pastebin", "--url", site.base_url).code == 0
        quiet = _crawl_cli(["crawl", "pastes", "--json"], tty_stderr=False)
        loud = _crawl_cli(["crawl", "pastes", "-v", "--json"], tty_stderr=False)
    assert quiet[0] == 0 and loud[0] == 0, (quiet[2][-1000:], loud[2][-1000:])
    assert quiet[2] == ""  # not a terminal: no progress line either, and no log
    assert "[scrapy.core.engine]" in loud[2]
    for _code, out, _err in (quiet, loud):
        assert list(json.loads(out.strip().splitlines()[-1]))[: len(SUMMARY_KEYS)] == SUMMARY_KEYS


def test_sigterm_during_crawl_is_one_line_not_a_traceback(cli: Any, database_url: str) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from core.models import CrawlJob

    with socket.socket() as hang:  # accepts the connection, never answers
        hang.bind(("127.0.0.1", 0))
        hang.listen()
        url = f"http://127.0.0.1:{hang.getsockname()[1]}/"
        assert cli("source", "add", "hang", "--kind", "generic", "--url", url, "--item", "pre").code == 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "leaksentinel", "crawl", "hang"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _settings, db = _settings_db()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.session() as sess:
                if sess.scalars(select(CrawlJob).where(CrawlJob.status == "running")).first():
                    break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err[-2000:]
    assert err.decode().strip().splitlines() == [
        "leaksentinel: crawl of hang interrupted (SIGTERM); the job is stored as interrupted"
    ]


def test_source_list_says_why_the_last_run_failed_and_when_the_next_is(cli: Any, database_url: str) -> None:
    from core.models import CrawlJob, Source, utcnow

    assert (
        cli("source", "add", "dead", "--kind", "rss", "--url", "http://127.0.0.1:9/f", "--every", "5m").code
        == 0
    )
    fresh = cli("source", "list", "--json").json()
    assert fresh["last_error"] is None
    assert fresh["next_run"] is not None  # never crawled: due at once
    _settings, db = _settings_db()
    with db.session() as sess:
        source = sess.scalars(select(Source).where(Source.name == "dead")).one()
        sess.add(CrawlJob(source_id=source.id, status="failed", error="old failure", finished_at=utcnow()))
        sess.add(
            CrawlJob(source_id=source.id, status="failed", error="connection refused", finished_at=utcnow())
        )
        source.last_run, source.last_status = utcnow(), "failed"
        last_run = source.last_run
    row = cli("source", "list", "--json").json()
    assert row["last_error"] == "connection refused"
    next_run = datetime.fromisoformat(row["next_run"])
    assert 300 <= (next_run - last_run).total_seconds() <= 300 + 30  # interval plus at most its jitter
    table = cli("source", "list")
    assert "connection refused" in table.out
    assert cli("source", "set", "dead", "--pause").code == 0
    assert cli("source", "list", "--json").json()["next_run"] is None  # paused: never due
