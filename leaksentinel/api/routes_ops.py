"""Operator and analyst endpoints: sources, crawl jobs, deliveries, postings, scanning, the tip line, metrics."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from core.db import Database
from core.models import CrawlJob, Posting, Source
from core.posting import PostingDraft
from core.settings import Settings
from leaksentinel.actions.deliveries import list_deliveries, retry_deliveries
from leaksentinel.actions.sources import add_source, find_source, list_sources, set_source
from leaksentinel.api.auth import authenticate_key
from leaksentinel.api.deps import CurrentPrincipal as Who
from leaksentinel.api.deps import PickedTenant
from leaksentinel.api.metrics import render_metrics

router = APIRouter()
MAX_SCAN_CHARS = 5_000_000


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class Strict(BaseModel):
    """Request bodies refuse fields they do not know (a misspelt option is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")


class SourceIn(Strict):
    name: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    url: str = Field(max_length=2048)
    every: str | None = None
    cron: str | None = Field(default=None, max_length=128)
    render: bool = False
    proxy: str | None = Field(default=None, max_length=2048)
    options: dict[str, Any] = Field(default_factory=dict)


class SourcePatch(Strict):
    every: str | None = None
    cron: str | None = Field(default=None, max_length=128)
    pause: bool = False
    resume: bool = False
    url: str | None = Field(default=None, max_length=2048)


@router.get("/api/v1/sources")
def sources(who: Who, request: Request) -> list[dict[str, Any]]:
    who.require("operator", "analyst")
    return list_sources(_db(request), reveal_proxy=who.role == "operator")


@router.post("/api/v1/sources", status_code=201)
def create_source(body: SourceIn, who: Who, request: Request) -> dict[str, Any]:
    who.require("operator")
    allowed = {
        k: v
        for k, v in body.options.items()
        if k in {"item", "link", "content", "next", "robots", "page_budget", "delay", "max_pages", "limit"}
    }
    return add_source(
        _db(request),
        body.name,
        body.kind,
        body.url,
        every=body.every,
        cron=body.cron,
        render=body.render,
        proxy=body.proxy,
        options=allowed,
        actor=who.actor,
    )


@router.patch("/api/v1/sources/{name}")
def update_source(name: str, body: SourcePatch, who: Who, request: Request) -> dict[str, Any]:
    who.require("operator")
    return set_source(
        _db(request),
        name,
        every=body.every,
        cron=body.cron,
        pause=body.pause,
        resume=body.resume,
        url=body.url,
        actor=who.actor,
    )


@router.delete("/api/v1/sources/{name}")
def delete_source(name: str, who: Who, request: Request) -> dict[str, Any]:
    """Stop crawling a source (its postings and alerts stay); recorded in the audit log."""
    who.require("operator")
    from leaksentinel.actions.sources import remove_source

    return remove_source(_db(request), name, actor=who.actor)


@router.post("/api/v1/sources/{name}/crawl", status_code=202)
def crawl_now(name: str, who: Who, request: Request) -> dict[str, Any]:
    who.require("operator")
    with _db(request).session() as sess:
        source = find_source(sess, name)
        source_name = source.name
    celery = getattr(request.app.state, "celery", None)
    if celery is None:
        raise HTTPException(503, "no crawl workers in this process; run `leaksentinel crawl NAME`")
    celery.send_task("crawlers.crawl", args=[source_name], queue="crawl")
    return {"source": source_name, "queued": True}


@router.get("/api/v1/sources/{name}/jobs")
def crawl_jobs(name: str, who: Who, request: Request, limit: int = 50) -> list[dict[str, Any]]:
    who.require("operator", "analyst")
    with _db(request).session() as sess:
        source = find_source(sess, name)
        rows = sess.scalars(
            select(CrawlJob)
            .where(CrawlJob.source_id == source.id)
            .order_by(CrawlJob.id.desc())
            .limit(min(max(limit, 1), 500))
        )
        return [
            {
                "id": j.id,
                "started_at": j.started_at.isoformat(),
                "finished_at": j.finished_at.isoformat() if j.finished_at else None,
                "status": j.status,
                "stats": j.stats,
                "error": j.error,
            }
            for j in rows
        ]


@router.get("/api/v1/deliveries")
def deliveries(who: Who, request: Request, status: str | None = None) -> list[dict[str, Any]]:
    who.require("operator")
    return list_deliveries(_db(request), status)


class RetryIn(Strict):
    ids: list[int] = Field(default_factory=list, max_length=10_000)
    all_dead: bool = False


@router.post("/api/v1/deliveries/retry")
def retry(body: RetryIn, who: Who, request: Request) -> dict[str, Any]:
    who.require("operator")
    out = retry_deliveries(_db(request), [str(i) for i in body.ids], all_dead=body.all_dead, actor=who.actor)
    return {"retried": len(out), "deliveries": [d["id"] for d in out]}


@router.get("/api/v1/postings/{posting_id}")
def posting(posting_id: int, who: Who, request: Request) -> dict[str, Any]:
    who.require("operator", "analyst")
    with _db(request).session() as sess:
        row = sess.get(Posting, posting_id)
        if row is None:
            raise HTTPException(404, "not found")
        source = sess.get(Source, row.source_id)
        return {
            "id": row.id,
            "url": row.url,
            "source": source.name if source else None,
            "title": row.title,
            "author": row.author,
            "published": row.published.isoformat() if row.published else None,
            "fetched": row.fetched.isoformat(),
            "size": row.size,
            "content_hash": row.content_hash,
            "evidence_sha256": row.evidence_sha256,
            "text": row.text,
        }


@router.post("/api/v1/scan")
def scan(
    who: Who, request: Request, body: Annotated[str, Body(media_type="text/plain")]
) -> list[dict[str, Any]]:
    """Detection on a text, stored nowhere; tenant keys see only their own tenant's findings."""
    from core.hashing import load_or_create_key
    from pipelines.detect import detect_draft
    from pipelines.detection.engine import Detector
    from pipelines.fingerprint import FingerprintPipeline
    from pipelines.normalize import NormalizePipeline

    settings = _settings(request)
    text = body if isinstance(body, str) else str(body)
    if len(text) > MAX_SCAN_CHARS:
        raise HTTPException(413, "text too large")
    draft = PostingDraft(source="api", url="api:scan", raw=text.encode("utf-8"))
    NormalizePipeline(settings).apply(draft)
    FingerprintPipeline().apply(draft)
    detect_draft(
        Detector.from_database(_db(request), load_or_create_key(settings.key_path), settings.index_dir), draft
    )
    return [
        f.as_json("api:scan") for f in draft.findings if not who.is_tenant or f.tenant_id == who.tenant_id
    ]


@router.get("/api/v1/postings/{posting_id}/cluster")
def cluster(posting_id: int, who: Who, request: Request) -> list[dict[str, Any]]:
    """The posting's near-duplicate cluster: the reposts of the same text, oldest first."""
    who.require("operator", "analyst")
    from pipelines.neardup import near_duplicates

    with _db(request).session() as sess:
        row = sess.get(Posting, posting_id)
        if row is None:
            raise HTTPException(404, "not found")
        ids = near_duplicates(sess, row.simhash, row.content_hash)
        out = []
        for pid in ids:
            p = sess.get(Posting, pid)
            if p is not None:
                source = sess.get(Source, p.source_id)
                out.append(
                    {
                        "id": p.id,
                        "url": p.url,
                        "source": source.name if source else None,
                        "fetched": p.fetched.isoformat(),
                        "exact": p.content_hash == row.content_hash,
                    }
                )
        return out


@router.get("/api/v1/audit")
def audit(who: Who, tenant: PickedTenant, request: Request, limit: int = 100) -> list[dict[str, Any]]:
    """Every change, with who made it (operators see all, or one tenant's; a tenant admin its tenant's)."""
    who.require("operator", "tenant_admin")
    from leaksentinel.actions.audit import list_audit

    return list_audit(_db(request), limit=limit, tenant_id=tenant.id if tenant else None)


@router.get("/api/v1/search")
def search(
    who: Who,
    request: Request,
    q: str,
    source: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
    kind: str | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """Analyst search: words, phrases, Chinese, boolean operators, or a selector; filters by source, kind of
    source, dates and tenant relevance; facets by source and day (all matches) and by kind of finding
    (this page); cursor paging."""
    who.require("operator", "analyst")
    from core.search import SearchQuery, open_backend
    from leaksentinel.cli.cmd_search import finding_kind_facet, parse_when, tenant_posting_ids

    query = SearchQuery(
        text=q,
        source=source,
        since=parse_when(since),
        until=parse_when(until, end_of_day=True),
        limit=limit,
        after=cursor,
        source_kind=kind,
        ids=tenant_posting_ids(_db(request), tenant) if tenant else None,
    )
    backend = open_backend(_settings(request))
    try:
        page = backend.search(query)
    finally:
        backend.close()
    facets = dict(page.facets)
    facets["finding_kind"] = finding_kind_facet(_db(request), [h.id for h in page.hits])
    return {
        "total": page.total,
        "next_cursor": page.next_cursor,
        "facets": facets,
        "hits": [h.to_json() for h in page.hits],
    }


class TipIn(Strict):
    url: str | None = Field(default=None, max_length=2048)
    text: str | None = Field(default=None, max_length=1_000_000)
    note: str | None = Field(default=None, max_length=500)


@router.post("/api/v1/tips", status_code=202)
def tip(body: TipIn, request: Request) -> dict[str, Any]:
    """The public tip line: no key needed, rate-limited per client address."""
    client = request.client.host if request.client else "unknown"
    if not request.app.state.tip_limiter.allow(f"tip:{client}"):
        raise HTTPException(429, "too many reports; try again later", headers={"Retry-After": "60"})
    if (body.url is None) == (body.text is None):
        raise HTTPException(422, "give a url or a text")
    from leaksentinel.tips import report_text

    settings = _settings(request)
    if body.text is not None:
        out = report_text(settings, body.text, note=body.note)
        return {"accepted": True, "url": out["url"]}
    from core.netguard import check_url

    target = check_url(body.url or "", allow_private=settings.private_targets_allowed)
    celery = getattr(request.app.state, "celery", None)
    if celery is None:
        raise HTTPException(503, "no crawl workers in this process")
    celery.send_task("crawlers.crawl_tip", args=[target, body.note or ""], queue="crawl")
    return {"accepted": True, "url": target}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text; needs an operator key unless the settings make it public."""
    settings = _settings(request)
    if not settings.metrics_public:
        auth = request.headers.get("authorization", "")
        who = authenticate_key(request, auth[7:] if auth.lower().startswith("bearer ") else None)
        if who.role != "operator":
            raise HTTPException(403, "metrics need an operator key")
    depths = getattr(request.app.state, "queue_depths", None)
    return PlainTextResponse(
        render_metrics(_db(request), depths() if depths else None), media_type="text/plain; version=0.0.4"
    )
