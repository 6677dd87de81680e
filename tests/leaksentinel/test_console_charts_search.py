"""Charts and analyst search in the console: the SVG module (valid XML, escaped labels, empty data, no
inline style), the counts behind the charts on SQLite and PostgreSQL (per day, per week by severity, per
source run, per job), the pages that show them under the unchanged CSP, tenant scoping of the counts,
the search landing page (recent postings, saved searches per owner, syntax help, pickers, kind facet,
date histogram) and the posting page (alert links, reposts, selector searches)."""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import Database, open_database
from core.hashing import load_or_create_key
from core.models import Alert, CrawlJob, Posting, SavedQuery, Source, Tenant
from core.settings import load_settings
from leaksentinel.actions.keys import add_key
from leaksentinel.actions.saved_queries import delete_saved_query, list_saved_queries, save_query
from leaksentinel.actions.sources import add_source
from leaksentinel.actions.stats import (
    daily_activity,
    fleet_sources,
    list_jobs,
    tenant_weekly_alerts,
    week_start,
)
from leaksentinel.actions.tenants import add_tenant
from leaksentinel.actions.watches import add_records
from leaksentinel.api.app import SECURITY_HEADERS, create_app
from leaksentinel.company_hash import hash_csv
from leaksentinel.console.charts import (
    MAX_MARKS,
    Series,
    bar_chart,
    fill_days,
    histogram,
    run_strip,
    sparkline,
)
from leaksentinel.scanning import scan_paths

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script> & \"quoted\" 'single' ]]> <!--"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # a Thursday


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))


def _texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter() if el.tag in (SVG + "text", SVG + "title")]


# --------------------------------------------------------------------------- the SVG module


def test_bar_chart_is_valid_svg_with_escaped_labels_and_no_inline_style() -> None:
    svg = bar_chart(
        [HOSTILE, "b", "c"],
        [Series(HOSTILE, [1, 2, 3], "#123456"), Series("two", [3, 0, 1], "red;x:expression(1)")],
        title=HOSTILE,
        links=['/search?q=a&b="c"', None, "/x"],
    )
    root = _parse(svg)
    assert root.tag == SVG + "svg" and root.get("aria-label") == HOSTILE
    assert root.find(SVG + "title") is not None and root.find(SVG + "title").text == HOSTILE  # type: ignore[union-attr]
    assert any(HOSTILE in t for t in _texts(root))  # the label comes back intact once parsed
    assert "<script" not in svg and "style=" not in svg  # escaped; presentation attributes only
    assert not [el for el in root.iter() if el.tag.endswith("script") or el.tag.endswith("foreignObject")]
    fills = {el.get("fill") for el in root.iter(SVG + "rect")}
    assert "#123456" in fills and not any("expression" in (f or "") for f in fills)  # bad colour dropped
    links = [a.get("href") for a in root.iter(SVG + "a")]
    assert links == ['/search?q=a&b="c"', "/x"]
    # Stacked: the tallest bar (total 4 of 4) fills the plot, the others are in proportion.
    heights = [float(r.get("height", 0)) for r in root.iter(SVG + "rect") if r.get("fill") == "#123456"]
    assert heights[0] * 3 == pytest.approx(heights[2], rel=0.02)


def test_empty_and_degenerate_data_still_draw_valid_svg() -> None:
    for svg in (
        bar_chart([], [], title="nothing"),
        bar_chart(["a", "b"], [Series("s", [0, 0])], title="zeros", empty=HOSTILE),
        sparkline([], title="no runs"),
        sparkline([5], title="one run"),
        run_strip([], title="no runs"),
        histogram([], title="no durations"),
        histogram([0, 0], title="zero durations"),
    ):
        root = _parse(svg)
        assert root.tag == SVG + "svg" and "style=" not in svg
    assert "chart-empty" in bar_chart([], [], title="x") and HOSTILE not in str(
        bar_chart(["a"], [Series("s", [0])], title="x", empty=HOSTILE)
    )
    # NaN, infinities, negatives and non-numbers count as 0; nothing becomes "nan" in a coordinate.
    svg = str(sparkline([math.nan, -3, math.inf, 2], title="odd", marks=[False, True, False, False]))
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    assert len(_parse(svg).findall(SVG + "circle")) == 2  # the failed run and the last point


