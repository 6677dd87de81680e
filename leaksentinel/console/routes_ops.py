"""Console pages of operators: sources (schedule, pause, run, remove), their crawl jobs, dead letters."""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from core.db import Database
from core.errors import BadInput, NotFound
from core.models import CrawlJob
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


def _jobs(db: Database, name: str, *, reveal_proxy: bool) -> dict[str, Any]:
    from leaksentinel.actions.sources import find_source, source_to_dict

    with db.session() as sess:
        try:
            source = find_source(sess, name)
        except NotFound:
            raise PageError(404, "No such source.") from None
        jobs = list(
            sess.scalars(
                select(CrawlJob)
                .where(CrawlJob.source_id == source.id)
                .order_by(CrawlJob.id.desc())
                .limit(200)
            )
        )
        return {
            "source": source_to_dict(source, reveal_proxy=reveal_proxy),
            "jobs": [
                {
                    "id": j.id,
                    "started_at": j.started_at,
                    "finished_at": j.finished_at,
                    "status": j.status,
                    "stats": j.stats or {},
                    "error": j.error,
                }
                for j in jobs
            ],
        }


@router.get("/sources")
def sources_page(request: Request) -> HTMLResponse:
    who, session = current(request, "operator", "analyst")
    from leaksentinel.actions.sources import list_sources

    return render(
        request,
        "sources.html",
        who=who,
        session=session,
        sources=list_sources(console_of(request).db, reveal_proxy=who.role == "operator"),
        can_edit=who.role == "operator",
    )


@router.get("/sources/{name}/jobs")
def jobs_page(request: Request, name: str) -> HTMLResponse:
    who, session = current(request, "operator", "analyst")
    return render(
        request,
        "jobs.html",
        who=who,
        session=session,
        **_jobs(console_of(request).db, name, reveal_proxy=who.role == "operator"),
    )


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
