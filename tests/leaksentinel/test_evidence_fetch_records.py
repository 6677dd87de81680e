"""Evidence of crawled postings holds the HTTP exchange and, for rendered sources, a full-page screenshot.

A real crawl of a loopback site (redirect, custom header, a session cookie) -> alert -> evidence zip:
fetch.json and the WARC's request/response records carry status, final URL and headers, never a
credential's value; a rendered source adds ``screenshot.png``, hashed in the signed manifest, so changing
one byte of it fails ``evidence verify``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator

from core.db import open_database
from core.fetch_record import (
    MAX_HEADER_BYTES,
    MAX_SCREENSHOT_BYTES,
    REMOVED,
    prepare_fetch_record,
    read_fetch_record,
    write_fetch_record,
)
from core.models import Alert, Posting, PostingText, Source, Tenant
from core.settings import load_settings
from crawlers.job import run_crawl
from leaksentinel.actions.alerts import list_alerts
from leaksentinel.actions.retention import purge
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.evidence import MANIFEST, build_evidence, verify_evidence
from leaksentinel.sim.server import LoopbackHandler, LoopbackServer
from pipelines.store import write_evidence

SESSION = "SESSIONSECRET-7f3a"
BOARD = b"""<!doctype html><html><head><meta charset="utf-8"><title>leak board</title></head>
<body><div id="board"><div class="post" id="p1">selling fresh combo alice@acme-bank.example:hunter2</div>
</div></body></html>"""
JS_BOARD = b"""<!doctype html><html><head><meta charset="utf-8"><title>leak board</title></head>
<body style="background:#fee"><div id="board">loading...</div><script src="/app.js"></script></body></html>"""
SCRIPT = b"""
const div = document.createElement("div");
div.className = "post"; div.id = "p1";
div.textContent = "selling fresh combo alice@acme-bank.example:hunter2";
document.getElementById("board").replaceChildren(div);
"""


class LeakBoard(LoopbackServer):
    """A board behind a redirect that answers with a custom header and a session cookie."""

    def handle_get(self, req: LoopbackHandler) -> None:
        self.log_request(req.path)
        extra = {"X-Leak-Board": "sim-7", "Set-Cookie": f"session={SESSION}; HttpOnly"}
        if req.path == "/old":
            req.send_body(301, b"", "text/plain", {"Location": "/board"})
        elif req.path == "/board":
            req.send_body(200, BOARD, "text/html; charset=utf-8", extra)
        elif req.path == "/jsboard":
            req.send_body(200, JS_BOARD, "text/html; charset=utf-8", extra)
        elif req.path == "/app.js":
            req.send_body(200, SCRIPT, "application/javascript")
        else:
            req.send_body(404, b"not found", "text/plain")


@pytest.fixture
def board() -> Iterator[LeakBoard]:
    with LeakBoard() as site:
        yield site


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _rezip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in entries.items():
            zf.writestr(name, body)
    return out.getvalue()


def _crawl_to_evidence(source_url: str, render: bool) -> tuple[bytes, int, Any]:
    """Crawl one source, return the evidence zip of its alert, the posting id and the settings."""
    settings = load_settings()
    db = open_database(settings)
    add_tenant(db, "acme", ["acme-bank.example"], [])
    add_source(db, "board", "generic", source_url, render=render, options={"item": "div.post"})
    summary = run_crawl(settings, "board", timeout_s=120)
    assert summary["status"] == "ok" and summary["alerts"] == 1, summary
    (alert,) = list_alerts(db)
    data = build_evidence(db, settings, alert["id"])
    manifest = json.loads(_entries(data)[MANIFEST])
    return data, manifest["postings"][0]["posting"], settings


def _header(pairs: list[list[str]], name: str) -> list[str]:
    return [v for n, v in pairs if n.lower() == name.lower()]


def test_crawled_evidence_holds_status_final_url_and_headers_without_secrets(
    board: LeakBoard, database_url: str
) -> None:
    data, posting_id, settings = _crawl_to_evidence(f"{board.base_url}/old", render=False)
    entries = _entries(data)
    folder = f"posting-{posting_id}"
    fetch = json.loads(entries[f"{folder}/fetch.json"])
    assert fetch["status"] == 200
    assert fetch["final_url"] == f"{board.base_url}/board"
    assert fetch["redirects"] == [f"{board.base_url}/old"]
    assert fetch["method"] == "GET"
    assert _header(fetch["response_headers"], "X-Leak-Board") == ["sim-7"]
    assert _header(fetch["response_headers"], "Set-Cookie") == [REMOVED]
    assert _header(fetch["request_headers"], "User-Agent") == [settings.crawl_user_agent]
    assert fetch["response_body_sha256"] == fetch["raw_sha256"] == hashlib.sha256(BOARD).hexdigest()
    assert "not kept" not in fetch["headers_note"]
    # The session token is nowhere: not in the zip, not in the record kept with the posting's text (which
    # needs no sidecar file in the evidence store).
    assert all(SESSION.encode() not in body for body in entries.values())
    with open_database(settings).session() as sess:
        kept = sess.scalar(select(PostingText.fetch_record).where(PostingText.posting_id == posting_id))
    assert kept is not None and _header(kept["response_headers"], "X-Leak-Board") == ["sim-7"]
    assert SESSION not in json.dumps(kept)
    assert not (settings.evidence_dir / "fetches").exists()

    records = {}
    for record in ArchiveIterator(io.BytesIO(entries["evidence.warc"]), check_digests=True):
        records[record.rec_type] = (record, record.content_stream().read())
        assert record.digest_checker.passed is True, record.digest_checker.problems
    assert set(records) == {"request", "response"}
    response, payload = records["response"]
    assert response.http_headers.get_statuscode() == "200"
    assert response.http_headers.get_header("X-Leak-Board") == "sim-7"
    assert response.http_headers.get_header("Set-Cookie") == REMOVED
    assert response.rec_headers.get_header("WARC-Target-URI") == f"{board.base_url}/board"
    assert payload == BOARD == entries[f"{folder}/raw.bin"]
    request, _ = records["request"]
    assert request.http_headers.get_header("User-Agent") == settings.crawl_user_agent
    assert request.rec_headers.get_header("WARC-Concurrent-To") == response.rec_headers.get_header(
        "WARC-Record-ID"
    )

    assert verify_evidence(data).ok
    changed = dict(entries)
    changed[f"{folder}/fetch.json"] = changed[f"{folder}/fetch.json"].replace(b"sim-7", b"sim-8")
    problems = verify_evidence(_rezip(changed)).problems
    assert problems == [f"{folder}/fetch.json: SHA-256 differs from the manifest (content changed)"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_rendered_evidence_has_a_screenshot_that_verifies_and_fails_when_changed(
    board: LeakBoard, cli: Any, tmp_path: Path
) -> None:
    data, posting_id, settings = _crawl_to_evidence(f"{board.base_url}/jsboard", render=True)
    entries = _entries(data)
    folder = f"posting-{posting_id}"
    name = f"{folder}/screenshot.png"
    shot = entries[name]
    assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 1000
    manifest = json.loads(entries[MANIFEST])
    digest = hashlib.sha256(shot).hexdigest()
    assert manifest["files"][name]["sha256"] == digest
    fetch = json.loads(entries[f"{folder}/fetch.json"])
    assert fetch["screenshot"] == {"file": name, "sha256": digest, "size": len(shot)}
    assert fetch["rendered"] is True and fetch["status"] == 200
    assert _header(fetch["response_headers"], "x-leak-board") == ["sim-7"]
    assert _header(fetch["response_headers"], "set-cookie") == [REMOVED]
    # Content-addressed in the store, like the raw bytes.
    assert (settings.evidence_dir / digest[:2] / digest).read_bytes() == shot

    good = tmp_path / "good.zip"
    good.write_bytes(data)
    assert cli("evidence", "verify", str(good)).code == 0
    changed = dict(entries)
    flipped = bytearray(shot)
    flipped[len(flipped) // 2] ^= 0x01
    changed[name] = bytes(flipped)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_rezip(changed))
    result = cli("evidence", "verify", str(bad))
    assert result.code == 1
    assert f"{name}: SHA-256 differs" in result.out + result.err


def test_sidecar_drops_credential_values_and_bounds_headers_and_screenshots(tmp_path: Path) -> None:
    record = {
        "status": 200,
        "request_headers": [
            ["Authorization", "Bearer tok-123"],
            ["Proxy-Authorization", "Basic cHJveHk="],
            ["Cookie", "sid=abc"],
            ["User-Agent", "leaksentinel"],
        ],
        "response_headers": [["Set-Cookie", "sid=def"], ["X-Big", "x" * (MAX_HEADER_BYTES + 10)]],
        "screenshot_png": b"\x89PNG" + b"\0" * MAX_SCREENSHOT_BYTES,
    }
    path = tmp_path / write_fetch_record(tmp_path, 42, record)
    text = path.read_text()
    for secret in ("tok-123", "cHJveHk=", "sid=abc", "sid=def"):
        assert secret not in text
    kept = read_fetch_record(tmp_path, 42)
    assert kept is not None
    assert kept["request_headers"] == [
        ["Authorization", REMOVED],
        ["Proxy-Authorization", REMOVED],
        ["Cookie", REMOVED],
        ["User-Agent", "leaksentinel"],
    ]
    assert kept["response_headers"] == [["Set-Cookie", REMOVED]] and kept["headers_truncated"] is True
    assert kept["screenshot_sha256"] is None and "not kept" in kept["screenshot_note"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p != path]  # no oversized PNG stored
    assert read_fetch_record(tmp_path, 43) is None


@pytest.mark.parametrize("kept_in", ["text row", "sidecar"])
def test_purge_deletes_the_exchange_and_screenshot_of_unheld_postings_only(
    database_url: str, kept_in: str
) -> None:
    """Retention covers what the crawl kept beside the raw bytes: a purged posting's headers and screenshot
    go with it; an alert's posting keeps them. The exchange is kept with the posting's text, or (postings
    stored before, postings without text) in a sidecar file."""
    settings = load_settings()
    db = open_database(settings)
    old = datetime.now(UTC) - timedelta(days=settings.retention_days + 5)
    ids: dict[str, int] = {}
    with db.session() as sess:
        tenant = Tenant(name="acme")
        source = Source(name="paste", kind="pastebin", url="http://127.0.0.1:1/")
        sess.add_all([tenant, source])
        sess.flush()
        for name in ("held", "unheld"):
            text = f"leaked row {name} alice@example.com"
            posting = Posting(
                source_id=source.id,
                url=f"http://127.0.0.1:1/{name}",
                fetched=old,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                evidence_sha256=write_evidence(settings.evidence_dir, text.encode()),
                text=text,
            )
            sess.add(posting)
            sess.flush()
            ids[name] = posting.id
        sess.add(Alert(tenant_id=tenant.id, posting_id=ids["held"], severity="high"))
    shots = {}
    for name, posting_id in ids.items():
        shots[name] = b"\x89PNG\r\n\x1a\n" + name.encode()
        record = {"status": 200, "screenshot_png": shots[name]}
        if kept_in == "sidecar":
            write_fetch_record(settings.evidence_dir, posting_id, record)
            continue
        with db.session() as sess:
            row = sess.get(PostingText, (posting_id, sess.get(Posting, posting_id).text_row.retain_month))
            row.fetch_record = prepare_fetch_record(settings.evidence_dir, record)
    purge(db, settings)
    for name, posting_id in ids.items():
        digest = hashlib.sha256(shots[name]).hexdigest()
        kept = (settings.evidence_dir / digest[:2] / digest).exists()
        with db.session() as sess:
            row = sess.scalar(select(PostingText).where(PostingText.posting_id == posting_id))
            stored = row.fetch_record if row is not None else None
        found = read_fetch_record(settings.evidence_dir, posting_id, stored)
        assert kept == (found is not None) == (name == "held")
        assert found is None or found["screenshot_sha256"] == digest
        assert (stored is not None) == (kept_in == "text row" and name == "held")


def test_a_page_stored_before_keeps_no_new_screenshot(database_url: str) -> None:
    """The exchange is kept for a new posting only: a page fetched again (same source and URL) is not stored
    again, and the screenshot taken of it again is not kept either (no row would hold it, so no purge
    would ever delete it)."""
    from core.posting import PostingDraft
    from pipelines.store import store_posting

    settings = load_settings()
    db = open_database(settings)
    add_source(db, "board", "generic", "http://127.0.0.1:1/")
    shots = [b"\x89PNG\r\n\x1a\nfirst", b"\x89PNG\r\n\x1a\nagain"]
    results = []
    for shot in shots:
        draft = PostingDraft(
            source="board",
            url="http://127.0.0.1:1/thread/1",
            text="leaked rows",
            fetch={"status": 200, "url": "http://127.0.0.1:1/thread/1", "screenshot_png": shot},
        )
        results.append(store_posting(db, settings, draft))
    assert [r.new for r in results] == [True, False]
    kept = [hashlib.sha256(s).hexdigest() for s in shots]
    assert [(settings.evidence_dir / d[:2] / d).exists() for d in kept] == [True, False]
    with db.session() as sess:
        row = sess.get(Posting, results[0].posting_id).text_row
        assert row is not None and row.fetch_record["screenshot_sha256"] == kept[0]


def _others_can_write(settings: Any, database_url: str) -> bool:
    """Whether another connection could write the database right now (no transaction holds it)."""
    if not database_url:  # SQLite: BEGIN IMMEDIATE takes the write lock a storing transaction holds
        import sqlite3

        conn = sqlite3.connect(settings.home / "leaksentinel.db", timeout=0.2, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:  # an open transaction of this test's process
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
        ).fetchone()
    return row is not None and row[0] == 0


def test_a_screenshot_is_written_while_no_transaction_holds_the_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rendered page's screenshot goes to the evidence store (a file, an S3 PUT) before the posting's
    transaction, not inside it: on SQLite that transaction holds the write lock every other process (the
    API, workers, other crawls) waits for."""
    import core.fetch_record as fetch_record
    from core.posting import PostingDraft
    from pipelines.store import store_posting

    settings = load_settings()
    db = open_database(settings)
    add_source(db, "board", "generic", "http://127.0.0.1:1/")
    shot = b"\x89PNG\r\n\x1a\nrendered"
    seen: list[bool] = []
    put_blob = fetch_record.put_blob

    def watched_put(store: Any, data: bytes) -> str:
        if data == shot:
            seen.append(_others_can_write(settings, database_url))
        return put_blob(store, data)

    monkeypatch.setattr(fetch_record, "put_blob", watched_put)
    draft = PostingDraft(
        source="board",
        url="http://127.0.0.1:1/thread/9",
        text="leaked rows",
        fetch={"status": 200, "url": "http://127.0.0.1:1/thread/9", "screenshot_png": shot},
    )
    result = store_posting(db, settings, draft)
    assert result.new and seen == [True]
    with db.session() as sess:
        row = sess.get(Posting, result.posting_id).text_row
        assert row is not None and row.fetch_record["screenshot_sha256"] == hashlib.sha256(shot).hexdigest()


def test_a_rendered_tip_page_makes_its_implicit_source_once_and_keeps_its_screenshot(
    database_url: str,
) -> None:
    """The look-up before a screenshot is written only reads: the implicit source (tips) is made by the
    storing transaction, once, and the page's screenshot is kept with the posting."""
    from core.posting import PostingDraft
    from pipelines.store import TIPS_SOURCE, store_posting

    settings = load_settings()
    db = open_database(settings)
    shot = b"\x89PNG\r\n\x1a\ntip"
    results = [
        store_posting(
            db,
            settings,
            PostingDraft(
                source=TIPS_SOURCE,
                url=f"http://127.0.0.1:1/tip/{n}",
                text="leaked rows",
                fetch={"status": 200, "url": f"http://127.0.0.1:1/tip/{n}", "screenshot_png": shot},
            ),
        )
        for n in (1, 2)
    ]
    assert [r.new for r in results] == [True, True]
    with db.session() as sess:
        assert len(sess.scalars(select(Source).where(Source.name == TIPS_SOURCE)).all()) == 1
        rows = [sess.get(Posting, r.posting_id).text_row for r in results]
        assert all(r is not None and r.fetch_record["screenshot_sha256"] for r in rows)
