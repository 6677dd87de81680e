"""Console pages of operators: the fleet dashboard (charts), sources (schedule, pause, run, remove), their
crawl jobs with durations and bytes, dead letters. Counting is in leaksentinel.actions.stats; drawing in
leaksentinel.console.charts (inline SVG: no script, within the CSP)."""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from core.errors import BadInput, NotFound
from leaksentinel.console.charts import (
    ACCENT,
    FAIL,
    OK,
    SEVERITY_COLORS,
    Series,
    bar_chart,
    histogram,
    run_strip,
    sparkline,
)
from leaksentinel.console.pages import (
    MAX_LISTED,
    PageError,
    confirm_page,
    confirmed,
    console_of,
    current,
    form_value,
    posted,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)


def _with_charts(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each source's recent runs as two small charts: postings per run, and which runs failed."""
    for s in sources:
        s["spark_yield"] = sparkline(
            s["yields"], marks=s["failed"], title=f"{s['name']}: postings per run, last {s['runs']} runs"
        )
        s["spark_runs"] = run_strip(
            s["failed"], title=f"{s['name']}: {s['failures']} of the last {s['runs']} runs failed"
        )
    return sources


@router.get("/ops")
def ops_dashboard(request: Request, days: str = "30") -> HTMLResponse:
    """The fleet at a glance: postings and alerts per day, and each source's recent runs and next run."""
    who, session = current(request, "operator", "analyst")
    from leaksentinel.actions.stats import daily_activity, fleet_sources

    db = console_of(request).db
    window = max(7, min(int(days), 90)) if days.isascii() and days.isdigit() and len(days) < 6 else 30
    activity = daily_activity(db, window)
    sources = _with_charts(fleet_sources(db, reveal_proxy=who.role == "operator"))
    chart = bar_chart(
        activity["days"],
        [Series("postings", activity["postings"], ACCENT)],
        title=f"Postings stored per day, last {window} days",
    )
    alerts_chart = bar_chart(
        activity["days"],
        [Series("alerts", activity["alerts"], SEVERITY_COLORS["high"])],
        title=f"Alerts raised per day, last {window} days",
    )
    return render(
        request,
        "ops.html",
        who=who,
        session=session,
        days=window,
        activity=activity,
        postings_chart=chart,
        alerts_chart=alerts_chart,
        sources=sources,
        totals={"postings": sum(activity["postings"]), "alerts": sum(activity["alerts"])},
        unhealthy=[s for s in sources if s["health"] == "unhealthy"],
    )


@router.get("/sources")
def sources_page(request: Request) -> HTMLResponse:
    who, session = current(request, "operator", "analyst")
    from leaksentinel.actions.stats import fleet_sources

    return render(
        request,
        "sources.html",
        who=who,
        session=session,
        sources=_with_charts(fleet_sources(console_of(request).db, reveal_proxy=who.role == "operator")),
        can_edit=who.role == "operator",
    )


@router.get("/sources/{name}/jobs")
def jobs_page(request: Request, name: str) -> HTMLResponse:
    who, session = current(request, "operator", "analyst")
    from leaksentinel.actions.stats import list_jobs

    try:
        data = list_jobs(console_of(request).db, name, reveal_proxy=who.role == "operator")
    except NotFound:
        raise PageError(404, "No such source.") from None
    finished = [j for j in reversed(data["jobs"]) if j["seconds"] is not None]
    durations = bar_chart(
        [f"#{j['id']}" for j in finished],
        [
            Series("ok", [j["seconds"] if j["status"] == "ok" else 0 for j in finished], OK),
            Series("failed", [0 if j["status"] == "ok" else j["seconds"] for j in finished], FAIL),
        ],
        title=f"Duration of the last {len(finished)} runs of {data['source']['name']} (seconds)",
        links=[f"#job-{j['id']}" for j in finished],
        height=160,
    )
    spread = histogram(
        [j["seconds"] for j in finished], title="How long runs take (seconds)", unit="s", height=140
    )
    return render(request, "jobs.html", who=who, session=session, durations=durations, spread=spread, **data)


@router.get("/sources/{name}/remove")
def confirm_remove_source(request: Request, name: str) -> HTMLResponse:
    who, session = current(request, "operator")
    from leaksentinel.actions.sources import find_source

    with console_of(request).db.session() as sess:
        try:
            source = find_source(sess, name)
        except NotFound:
            raise PageError(404, "No such source.") from None
        label, kind, url = source.name, source.kind, source.url
    return confirm_page(
        request,
        who,
        session,
        title=f"Remove source {label}?",
        what=f"The {kind} source {label} ({url}) and its schedule",
        warning="It is no longer crawled. The postings and alerts it found stay.",
        action=f"/sources/{urllib.parse.quote(label, safe='')}/remove",
        back="/sources",
        button="Remove source",
    )


@router.post("/sources/{name}/{action}")
async def source_action(request: Request, name: str, action: str) -> Response:
    who, form = await posted(request, "operator")
    from leaksentinel.actions.sources import find_source, set_source

    db = console_of(request).db

    def change() -> str:
        if action == "remove":
            if not confirmed(form):
                return f"Source {name} was not removed: tick the confirmation box."
            from leaksentinel.actions.sources import remove_source

            remove_source(db, name, actor=who.actor)
            return f"Source {name} removed (its postings stay)."
        if action == "pause":
            set_source(db, name, pause=True, actor=who.actor)
            return f"Source {name} paused."
        if action == "resume":
            set_source(db, name, resume=True, actor=who.actor)
            return f"Source {name} resumed."
        if action == "schedule":
            mode, value = form_value(form, "mode"), form_value(form, "value")
            if mode not in ("every", "cron") or not value or len(value) > 128:
                raise BadInput("give a schedule: every (e.g. 5m) or cron (e.g. */5 * * * *)")
            set_source(
                db,
                name,
                every=value if mode == "every" else None,
                cron=value if mode == "cron" else None,
                actor=who.actor,
            )
            return f"Source {name} now runs {mode} {value}."
        if action == "run":
            with db.session() as sess:
                source_name = find_source(sess, name).name
            celery = getattr(request.app.state, "celery", None)
            if celery is None:
                return (
                    f"No crawl workers in this process: run `leaksentinel crawl {source_name}` "
                    "or start `leaksentinel run`."
                )
            celery.send_task("crawlers.crawl", args=[source_name], queue="crawl")
            return f"Crawl of {source_name} queued."
        raise PageError(404, "Unknown action.")

    try:
        message = await run_in_threadpool(change)
    except NotFound:
        raise PageError(404, "No such source.") from None
    except BadInput as exc:
        message = f"Not changed: {exc}"
    return redirect(request, "/sources", message)


@router.get("/deliveries")
def deliveries_page(request: Request, status: str = "dead") -> HTMLResponse:
    who, session = current(request, "operator")
    from leaksentinel.actions.deliveries import DELIVERY_STATUSES, list_deliveries

    if status and status not in DELIVERY_STATUSES:
        raise PageError(400, f"Unknown delivery status {status!r}.")
    rows = list_deliveries(console_of(request).db, status or None)
    rows.reverse()
    return render(
        request,
        "deliveries.html",
        who=who,
        session=session,
        deliveries=rows[:MAX_LISTED],
        more=max(0, len(rows) - MAX_LISTED),
        status=status,
        statuses=DELIVERY_STATUSES,
    )


@router.post("/deliveries/retry")
async def redeliver(request: Request) -> Response:
    who, form = await posted(request, "operator")
    from leaksentinel.actions.deliveries import retry_deliveries

    ids = [i for i in form.get("id", []) if i.isdigit()][:10_000]
    all_dead = form_value(form, "all_dead") == "1"
    try:
        out = await run_in_threadpool(
            lambda: retry_deliveries(console_of(request).db, ids, all_dead=all_dead, actor=who.actor)
        )
    except NotFound:
        raise PageError(404, "No such delivery.") from None
    except BadInput as exc:
        return redirect(request, "/deliveries?status=dead", f"Nothing redelivered: {exc}")
    return redirect(request, "/deliveries?status=dead", f"{len(out)} deliveries put back in the outbox.")
