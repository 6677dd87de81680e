"""A security team triages an alert in a real browser (Debian's Chromium through Playwright, uvicorn on
loopback, the CSP on): reads what leaked and where, acknowledges, adds a note, is refused a resolve
without a reason, resolves with one, and acknowledges another alert from the inbox in bulk. The alert page
is saved as ``alert-page.png`` (docs/screenshots with ``LEAKSENTINEL_SCREENSHOT_DIR``, as `make
screenshots` sets it)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from console_server import serve

from core.settings import CHROMIUM_ARGS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's /usr/bin/chromium is not installed")
pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

_SHOTS = os.environ.get("LEAKSENTINEL_SCREENSHOT_DIR")
SCREENSHOTS = Path(_SHOTS) if _SHOTS else Path(tempfile.gettempdir()) / "leaksentinel-screenshots"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)

CUSTOMERS = """id,email,phone,name
cust-1001,jane.doe@acme-bank.example,13800138000,Jane Doe
cust-1002,mark.li@acme-bank.example,13912345678,Mark Li
cust-1003,wei.zhang@acme-bank.example,13700001111,Wei Zhang
cust-1004,ops@acme-bank.example,,Ops Desk
"""
EARLIER = (
    "forum-breach",
    "https://forum.example/viewtopic.php?t=8812",
    "[SELLING] acme-bank VPN access",
    timedelta(days=6),
    "Selling working VPN access to acme-bank.example.\nProof: ops@acme-bank.example / Summer2024! Escrow.\n",
)
COMBO = (
    "pastebin-main",
    "https://paste.example/raw/Xk29fQ",
    "acme-bank combo 2026",
    timedelta(hours=2),
    "fresh acme-bank combo, checked today\n"
    "-----------------------------------\n"
    "jane.doe@acme-bank.example:Winter2026!\n"
    "mark.li@acme-bank.example:qwerty123\n"
    "random@other.example:letmein\n"
    "wei.zhang@acme-bank.example:dragon88\n"
    "ops@acme-bank.example:Summer2024!\n"
    "-----------------------------------\n"
    "more on request\n",
)
REPOST = ("tg-leaks", "https://t.me/s/leakchan/4411", None, timedelta(hours=1), COMBO[4])


def _build_world(tmp_path: Path) -> dict[str, Any]:
    """A bank's customers registered, an older forum post with one of them, and a combo list on a paste
    site that a Telegram channel reposts: the pipeline's own stages, as a crawl runs them."""
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.posting import PostingDraft
    from core.settings import load_settings
    from leaksentinel.actions.keys import add_key
    from leaksentinel.actions.sources import add_source
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import add_records
    from leaksentinel.company_hash import hash_csv
    from pipelines.detect import detect_draft
    from pipelines.detection.engine import Detector
    from pipelines.fingerprint import FingerprintPipeline
    from pipelines.normalize import NormalizePipeline
    from pipelines.store import store_posting

    settings = load_settings()
    db = open_database(settings)
    bank = add_tenant(db, "acme-bank", ["acme-bank.example"], ["CN"])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(CUSTOMERS)
    key = load_or_create_key(settings.key_path)
    records = tmp_path / "customers.jsonl"
    rows = hash_csv(csv_path, key, key_column="id", region="CN")
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, "acme-bank", records, settings=settings)
    for name, kind, url in (
        ("forum-breach", "phpbb", "https://forum.example/viewforum.php?f=4"),
        ("pastebin-main", "pastebin", "https://paste.example/"),
        ("tg-leaks", "telegram", "https://t.me/s/leakchan"),
    ):
        add_source(db, name, kind, url, every="10m")
    detector = Detector.from_database(db, key, settings.index_dir)
    normalize, fingerprint = NormalizePipeline(settings), FingerprintPipeline()
    postings = []
    for source, url, title, ago, text in (EARLIER, COMBO, REPOST):
        when = NOW - ago
        draft = PostingDraft(
            source=source, url=url, raw=text.encode(), title=title, published=when, fetched=when
        )
        normalize.apply(draft)
        fingerprint.apply(draft)
        detect_draft(detector, draft)
        postings.append(store_posting(db, settings, draft).posting_id)
    return {"settings": settings, "db": db, "admin": bank["api_key"], "postings": postings,
            "analyst": add_key(db, "analyst")["api_key"]}  # fmt: skip


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from leaksentinel.api.app import create_app

    world = _build_world(tmp_path)
    with serve(create_app(world["settings"])) as base:
        yield {**world, "base": base}