def test_marks_are_bounded_and_histogram_bins_count_every_value() -> None:
    root = _parse(bar_chart([str(i) for i in range(5000)], [Series("s", list(range(5000)))], title="big"))
    assert len(root.findall(SVG + "g")) == MAX_MARKS
    root = _parse(histogram([1, 2, 2, 9, 10], title="d", bins=5, unit="s"))
    titles = [g.find(SVG + "title").text for g in root.findall(SVG + "g")]  # type: ignore[union-attr]
    assert [int(t.rsplit(" ", 1)[1]) for t in titles] == [1, 2, 0, 0, 2]  # type: ignore[union-attr]
    strip = _parse(run_strip([False, True, False], title="runs"))
    assert [r.get("fill") for r in strip.findall(SVG + "rect")] == ["#3c8d4f", "#b42318", "#3c8d4f"]


def test_fill_days_makes_a_gap_free_bounded_axis() -> None:
    labels, counts = fill_days({"2026-11-29": 2, "2026-12-02": 5, "junk": 9, "2026-12-01T10:00": 1})
    assert labels == ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
    assert counts == [2, 0, 1, 5]
    labels, _ = fill_days({"2020-01-01": 1, "2026-12-02": 1}, max_days=10)
    assert len(labels) == 10 and labels[-1] == "2026-12-02"
    assert fill_days({}) == ([], [])


# --------------------------------------------------------------------------- the counts (SQLite and PostgreSQL)


def _db() -> Database:
    return open_database(load_settings())


def _posting(sess: Any, source_id: int, n: int, fetched: datetime) -> Posting:
    row = Posting(
        source_id=source_id, url=f"https://paste.example/{n}", content_hash=f"{n:064x}", fetched=fetched
    )
    sess.add(row)
    sess.flush()
    return row


