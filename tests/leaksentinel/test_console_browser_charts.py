"""The charts and the search landing page in a real browser (Debian's Chromium through Playwright, uvicorn
on loopback), under the console's Content-Security-Policy as served: the inline SVG charts draw, and the
browser reports no CSP violation and no error. Screenshots go where `make screenshots` points
(``LEAKSENTINEL_SCREENSHOT_DIR=docs/screenshots``), else to a temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from console_server import serve

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's /usr/bin/chromium is not installed")
pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

_SHOTS = os.environ.get("LEAKSENTINEL_SCREENSHOT_DIR")
SCREENSHOTS = Path(_SHOTS) if _SHOTS else Path(tempfile.gettempdir()) / "leaksentinel-screenshots"

SOURCES = [  # name, kind, every, postings per run, every n-th run fails
    ("pastebin-main", "pastebin", "2m", 9, 0),
    ("forum-breach", "phpbb", "15m", 4, 7),
    ("tg-leaks", "telegram", "10m", 6, 0),
    ("darkfeed", "rss", "1h", 3, 2),
]
LEAK = "Acme Corp customer export, fresh from the CRM.\nemail,name\njane.doe@acme.example,Jane Doe\n"
TITLES = ["combo list", "[SELLING] VPN access", "db dump", "weekly roundup", "fresh mail:pass", "logs"]


def _build(tmp_path: Path) -> dict[str, Any]:
    """A month of a small fleet: postings and alerts every day, twenty runs per source, one real leak."""
    from core.db import open_database
    from core.hashing import load_or_create_key
    from core.models import Alert, CrawlJob, Posting, Source
    from core.settings import load_settings
    from leaksentinel.actions.keys import add_key
    from leaksentinel.actions.sources import add_source
    from leaksentinel.actions.tenants import add_tenant
    from leaksentinel.actions.watches import add_records
    from leaksentinel.company_hash import hash_csv
    from leaksentinel.scanning import scan_paths

    settings = load_settings()
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text("id,email\ncust-1,jane.doe@acme.example\n")
    records = tmp_path / "customers.jsonl"
    rows = hash_csv(csv_path, load_or_create_key(settings.key_path), key_column="id")
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    add_records(db, "acme", records, settings=settings)
    (tmp_path / "acme-export.txt").write_text(LEAK)
    list(scan_paths(settings, [str(tmp_path / "acme-export.txt")], store=True))
    now = datetime.now(UTC).replace(microsecond=0)
    for name, kind, every, *_ in SOURCES:
        add_source(db, name, kind, f"https://{name}.example/", every=every)
    with db.session() as sess:
        n = 0
        for s_i, (name, _kind, _every, per_run, fail_every) in enumerate(SOURCES):
            src = sess.query(Source).filter_by(name=name).one()
            src.last_run = now - timedelta(minutes=1 + s_i)
            src.last_status = "ok"
            src.health = "unhealthy" if name == "darkfeed" else "healthy"
            for run in range(20):
                start = now - timedelta(minutes=15 * (20 - run))
                failed = fail_every and run % fail_every == fail_every - 1
                sess.add(
                    CrawlJob(
                        source_id=src.id,
                        started_at=start,
                        finished_at=start + timedelta(seconds=8 + (run * 7) % 30),
                        status="failed" if failed else "ok",
                        stats={}
                        if failed
                        else {
                            "postings": per_run + (run * 5) % 7,
                            "seconds": 8 + (run * 7) % 30,
                            "bytes": 40_000 + 997 * run,
                        },
                        error="HTTP 503 Service Unavailable" if failed else None,
                    )
                )
        source_ids = {name: sess.query(Source).filter_by(name=name).one().id for name, *_ in SOURCES}
        for day in range(30):  # day by day, the sources interleaved, as a fleet stores them
            for s_i, (name, *_rest) in enumerate(SOURCES):
                src_id = source_ids[name]
                for k in range((day * 7 + s_i * 3) % 5 + day // 8):
                    n += 1
                    when = now - timedelta(days=29 - day, hours=k)
                    post = Posting(
                        source_id=src_id,
                        url=f"https://{name}.example/p/{n}",
                        title=f"{TITLES[n % len(TITLES)]} #{n}",
                        published=when,
                        fetched=when,
                        content_hash=f"{n:064x}",
                        size=400 + n,
                        text=f"{TITLES[n % len(TITLES)]}: acme staff mail and passwords, batch {n}\n",
                    )
                    sess.add(post)
                    if n % 5 == 0:
                        sess.flush()
                        sev = ("low", "medium", "high", "critical")[n % 4]
                        sess.add(
                            Alert(
                                tenant_id=acme["id"],
                                posting_id=post.id,
                                severity=sev,
                                kinds=["keyword"],
                                first_seen=when,
                                last_seen=when,
                            )
                        )
    from core.search import open_backend, reindex

    backend = open_backend(settings)
    reindex(db, backend)
    backend.close()
    return {
        "settings": settings,
        "db": db,
        "admin": acme["api_key"],
        "analyst": add_key(db, "analyst")["api_key"],
        "operator": add_key(db, "operator")["api_key"],
    }


@contextlib.contextmanager
def _serve(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from leaksentinel.api.app import create_app

    world = _build(tmp_path)
    with serve(create_app(world["settings"])) as base:
        yield {**world, "base": base}


def _login(page: Any, base: str, key: str) -> None:
    page.context.clear_cookies()
    page.goto(base + "/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url


def _shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_dashboard_search_landing_and_overview_draw_under_the_csp(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from core.settings import CHROMIUM_ARGS

    problems: list[str] = []
    with _serve(tmp_path) as site, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(10_000)
            # A CSP violation is reported on the console ("Refused to apply inline style...") as an error.
            page.on(
                "console",
                lambda msg: (
                    problems.append(msg.text)
                    if msg.type in ("error", "warning") or "Content Security Policy" in msg.text
                    else None
                ),
            )
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

            _login(page, site["base"], site["operator"])
            response = page.goto(site["base"] + "/ops")
            assert response is not None
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
            page.wait_for_load_state("networkidle")
            chart = page.locator("#chart-postings svg")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100
            assert page.locator("#chart-postings svg g.bar").count() == 30
            assert page.locator("#chart-alerts svg rect[fill='#c2410c']").count() >= 10
            assert page.locator("table.fleet tbody tr").count() == len(SOURCES)
            darkfeed = page.locator("#fleet-darkfeed")
            assert "10/20 failed" in darkfeed.inner_text()
            assert darkfeed.locator("svg.chart-strip rect[fill='#b42318']").count() == 10
            assert "UTC" in darkfeed.locator(".next-run").inner_text()
            # The SVG's own styling is attributes: the bars are painted in their colour, not black.
            fill = page.eval_on_selector("#chart-postings svg g.bar rect", "el => getComputedStyle(el).fill")
            assert fill == "rgb(31, 95, 191)", fill
            _shot(page, "ops-dashboard")
            page.click("#fleet-darkfeed a")
            page.wait_for_url("**/sources/darkfeed/jobs")
            assert page.locator("#chart-durations svg g.bar").count() == 20
            assert page.locator("td.duration").first.inner_text().endswith("s")
            _shot(page, "source-jobs", full_page=False)

            _login(page, site["base"], site["analyst"])
            assert page.url.endswith("/search")
            page.wait_for_load_state("networkidle")
            assert page.locator("#recent-postings tbody tr").count() == 15
            assert page.locator("#syntax-help").is_visible()
            assert page.locator("select[name=source] option").count() >= len(SOURCES) + 1
            assert page.get_attribute("input[name=since]", "type") == "date"
            _shot(page, "search-landing")
            page.fill("input[name=q]", "acme")
            page.select_option("select[name=source]", "pastebin-main")
            page.click("form.search button")
            page.wait_for_url("**/search?q=acme**")
            assert page.locator("#chart-days svg g.bar").count() >= 20
            page.fill("input[name=name]", "acme on pastebin")
            page.click("form.save-query button")
            page.wait_for_load_state()
            assert "Saved as" in page.inner_text(".flash")
            assert "acme on pastebin" in page.inner_text("#saved-queries")
            _shot(page, "search-results", full_page=False)
            page.click("#chart-days svg a >> nth=-1")  # a day's bar narrows the search to that day
            page.wait_for_url("**since=**")
            assert page.locator("article.hit").count() >= 1

            _login(page, site["base"], site["admin"])  # a security team's alerts per week by severity
            page.goto(site["base"] + "/overview")
            weekly = page.locator("#chart-weekly svg")
            assert "Alerts of acme per week by severity" in (weekly.get_attribute("aria-label") or "")
            assert weekly.locator("rect[fill='#a1122a']").count() >= 3  # critical, stacked on the others
            _shot(page, "tenant-overview")
        finally:
            browser.close()
    assert problems == [], problems
