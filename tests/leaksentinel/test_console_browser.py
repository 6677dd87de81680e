"""The web console in a real browser: Debian's Chromium through Playwright against uvicorn on loopback.

Each role does its main task end to end, the main pages are saved as screenshots for docs/console.md,
and a posting full of script, event handlers, ``javascript:`` links and an image pointing at a second
loopback "attacker" server is viewed without any dialog firing or any request reaching the attacker.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from console_server import serve

from core.settings import CHROMIUM_ARGS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's /usr/bin/chromium is not installed")
pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

# Screenshots go to a temporary directory; `make screenshots` sets this to docs/screenshots to refresh them.
_SHOTS = os.environ.get("LEAKSENTINEL_SCREENSHOT_DIR")
SCREENSHOTS = Path(_SHOTS) if _SHOTS else Path(tempfile.gettempdir()) / "leaksentinel-screenshots"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # health is judged against the real clock

CUSTOMERS = """id,email,phone,name
cust-1001,jane.doe@acme.example,13800138000,Jane Doe
cust-1002,mark.li@acme.example,13912345678,Mark Li
cust-1003,wei.zhang@acme.example,13700001111,Wei Zhang
cust-1004,ops@acme.example,,Ops Desk
"""

POSTINGS = [
    (
        "pastebin-main",
        "https://pastebin.example/raw/Xk29fQ",
        "Acme customer export (partial)",
        timedelta(days=2, hours=3),
        "Acme Corp customer export, fresh from the CRM. More on request.\n\n"
        "email,phone,name\nJANE.DOE@ACME.EXAMPLE,+86 138 0013 8000,Jane Doe\n"
        "Mark.Li@acme.example,139-1234-5678,Mark Li\nwei.zhang@acme.example,137 0000 1111,Wei Zhang\n"
        "lee@initech.example,,Lee\n",
    ),
    (
        "forum-breach",
        "https://forum.example/viewtopic.php?t=8812",
        "[SELLING] acme.example VPN access",
        timedelta(days=1, hours=5),
        "Selling working VPN access to acme.example, admin panel at vpn.acme.example.\n"
        "Proof: ops@acme.example / Summer2024! Escrow accepted. Contact on the usual channel.\n",
    ),
    (
        "darkfeed",
        "https://feed.example/item/5512",
        "Weekly breach roundup",
        timedelta(hours=20),
        "This week: a Globex database is circulating, Initech staff mail leaked, and rumours about an "
        "acme reseller breach remain unconfirmed. Fresh combo lists keep appearing on channels.\n",
    ),
    (
        "tg-leaks",
        "https://t.me/s/leakchan/4411",
        None,
        timedelta(hours=6),
        "new combo drop tonight: 120k mixed, includes acme and globex staff. samples below\n"
        "bob@globex.example:letmein\nalice@example.org:qwerty\n",
    ),
]


class _Ingest:
    """Postings through the same stages `scan --store` runs, but as postings of named sources."""

    def __init__(self, settings: Any, db: Any) -> None:
        from core.hashing import load_or_create_key
        from pipelines.detection.engine import Detector
        from pipelines.fingerprint import FingerprintPipeline
        from pipelines.normalize import NormalizePipeline

        self.settings, self.db = settings, db
        self.detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
        self.normalize, self.fingerprint = NormalizePipeline(settings), FingerprintPipeline()

    def add(self, source: str, url: str, title: str | None, published: datetime, text: str) -> int:
        from core.posting import PostingDraft
        from pipelines.detect import detect_draft
        from pipelines.store import store_posting

        draft = PostingDraft(
            source=source, url=url, raw=text.encode(), title=title, published=published, fetched=published
        )
        self.normalize.apply(draft)
        self.fingerprint.apply(draft)
        detect_draft(self.detector, draft)
        posting_id = store_posting(self.db, self.settings, draft).posting_id
        try:  # the store pipeline may not index postings yet: index them here (harmless if it does)
            from core.search import open_backend, reindex

            backend = open_backend(self.settings)
            reindex(self.db, backend, after_id=posting_id - 1)
            backend.close()
        except ImportError:
            pass
        return posting_id


def _build_world(tmp_path: Path) -> dict[str, Any]:
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.models import CrawlJob, Source
    from core.settings import load_settings
    from leaksentinel.actions.keys import add_key
    from leaksentinel.actions.sources import add_source
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import add_records
    from leaksentinel.company_hash import hash_csv

    settings = load_settings()
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], ["CN"])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(CUSTOMERS)
    records = tmp_path / "customers.jsonl"
    key = load_or_create_key(settings.key_path)
    rows = hash_csv(csv_path, key, key_column="id", region="CN")
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, "acme", records, settings=settings)

    sources = [
        ("pastebin-main", "pastebin", "https://pastebin.example/", "2m", "healthy", None, "ok"),
        ("forum-breach", "phpbb", "https://forum.example/viewforum.php?f=4", "15m", "healthy", None, "ok"),
        ("darkfeed", "rss", "https://feed.example/rss.xml", "1h", "unhealthy",
         "3 failed runs in a row: HTTP 503 from feed.example", "failed"),
        ("tg-leaks", "telegram", "https://t.me/s/leakchan", "10m", "healthy", None, "ok"),
    ]  # fmt: skip
    for name, kind, url, every, *_ in sources:
        add_source(db, name, kind, url, every=every)
    with db.session() as sess:
        for name, _kind, _url, _every, health, reason, last in sources:
            src = sess.query(Source).filter_by(name=name).one()
            src.health, src.health_reason, src.last_status = health, reason, last
            # Health is judged against the clock when the page is served, not when this module was imported.
            src.last_run = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
            src.last_success = src.last_run if last == "ok" else NOW - timedelta(hours=5)
            for i in range(3):
                start = NOW - timedelta(minutes=4 + 15 * i)
                failed = last == "failed"
                sess.add(
                    CrawlJob(
                        source_id=src.id,
                        started_at=start,
                        finished_at=start + timedelta(seconds=14),
                        status="failed" if failed else "ok",
                        stats={}
                        if failed
                        else {"fetched": 40 - i, "postings": 38 - i, "new": 3 - i, "alerts": 1},
                        error="HTTP 503 Service Unavailable" if failed else None,
                    )
                )
    ingest = _Ingest(settings, db)
    postings = [ingest.add(s, u, t, NOW - ago, text) for s, u, t, ago, text in POSTINGS]
    return {
        "settings": settings,
        "db": db,
        "ingest": ingest,
        "admin": acme["api_key"],
        "analyst": add_key(db, "analyst")["api_key"],
        "operator": add_key(db, "operator")["api_key"],
        "postings": postings,
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def _serve(tmp_path: Path, *, csp: bool = True) -> Iterator[dict[str, Any]]:
    """The world served by uvicorn on loopback (``csp=False``: without the Content-Security-Policy)."""
    from leaksentinel.api.app import create_app

    world = _build_world(tmp_path)
    with serve(create_app(world["settings"], csp=csp)) as base:
        yield {**world, "base": base}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with _serve(tmp_path) as world:
        yield world


@pytest.fixture
def site_without_csp(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Escaping is what keeps hostile text inert; the CSP is only a second line, so it is switched off."""
    with _serve(tmp_path, csp=False) as world:
        yield world


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def _login(page: Any, base: str, key: str) -> None:
    page.goto(base + "/")
    assert page.url.endswith("/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_tenant_admin_opens_and_acknowledges_an_alert(site: dict[str, Any], page: Any) -> None:
    _login(page, site["base"], site["admin"])
    assert page.url.endswith("/alerts")
    assert page.locator("table.list tbody tr").count() == 2
    _shot(page, "alerts")
    with site["db"].session() as sess:
        from core.models import Alert

        alert_id = sess.query(Alert).filter_by(posting_id=site["postings"][0]).one().id
    page.click(f'a[href="/alerts/{alert_id}"] >> nth=0')
    page.wait_for_url(f"**/alerts/{alert_id}")
    assert page.inner_text("#alert-status") == "new"
    assert "3 records, 3 new" in page.inner_text(".lineage")
    _shot(page, "alert-detail")
    page.click("button:has-text('Acknowledge')")
    page.wait_for_url(f"**/alerts/{alert_id}")
    assert page.inner_text("#alert-status") == "acked"
    assert "is now acked" in page.inner_text(".flash")
    page.goto(site["base"] + "/alerts?status=acked")
    assert page.locator("table.list tbody tr").count() == 1


def test_analyst_searches_and_opens_a_posting(site: dict[str, Any], page: Any) -> None:
    _login(page, site["base"], site["analyst"])
    assert page.url.endswith("/search")
    page.fill("input[name=q]", "acme")
    page.click("form.search button")
    page.wait_for_url("**/search?q=acme**")
    assert page.locator("article.hit").count() >= 3
    assert page.locator("article.hit mark").count() >= 3
    assert page.locator("aside.facets li").count() >= 4
    _shot(page, "search")
    page.click("article.hit h3 a >> text=Acme customer export (partial)")
    page.wait_for_url("**/postings/*")
    assert "JANE.DOE@ACME.EXAMPLE" in page.inner_text("#evidence")
    page.click("ul.pivots a >> text=jane.doe@acme.example")
    page.wait_for_url("**/search?q=jane.doe%40acme.example")
    assert page.locator("article.hit").count() == 1


def test_operator_pauses_a_source(site: dict[str, Any], page: Any) -> None:
    _login(page, site["base"], site["operator"])
    assert page.url.endswith("/sources")
    assert "unhealthy" in page.inner_text("#source-darkfeed")
    assert "unhealthy" not in page.inner_text("#source-pastebin-main")
    assert page.input_value("#source-forum-breach input[name=value]") == "15m"
    _shot(page, "sources")
    row = page.locator("#source-forum-breach")
    assert row.locator(".state").inner_text() == "active"
    row.locator("button:has-text('Pause')").click()
    page.wait_for_url("**/sources")
    assert page.locator("#source-forum-breach .state").inner_text() == "paused"
    assert "forum-breach paused" in page.inner_text(".flash")
    page.click("#source-darkfeed a")
    page.wait_for_url("**/sources/darkfeed/jobs")
    page.wait_for_selector("span.job-failed")  # count() does not wait for the page to be there
    assert page.locator("span.job-failed").count() == 3


class _Attacker(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        _Attacker.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_hostile_posting_runs_nothing_and_loads_nothing(site_without_csp: dict[str, Any], page: Any) -> None:
    site = site_without_csp
    import httpx

    assert "Content-Security-Policy" not in httpx.get(site["base"] + "/login").headers
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    _Attacker.hits = []
    steal = f"http://127.0.0.1:{attacker.server_address[1]}/steal"
    try:
        hostile = (
            "dump for jane.doe@acme.example\n<script>alert(1)</script>\n<img src=x onerror=alert(2)>\n"
            '<a href="javascript:alert(3)">click</a>\n'
            f'<img src="{steal}">\n<iframe src="{steal}"></iframe>\n<link rel=stylesheet href="{steal}">\n'
        )
        posting_id = site["ingest"].add(
            "pastebin-main", "javascript:alert(4)", "<b>hi</b><script>alert(5)</script>", NOW, hostile
        )
        from core.models import Alert

        with site["db"].session() as sess:
            alert_id = sess.query(Alert).filter_by(posting_id=posting_id).one().id
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        _login(page, site["base"], site["admin"])
        page.goto(f"{site['base']}/alerts")
        page.goto(f"{site['base']}/alerts/{alert_id}")
        page.wait_for_load_state("networkidle")
        assert "<script>alert(1)</script>" in page.inner_text("#evidence")
        assert page.locator("#evidence *").count() == 0  # all of it is text
        page.context.clear_cookies()
        _login(page, site["base"], site["analyst"])
        page.goto(f"{site['base']}/postings/{posting_id}")
        page.wait_for_load_state("networkidle")
        assert page.locator("#evidence *").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.locator("main img, main iframe, main script").count() == 0
        page.goto(f"{site['base']}/search?q=jane.doe%40acme.example")
        page.wait_for_load_state("networkidle")
        assert page.locator("article.hit").count() == 2 and page.locator("main img, main script").count() == 0
        time.sleep(0.3)
        assert dialogs == []
        assert _Attacker.hits == []
        page.goto(steal)  # the control: this browser can reach the attacker when it is told to
        assert "/steal" in _Attacker.hits
    finally:
        attacker.shutdown()
        attacker.server_close()


def test_api_docs_render_from_local_files_with_a_bearer_scheme(site: dict[str, Any], page: Any) -> None:
    """/docs works on a machine without internet: every request stays on this server, under its CSP."""
    base = site["base"]
    outside: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Any) -> None:
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:  # a CDN would be unreachable here: record and refuse it
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(base + "/docs")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    assert "leaksentinel" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector('[data-path="/api/v1/alerts"]')
    page.click("button.authorize")
    auth = page.wait_for_selector(".auth-container")
    assert auth is not None and "ApiKey" in auth.inner_text() and "Bearer" in auth.inner_text()
    assert outside == [] and errors == [], (outside, errors)