def test_daily_activity_and_weekly_alerts_count_by_utc_day_per_tenant() -> None:
    db = _db()
    acme = add_tenant(db, "acme", ["acme.example"], [])["id"]
    globex = add_tenant(db, "globex", ["globex.example"], [])["id"]
    add_source(db, "pastes", "pastebin", "https://paste.example/", every="5m")
    with db.session() as sess:
        src = sess.query(Source).filter_by(name="pastes").one().id
        times = [
            NOW,  # today
            NOW.replace(hour=0, minute=0, second=1),  # today, just after midnight UTC
            NOW - timedelta(days=1, hours=11, minutes=59),  # yesterday, 00:01
            NOW - timedelta(days=2),
            NOW - timedelta(days=40),  # outside a 30-day window
        ]
        posts = [_posting(sess, src, i, t) for i, t in enumerate(times)]
        alerts = [  # (tenant, posting, severity, first seen)
            (acme, posts[0], "high", NOW),
            (acme, posts[1], "low", NOW - timedelta(days=3)),  # Monday of this week
            (acme, posts[2], "critical", NOW - timedelta(days=4)),  # Sunday: last week
            (acme, posts[3], "high", NOW - timedelta(days=9)),  # Tuesday, last week
            (globex, posts[0], "critical", NOW),
            (globex, posts[4], "medium", NOW - timedelta(days=40)),
        ]
        for tenant, posting, severity, seen in alerts:
            sess.add(
                Alert(
                    tenant_id=tenant,
                    posting_id=posting.id,
                    severity=severity,
                    first_seen=seen,
                    last_seen=seen,
                )
            )
    out = daily_activity(db, 30, now=NOW)
    assert len(out["days"]) == 30 and out["days"][-1] == "2026-12-03" and out["days"][0] == "2026-11-04"
    per_day = dict(zip(out["days"], out["postings"], strict=True))
    assert per_day["2026-12-03"] == 2 and per_day["2026-12-02"] == 1 and per_day["2026-12-01"] == 1
    assert sum(out["postings"]) == 4  # the 40-day-old posting is outside the window
    alerts_per_day = dict(zip(out["days"], out["alerts"], strict=True))
    assert alerts_per_day["2026-12-03"] == 2 and alerts_per_day["2026-11-30"] == 1 and sum(out["alerts"]) == 5

    weeks = tenant_weekly_alerts(db, acme, 4, now=NOW)
    assert weeks["weeks"] == ["2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]
    assert weeks["severity"]["high"] == [0, 0, 1, 1]
    assert weeks["severity"]["low"] == [0, 0, 0, 1]
    assert weeks["severity"]["critical"] == [0, 0, 1, 0]
    assert weeks["total"] == 4
    other = tenant_weekly_alerts(db, globex, 4, now=NOW)  # never acme's counts
    assert other["total"] == 1 and other["severity"]["critical"] == [0, 0, 0, 1]
    assert week_start(date(2026, 12, 3)) == date(2026, 11, 30)


def test_source_runs_jobs_durations_and_bytes() -> None:
    db = _db()
    add_source(db, "pastes", "pastebin", "https://paste.example/", every="5m")
    add_source(db, "feed", "rss", "https://feed.example/rss", every="1h")
    with db.session() as sess:
        pastes = sess.query(Source).filter_by(name="pastes").one()
        feed_id = sess.query(Source).filter_by(name="feed").one().id
        pastes.last_run = NOW - timedelta(minutes=1)
        start = NOW - timedelta(hours=30)
        for i in range(25):  # 25 runs; only the last 20 are drawn; every 5th failed
            failed = i % 5 == 4
            sess.add(
                CrawlJob(
                    source_id=pastes.id,
                    started_at=start + timedelta(hours=i),
                    finished_at=start + timedelta(hours=i, seconds=10 + i),
                    status="failed" if failed else "ok",
                    stats={} if failed else {"postings": i, "seconds": 2.5, "bytes": 1000 * i},
                )
            )
        sess.add(CrawlJob(source_id=pastes.id, started_at=NOW, status="running", stats={}))
        sess.add(
            CrawlJob(source_id=feed_id, started_at=NOW, finished_at=NOW, status="ok", stats={"postings": 7})
        )
    fleet = {s["name"]: s for s in fleet_sources(db)}
    pastes_view = fleet["pastes"]
    assert pastes_view["runs"] == 20 and pastes_view["failures"] == 4
    assert pastes_view["yields"][-1] == 0 and pastes_view["yields"][-2] == 23  # oldest first; failed: 0
    assert pastes_view["failed"][-1] is True and pastes_view["failed"][0] is False
    assert pastes_view["schedule_text"] == "every 5m" and pastes_view["next_run"]
    assert fleet["feed"]["yields"] == [7] and fleet["feed"]["failures"] == 0
    jobs = list_jobs(db, "pastes")["jobs"]
    assert jobs[0]["status"] == "running" and jobs[0]["seconds"] is None
    ok = next(j for j in jobs if j["status"] == "ok")
    assert ok["seconds"] == 2.5 and ok["bytes"] == 1000 * ok["postings"]  # the crawl's own measures
    failed = next(j for j in jobs if j["status"] == "failed")
    assert failed["bytes"] is None and failed["seconds"] == pytest.approx(10 + 24)  # finish minus start


def test_saved_queries_are_per_owner_and_bounded() -> None:
    from core.errors import BadInput, NotFound

    db = _db()
    mine = save_query(db, "key:1:analyst", "acme dumps", "acme dump", {"source": "pastes", "evil": "x"})
    assert mine["filters"] == {"source": "pastes"}
    save_query(db, "key:1:analyst", "acme dumps", "acme OR globex")  # same name: replaced
    save_query(db, "key:2:analyst", "acme dumps", "theirs")
    assert [(q["name"], q["query"]) for q in list_saved_queries(db, "key:1:analyst")] == [
        ("acme dumps", "acme OR globex")
    ]
    with pytest.raises(NotFound):
        delete_saved_query(db, "key:2:analyst", mine["id"])
    for name, query in (("", "q"), ("n", ""), ("x" * 200, "q"), ("n", "q" * 5000)):
        with pytest.raises(BadInput):
            save_query(db, "key:1:analyst", name, query)
    assert delete_saved_query(db, "key:1:analyst", mine["id"]) == "acme dumps"
    with db.session() as sess:
        assert [r.owner for r in sess.query(SavedQuery)] == ["key:2:analyst"]


# --------------------------------------------------------------------------- the pages


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _login(client: TestClient, key: str) -> str:
    client.cookies.clear()
    page = client.get("/login")
    r = client.post("/login", data={"csrf": _csrf(page.text), "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf(client.get(r.headers["location"]).text)


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, flags=re.S)]


def _bar_titles(svg: ET.Element) -> list[str]:
    return [g.find(SVG + "title").text or "" for g in svg.iter(SVG + "g")]  # type: ignore[union-attr]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    settings = load_settings()
    db = open_database(settings)
    acme = add_tenant(db, "acme", ["acme.example"], [])
    globex = add_tenant(db, "globex", ["globex.example"], [])
    key = load_or_create_key(settings.key_path)
    for tenant, email in (("acme", "jane@acme.example"), ("globex", "bob@globex.example")):
        csv_path = tmp_path / f"{tenant}.csv"
        csv_path.write_text(f"id,email\n{tenant}-1,{email}\n")
        jsonl = tmp_path / f"{tenant}.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in hash_csv(csv_path, key, key_column="id")))
        add_records(db, tenant, jsonl, settings=settings)
    leak = "combo list for sale\njane@acme.example:hunter2\nmore at 203.0.113.7 and acme.example\n"
    (tmp_path / "acme-leak.txt").write_text(leak)
    (tmp_path / "acme-repost.txt").write_text(leak)  # the same leak again elsewhere
    (tmp_path / "globex-leak.txt").write_text("dump\nbob@globex.example:letmein\n")
    chatter = "selling fresh combo lists, ask on the usual channel, escrow accepted\n" * 3
    (tmp_path / "chatter-1.txt").write_text(chatter)  # no finding, no alert: a repost only by its text
    (tmp_path / "chatter-2.txt").write_text(chatter)
    names = ("acme-leak.txt", "acme-repost.txt", "globex-leak.txt", "chatter-1.txt", "chatter-2.txt")
    files = [str(tmp_path / n) for n in names]
    list(scan_paths(settings, files, store=True))
    try:
        from core.search import open_backend, reindex

        backend = open_backend(settings)
        reindex(db, backend)
        backend.close()
    except ImportError:
        pass
    add_source(db, "paste-main", "pastebin", "http://127.0.0.1:9/", every="5m")
    with db.session() as sess:
        src = sess.query(Source).filter_by(name="paste-main").one()
        now = datetime.now(UTC)
        src.last_run = now - timedelta(minutes=2)
        for i, status in enumerate(("ok", "failed", "ok")):
            sess.add(
                CrawlJob(
                    source_id=src.id,
                    started_at=now - timedelta(minutes=30 - i),
                    finished_at=now - timedelta(minutes=30 - i) + timedelta(seconds=14),
                    status=status,
                    stats={"postings": 5 + i, "seconds": 14.0, "bytes": 2048} if status == "ok" else {},
                    error="HTTP 503" if status == "failed" else None,
                )
            )
        acme_id = sess.query(Tenant).filter_by(name="acme").one().id
        acme_alerts = sess.query(Alert).filter_by(tenant_id=acme_id).order_by(Alert.id).all()
        acme_posting = acme_alerts[0].posting_id
        repost = sess.query(Posting).filter(Posting.url.like("%acme-repost%")).one().id
        chatter_ids = [
            sess.query(Posting).filter(Posting.url.like(f"%chatter-{i}%")).one().id for i in (1, 2)
        ]
    return {
        "client": TestClient(create_app(settings)),
        "db": db,
        "admin": acme["api_key"],
        "globex_admin": globex["api_key"],
        "analyst": add_key(db, "analyst")["api_key"],
        "analyst2": add_key(db, "analyst")["api_key"],
        "operator": add_key(db, "operator")["api_key"],
        "acme_alert": acme_alerts[0].id,
        "acme_alerts": len(acme_alerts),
        "posting": acme_posting,
        "repost": repost,
        "chatter": chatter_ids,
    }


def _page_is_clean(r: Any) -> str:
    """Served with the CSP as it is, and nothing in it the CSP would block."""
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert "style-src 'self'" in r.headers["content-security-policy"]
    html: str = r.text
    assert "<script" not in html and " style=" not in html and "<style" not in html
    return html


def test_operator_dashboard_charts_postings_alerts_and_sources(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    _login(client, world["operator"])
    html = _page_is_clean(client.get("/ops"))
    assert 'href="/ops"' in html  # in the menu
    svgs = _svgs(html)
    by_label = {s.get("aria-label", ""): s for s in svgs}
    postings = by_label["Postings stored per day, last 30 days"]
    alerts = by_label["Alerts raised per day, last 30 days"]
    today = datetime.now(UTC).date().isoformat()
    assert f"{today}: postings 5" in _bar_titles(postings)
    assert f"{today}: alerts {world['acme_alerts'] + 1}" in _bar_titles(alerts)
    row = re.search(r'<tr id="fleet-paste-main">.*?</tr>', html, flags=re.S)
    assert row is not None
    assert "postings per run, last 3 runs" in row.group(0) and "1/3 failed" in row.group(0)
    assert "every 5m" in row.group(0) and "UTC" in row.group(0).split('class="next-run"')[1]
    assert "1 of the last 3 runs failed" in html
    assert client.get("/ops?days=7").text.count("Postings stored per day, last 7 days") >= 1
    for hostile in ("abc", "\u00b2", "-5", "9" * 40, "1e9"):  # a bad window is the default, not an error
        r = client.get("/ops", params={"days": hostile})
        assert r.status_code == 200 and "last 30 days" in r.text, hostile
    assert "last 90 days" in client.get("/ops?days=5000").text
    # The sources page shows the same sparklines and the next run; the jobs page durations and bytes.
    sources = _page_is_clean(client.get("/sources"))
    assert "paste-main: postings per run" in sources and 'class="next-run"' in sources
    jobs = _page_is_clean(client.get("/sources/paste-main/jobs"))
    assert ">Duration<" in jobs and ">Bytes<" in jobs
    assert jobs.count('<td class="num duration">14.0 s</td>') == 3  # ok runs: stats; failed: finish - start
    assert jobs.count(">2.0 kB</td>") == 2
    assert any(s.get("aria-label", "").startswith("Duration of the last 3 runs") for s in _svgs(jobs))


def test_tenant_overview_counts_only_its_own_alerts(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    _login(client, world["admin"])
    html = _page_is_clean(client.get("/overview"))
    weekly = next(s for s in _svgs(html) if "per week by severity" in s.get("aria-label", ""))
    assert "Alerts of acme" in weekly.get("aria-label", "")
    monday = (datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())).isoformat()
    this_week = next(t for t in _bar_titles(weekly) if t.startswith(f"week of {monday}"))
    counts = {p.rsplit(" ", 1)[0]: int(p.rsplit(" ", 1)[1]) for p in this_week.split(": ", 1)[1].split(", ")}
    assert sum(counts.values()) == world["acme_alerts"]
    assert f"{world['acme_alerts']:,} alert" in html
    assert client.get("/overview?tenant=globex").status_code == 404  # another tenant is unknown
    assert "last 12 weeks" in _page_is_clean(client.get("/overview", params={"weeks": "\u00b2"}))
    _login(client, world["globex_admin"])
    html = _page_is_clean(client.get("/overview"))
    assert "Alerts of globex" in html and "Alerts of acme" not in html and "1 alert first seen" in html
    _login(client, world["operator"])
    assert "Pick a tenant" in client.get("/overview").text
    assert "Alerts of acme" in _page_is_clean(client.get("/overview?tenant=acme"))


def test_search_landing_has_recent_saved_syntax_and_pickers(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    _login(client, world["analyst"])
    html = _page_is_clean(client.get("/search"))
    assert 'id="recent-postings"' in html and f'href="/postings/{world["posting"]}"' in html
    assert 'id="syntax-help"' in html and "acme OR contoso" in html
    assert 'id="saved-queries"' in html and "None yet" in html
    assert '<select name="source"' in html and '<option value="paste-main">' in html
    assert 'type="date" name="since"' in html and 'type="date" name="until"' in html


def test_search_results_show_kind_facet_and_date_histogram_and_save(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    csrf = _login(client, world["analyst"])
    html = _page_is_clean(client.get("/search", params={"q": "jane@acme.example"}))
    assert html.count('class="hit"') == 2  # the leak and its repost
    kinds = re.search(r'<ul id="facet-kinds">(.*?)</ul>', html, flags=re.S)
    assert kinds is not None and re.search(
        r'<span class="kind">record</span> <span class="count">2</span>', kinds.group(1)
    )
    hist = next(s for s in _svgs(html) if s.get("aria-label", "").startswith("Matching postings per day"))
    today = datetime.now(UTC).date().isoformat()
    assert _bar_titles(hist) == [f"{today}: postings 2"]
    link = next(a.get("href") for a in hist.iter(SVG + "a"))
    assert link is not None and urllib.parse.parse_qs(urllib.parse.urlsplit(link).query) == {
        "since": [today],
        "until": [today],
        "q": ["jane@acme.example"],
    }
    # Save it with its filters; only this analyst lists it; another cannot delete it.
    r = client.post(
        "/search/saved",
        data={"csrf": csrf, "name": "jane <b>", "q": "jane@acme.example", "source": "local"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    landing = _page_is_clean(client.get("/search"))
    assert "jane &lt;b&gt;" in landing and "<b>" not in landing.split('id="saved-queries"')[1]
    assert "source: local" in landing
    assert client.post("/search/saved", data={"name": "x", "q": "y"}).status_code == 403  # no CSRF token
    with world["db"].session() as sess:
        saved_id = sess.query(SavedQuery).one().id
    csrf2 = _login(client, world["analyst2"])
    assert "jane &lt;b&gt;" not in client.get("/search").text
    r = client.post(f"/search/saved/{saved_id}/delete", data={"csrf": csrf2})
    assert r.status_code == 404
    csrf = _login(client, world["analyst"])
    r = client.post(f"/search/saved/{saved_id}/delete", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert "None yet" in client.get("/search").text


def test_posting_page_links_alerts_reposts_and_selectors(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    _login(client, world["analyst"])
    html = _page_is_clean(client.get(f"/postings/{world['posting']}"))
    alerts = re.search(r'<table class="list compact" id="posting-alerts">.*?</table>', html, flags=re.S)
    assert alerts is not None and f'<a href="/alerts/{world["acme_alert"]}">' in alerts.group(0)
    assert "globex" not in alerts.group(0)  # only the alerts on this leak
    reposts = re.search(r'id="posting-reposts">.*?</table>', html, flags=re.S)
    assert reposts is not None and f'href="/postings/{world["repost"]}"' in reposts.group(0)
    assert "same text" in reposts.group(0)
    assert 'href="/search?q=jane%40acme.example"' in html and 'href="/search?q=acme.example"' in html
    # The repost lists the first posting back, and its alert (the repost is a sighting of it).
    back = client.get(f"/postings/{world['repost']}").text
    assert f'href="/postings/{world["posting"]}"' in back and f'href="/alerts/{world["acme_alert"]}"' in back
    # Reposts without any alert come from the near-duplicate index.
    one, two = world["chatter"]
    chatter = client.get(f"/postings/{one}").text
    assert f'href="/postings/{two}"' in chatter and "No tenant's alert" in chatter
    # Tenant users have no posting pages (their alert page shows their evidence).
    _login(client, world["admin"])
    assert client.get(f"/postings/{world['posting']}").status_code == 403


def test_docs_show_the_new_pages_with_screenshots_that_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    for doc, shots in (
        ("docs/operators.md", ["ops-dashboard.png", "source-jobs.png"]),
        ("docs/analysts.md", ["search-landing.png", "search-results.png"]),
    ):
        text = (root / doc).read_text()
        for shot in shots:
            assert f"(screenshots/{shot})" in text, (doc, shot)
            assert (root / "docs" / "screenshots" / shot).stat().st_size > 10_000