@pytest.fixture
def page(site: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        yield tab
        context.close()
        browser.close()


def test_security_team_triages_an_alert_with_a_history(site: dict[str, Any], page: Any) -> None:
    from core.models import Alert

    base = site["base"]
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    with site["db"].session() as sess:
        earlier = sess.query(Alert).filter_by(posting_id=site["postings"][0]).one().id
        combo = sess.query(Alert).filter_by(posting_id=site["postings"][1]).one().id
        assert sess.query(Alert).count() == 2  # the Telegram repost joined the combo's alert

    page.goto(base + "/")
    page.fill("#api_key", site["admin"])
    page.click("button[type=submit]")
    page.wait_for_url("**/alerts")
    assert page.locator("table.list tbody tr").count() == 2
    page.click(f'a[href="/alerts/{combo}"] >> nth=0')
    page.wait_for_url(f"**/alerts/{combo}")

    # What and where, at the top: the title, then the leak's URL, in the first screenful.
    title = page.inner_text("#alert-title")
    assert title.startswith(
        "4 acme-bank customer records with passwords on paste.example, first seen 2 h ago"
    )
    assert title.endswith("2 sightings")
    url_box = page.locator("#leak-url").bounding_box()
    assert page.inner_text("#leak-url") == COMBO[1] and url_box and url_box["y"] < 250
    assert page.inner_text("#severity-reason").startswith("high: 4 records with a password")
    records = page.locator("table.records tbody tr")
    assert records.count() == 4 and page.locator("tr.with-password").count() == 4
    ops = page.locator("tr.record", has_text="cust-1004")
    assert "seen before" in ops.inner_text() and ops.locator(f'a[href="/alerts/{earlier}"]').count() == 1
    assert "Winter2026!" not in records.all_inner_texts()[0]
    assert page.locator("#posting-excerpt mark.hit").count() == 4  # the other site's line is not marked
    assert page.locator("ol.sightings li").count() == 2
    others = page.locator("table.others tbody tr")  # the domain, once, though both sightings hold it
    assert others.count() == 1 and "acme-bank.example" in others.inner_text()
    assert "abuse@paste.example" in page.inner_text("#next-steps")
    assert [b.inner_text() for b in page.locator("#triage .actions button").all()] == [
        "Acknowledge", "Resolve", "False positive"
    ]  # fmt: skip

    page.click("#triage button:has-text('Acknowledge')")
    page.wait_for_load_state()
    assert page.inner_text("#alert-status") == "acked"
    assert [b.inner_text() for b in page.locator("#triage .actions button").all()] == [
        "Resolve", "False positive", "Reopen"
    ]  # fmt: skip
    page.fill("#assignee-input", "soc-oncall@acme-bank.example")
    page.click("#triage button:has-text('Assign')")
    page.wait_for_load_state()
    assert page.inner_text("#assignee") == "soc-oncall@acme-bank.example"
    page.fill("#note", "4 live accounts; password reset forced, takedown asked of paste.example")
    page.click("button:has-text('Add note')")
    page.wait_for_load_state()
    assert "takedown asked" in page.inner_text("#history")

    page.click("#triage button:has-text('Resolve')")  # no reason: refused, nothing changes
    page.wait_for_load_state()
    assert "give a reason to resolve" in page.inner_text(".flash")
    assert page.inner_text("#alert-status") == "acked"
    page.fill("#reason", "Passwords reset for the 4 customers; paste removed by the site")
    page.click("#triage button:has-text('Resolve')")
    page.wait_for_load_state()
    assert page.inner_text("#alert-status") == "resolved"
    assert (
        page.inner_text("#status-reason") == "Passwords reset for the 4 customers; paste removed by the site"
    )
    history = page.locator("#history li.event")
    assert history.count() == 4
    assert "new → acked" in history.nth(0).inner_text() and "acked → resolved" in history.nth(3).inner_text()
    assert all(":tenant_admin:acme-bank" in t for t in history.all_inner_texts())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{base}/alerts/{combo}")
    page.screenshot(path=str(SCREENSHOTS / "alert-page.png"), full_page=True)

    # The inbox: tick the other alert, acknowledge it in bulk.
    page.goto(base + "/alerts?kind=record")
    page.check(f"#pick-{earlier}")
    page.select_option("#bulk-action", "ack")
    page.click("form.bulk button:has-text('Apply')")
    page.wait_for_url("**/alerts?kind=record")
    assert "1 alert changed (ack)" in page.inner_text(".flash")
    with site["db"].session() as sess:
        assert sess.get(Alert, earlier).status == "acked"  # type: ignore[union-attr]
        assert sess.get(Alert, combo).status == "resolved"  # type: ignore[union-attr]
    assert errors == []  # nothing refused by the CSP, no script error
