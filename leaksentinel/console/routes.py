"""The web console: server-rendered pages for security teams, analysts and operators.

Why server-rendered with autoescaping: everything crawled is hostile, so every value reaches the page
through Jinja2's autoescape, crawled text is shown inside ``<pre>`` as text, and links found in postings
are shown as text; the only markup built in Python is the search highlight, which escapes the snippet
first and adds nothing but ``<mark>``. No inline script or style (the CSP forbids them): CSS is a static
file and the pages need no JavaScript. The pages call the same actions, and apply the same role and
tenant rules, as the JSON API (another tenant's object is a 404 page).
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import base64
import contextlib
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from core.alert_view import alert_to_dict
from core.db import Database
from core.errors import BadInput, NotFound
from core.models import ALERT_STATUSES, SEVERITIES, Alert, CrawlJob, Posting, Sighting, Source, Tenant
from core.settings import Settings
from leaksentinel.api.auth import (
    Principal,
    check_auth_failures,
    principal_from_key,
    record_auth_failure,
)
from leaksentinel.api.deps import PickedTenant, ScopedAlert, TenantRef
from leaksentinel.api.limits import RateLimiter
from leaksentinel.console.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleSigner,
    Session,
    end_session,
    load_or_create_secret,
    principal_from_key_id,
    session_ended,
    start_session,
)

__all__ = ["EVIDENCE_CHARS", "highlight", "mount_console"]

HERE = Path(__file__).resolve().parent
#: Evidence and posting text shown on a page is cut here (postings may be 50 MB).
EVIDENCE_CHARS = 64_000
#: Selector pivots are looked for in this much of a posting.
PIVOT_SCAN_CHARS = 1_000_000
MAX_PIVOTS = 100
#: Console forms are small; a larger body is refused before it is parsed.
FORM_MAX_BYTES = 64 * 1024
MAX_LISTED = 500
FLASH_COOKIE = "ls_flash"
TRIAGE = {"ack": "acked", "resolve": "resolved", "false-positive": "false_positive", "reopen": "new"}
HOME_PAGE = {
    "tenant_admin": "/alerts",
    "tenant_viewer": "/alerts",
    "analyst": "/search",
    "operator": "/sources",
}
TENANT_ROLES = ("tenant_admin", "tenant_viewer")
NAV: dict[str, list[tuple[str, str]]] = {
    "tenant_admin": [("/alerts", "Alerts"), ("/watches", "Watches"), ("/subscriptions", "Subscriptions")],
    "tenant_viewer": [("/alerts", "Alerts"), ("/watches", "Watches"), ("/subscriptions", "Subscriptions")],
    "analyst": [("/search", "Search"), ("/alerts", "Alerts"), ("/sources", "Sources")],
    "operator": [
        ("/sources", "Sources"),
        ("/deliveries?status=dead", "Dead letters"),
        ("/alerts", "Alerts"),
        ("/watches", "Watches"),
        ("/subscriptions", "Subscriptions"),
        ("/search", "Search"),
    ],
}
PIVOT_KINDS = ("email", "domain", "ipv4", "ipv6")


class PageError(Exception):
    """An error shown as an HTML page (the API's JSON errors stay as they are)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


# --------------------------------------------------------------------------- rendering


def highlight(snippet: str) -> Markup:
    """A search snippet as HTML: all of it escaped, then only the ``[[``/``]]`` markers become <mark>."""
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"\[\[(.*?)\]\]", snippet, flags=re.S):
        out.append(str(escape(snippet[pos : m.start()])))
        out.append(f"<mark>{escape(m.group(1))}</mark>")
        pos = m.end()
    out.append(str(escape(snippet[pos:])))
    return Markup("".join(out))


def _when(value: Any) -> str:
    """Dates as people read them: ``2024-06-01 12:34 UTC`` (empty for none)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") + " UTC"
    return str(value)


def _schedule_parts(schedule: str | None) -> tuple[str, str]:
    """A stored schedule (``every 300`` / ``cron */5 * * * *``) as the form shows it: (``every``, ``5m``)."""
    kind, _, value = (schedule or "").partition(" ")
    if kind == "cron":
        return "cron", value
    if kind == "every" and value.isdigit():
        seconds = int(value)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return "every", f"{seconds // size}{unit}"
        return "every", f"{seconds}s"
    return "every", ""


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["highlight"] = highlight
    env.filters["when"] = _when
    env.filters["schedule_parts"] = _schedule_parts
    return env


class Console:
    """What the pages share: templates, the signer, the database and settings."""

    def __init__(self, app: FastAPI) -> None:
        self.settings: Settings = app.state.settings
        self.db: Database = app.state.db
        self.env = _environment()
        self.signer = ConsoleSigner(load_or_create_secret(self.settings.home))
        self.login_limiter = RateLimiter(0.5, 10)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _secure(request: Request) -> bool:
    """Secure cookies when served over HTTPS, or when the public URL says a TLS proxy is in front."""
    return request.url.scheme == "https" or _console(request).settings.console_url.startswith("https:")


def render(
    request: Request,
    template: str,
    *,
    who: Principal | None = None,
    session: Session | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the signed-in principal, its CSRF token, its menu and any flash message."""
    console = _console(request)
    flash = _read_flash(request)
    html = console.env.get_template(template).render(
        who=who,
        csrf=console.signer.csrf_token(session.token) if session else "",
        nav=NAV.get(who.role, []) if who else [],
        path=request.url.path,
        flash=flash,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _read_flash(request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode("utf-8")[:500]
    except (ValueError, UnicodeDecodeError):
        return None


def redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    """See-other to a console page (POST, redirect, GET), carrying a one-time message in a cookie."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            base64.urlsafe_b64encode(flash[:500].encode()).decode(),
            max_age=60,
            path="/",
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


# --------------------------------------------------------------------------- who is asking


def session_principal(request: Request) -> Principal:
    """The principal of the session cookie (what ``api.deps.current_principal`` asks on console pages),
    or LoginRequired: no cookie, a forged or expired one, a logged-out session, a revoked key."""
    console = _console(request)
    session = console.signer.verify(request.cookies.get(SESSION_COOKIE))
    if session is None or session_ended(console.db, session):
        raise LoginRequired()
    who = principal_from_key_id(console.db, session.key_id)
    if who is None:  # the key was revoked since login: its sessions end with it
        raise LoginRequired()
    request.state.session = session
    request.state.principal = who
    return who


def current(request: Request, *roles: str) -> tuple[Principal, Session]:
    """The signed-in principal (or LoginRequired), refused with a 403 page unless it has one of `roles`."""
    who = getattr(request.state, "principal", None)
    session = getattr(request.state, "session", None)
    if not isinstance(who, Principal) or not isinstance(session, Session):
        who = session_principal(request)
        session = request.state.session
    if roles and who.role not in roles:
        raise PageError(403, f"This page needs one of the roles: {', '.join(roles)}.")
    return who, session


async def form_of(request: Request) -> dict[str, list[str]]:
    """The urlencoded form of a POST (bounded; parsed here so no multipart library is needed)."""
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise PageError(413, "That form is too large.")
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000)


async def posted(request: Request, *roles: str) -> tuple[Principal, dict[str, list[str]]]:
    """A state-changing request: a session, a valid CSRF token, and one of `roles` — checked in that order."""
    who, session = current(request)
    form = await form_of(request)
    if not _console(request).signer.check_csrf(session.token, _one(form, "csrf")):
        raise PageError(403, "The form's security token is missing or stale. Reload the page and try again.")
    if roles and who.role not in roles:
        raise PageError(403, f"This needs one of the roles: {', '.join(roles)}.")
    return who, form


def _one(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0].strip() if values else default


def _number(value: str, what: str) -> int:
    """An id from a URL: anything but a plain number is a 404 page, not a validation error."""
    if not value.isdigit() or len(value) > 18:
        raise PageError(404, f"No such {what}.")
    return int(value)


def _picked(who: Principal, scope: TenantRef | None) -> str:
    """The tenant shown as picked in an operator's picker ('' for tenant users, who have no picker)."""
    return scope.name if scope is not None and not who.is_tenant else ""


def _tenant_query(who: Principal, scope: TenantRef | None) -> str:
    """``?tenant=NAME`` for an operator's forms and links (the scope travels in the URL, as GETs have it)."""
    if who.is_tenant or scope is None:
        return ""
    return "?" + urllib.parse.urlencode({"tenant": scope.name})


def _tenant_names(db: Database) -> list[str]:
    with db.session() as sess:
        return list(sess.scalars(select(Tenant.name).order_by(Tenant.name)))


# --------------------------------------------------------------------------- data for pages


def _alert_detail(db: Database, alert_id: int) -> dict[str, Any]:
    """An alert's page data; the caller's scope was checked by the ScopedAlert dependency."""
    with db.session() as sess:
        alert = sess.get(Alert, alert_id)
        if alert is None:
            raise PageError(404, "No such alert.")
        view = alert_to_dict(sess, alert, with_findings=True)
        sightings: dict[str, dict[str, Any]] = {}
        for s in sess.scalars(
            select(Sighting).where(Sighting.alert_id == alert.id).order_by(Sighting.seen_at)
        ):
            row = sightings.setdefault(
                s.url, {"url": s.url, "first": s.seen_at, "last": s.seen_at, "times": 0}
            )
            row["last"] = s.seen_at
            row["times"] += 1
        posting = alert.posting
        source = sess.get(Source, posting.source_id) if posting is not None else None
        evidence = _evidence(posting) if posting is not None else None
        if evidence is not None:
            evidence["source"] = source.name if source else ""
        return {"alert": view, "sightings": list(sightings.values()), "evidence": evidence}


def _evidence(posting: Posting) -> dict[str, Any]:
    text = posting.text or ""
    return {
        "id": posting.id,
        "url": posting.url,
        "title": posting.title,
        "author": posting.author,
        "published": posting.published,
        "fetched": posting.fetched,
        "size": posting.size,
        "content_hash": posting.content_hash,
        "evidence_sha256": posting.evidence_sha256,
        "text": text[:EVIDENCE_CHARS],
        "chars": len(text),
        "truncated": len(text) > EVIDENCE_CHARS,
        "shown": min(len(text), EVIDENCE_CHARS),
    }


def _pivots(text: str) -> list[tuple[str, str]]:
    """Emails, domains and IPs in a posting, as (kind, value): each becomes an internal search link."""
    scan = text[:PIVOT_SCAN_CHARS]
    try:
        from core.search import extract_selectors, is_selector
    except ImportError:  # search not installed: a plain pattern for emails and IPv4 addresses
        found = set(re.findall(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+", scan))
        found |= set(re.findall(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", scan))
        return sorted(("email" if "@" in v else "ipv4", v.lower()) for v in found)[:MAX_PIVOTS]
    out = []
    for value in extract_selectors(scan):
        kind = is_selector(value)
        if kind in PIVOT_KINDS:
            out.append((kind, value))
    order = {k: i for i, k in enumerate(PIVOT_KINDS)}
    return sorted(out, key=lambda kv: (order[kv[0]], kv[1]))[:MAX_PIVOTS]


def _search_backend(request: Request) -> Any:
    """A search backend for one request (as the API opens one); None when `core.search` is missing."""
    try:
        from core.search import open_backend
    except ImportError:
        return None
    return open_backend(_console(request).settings)


def _parse_day(value: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise PageError(400, f"Not a date: {value!r} (use YYYY-MM-DD).") from None
    from datetime import UTC, timedelta

    day = day.replace(tzinfo=UTC)
    return day + timedelta(days=1, microseconds=-1) if end else day


def _run_search(
    request: Request, text: str, source: str, since: str, until: str, after: str
) -> dict[str, Any]:
    backend = _search_backend(request)
    if backend is None:
        return _sql_search(_console(request).db, text, source or None)
    from core.search import SearchQuery

    try:
        page = backend.search(
            SearchQuery(
                text,
                source=source or None,
                since=_parse_day(since),
                until=_parse_day(until, end=True),
                limit=20,
                after=after or None,
            )
        )
    finally:
        backend.close()
    return {
        "hits": [
            {
                "id": h.id,
                "url": h.url,
                "source": h.source,
                "title": h.title,
                "when": h.published or h.fetched,
                "snippet": h.snippet,
            }
            for h in page.hits
        ],
        "total": page.total,
        "next_cursor": page.next_cursor,
        "facets": page.facets,
    }


def _sql_search(db: Database, text: str, source: str | None) -> dict[str, Any]:
    """Without `core.search`: a bounded substring search over posting text (50 newest), facets over them."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with db.session() as sess:
        query = (
            select(Posting, Source.name)
            .join(Source, Source.id == Posting.source_id)
            .where(Posting.text.like(pattern, escape="\\"))
            .order_by(Posting.id.desc())
            .limit(50)
        )
        if source:
            query = query.where(Source.name == source)
        rows = sess.execute(query).all()
        hits = []
        facets: dict[str, dict[str, int]] = {"source": {}, "day": {}}
        for p, name in rows:
            body = p.text or ""
            at = body.lower().find(text.lower())
            start = max(0, at - 60)
            window = body[start : at + len(text) + 120]
            rel = at - start
            snippet = window[:rel] + "[[" + window[rel : rel + len(text)] + "]]" + window[rel + len(text) :]
            when = p.published or p.fetched
            hits.append(
                {"id": p.id, "url": p.url, "source": name, "title": p.title, "when": when, "snippet": snippet}
            )
            facets["source"][name] = facets["source"].get(name, 0) + 1
            day = when.strftime("%Y-%m-%d")
            facets["day"][day] = facets["day"].get(day, 0) + 1
    return {"hits": hits, "total": len(hits), "next_cursor": None, "facets": facets}


def _posting(db: Database, posting_id: int) -> dict[str, Any]:
    with db.session() as sess:
        row = sess.get(Posting, posting_id)
        if row is None:
            raise PageError(404, "No such posting.")
        source = sess.get(Source, row.source_id)
        view = _evidence(row)
        view["source"] = source.name if source else ""
        view["pivots"] = _pivots(row.text or "")
        view["alerts"] = int(
            sess.scalar(select(func.count()).select_from(Alert).where(Alert.posting_id == row.id)) or 0
        )
        return view


def _jobs(db: Database, name: str) -> dict[str, Any]:
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
            "source": source_to_dict(source),
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


# --------------------------------------------------------------------------- routes

router = APIRouter(include_in_schema=False)


@router.get("/")
def index(request: Request) -> Response:
    """Each role lands on its main page; anyone else on the login page."""
    try:
        who, _ = current(request)
    except LoginRequired:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME_PAGE.get(who.role, "/howto"), status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    console = _console(request)
    if console.signer.verify(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse("/", status_code=303)
    return _login_form(request)


def _login_form(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The login page, tied to a random pre-login cookie so a login form cannot be posted cross-site."""
    import secrets

    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    response = render(
        request,
        "login.html",
        status_code=status,
        error=error,
        login_csrf=_console(request).signer.login_csrf(nonce),
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    console = _console(request)
    form = await form_of(request)
    if not console.signer.check_login_csrf(request.cookies.get(LOGIN_COOKIE), _one(form, "csrf")):
        raise PageError(403, "The login form's security token is missing or stale. Reload the page.")
    client = request.client.host if request.client else "unknown"
    if not console.login_limiter.allow(f"login:{client}"):
        return _login_form(request, "Too many attempts; wait a minute and try again.", 429)
    try:
        check_auth_failures(request)
    except HTTPException:
        return _login_form(request, "Too many failed attempts; wait a minute and try again.", 429)
    key = _one(form, "api_key")
    who = await run_in_threadpool(principal_from_key, console.db, key) if key and len(key) <= 256 else None
    if who is None:
        record_auth_failure(request)
        return _login_form(request, "That API key is not valid.", 401)
    start_id = await run_in_threadpool(start_session, console.db, who.key_id, who.actor)
    response = RedirectResponse(HOME_PAGE.get(who.role, "/howto"), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        console.signer.issue(who.key_id, start_id=start_id),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session on the server too: a copy of the cookie no longer opens any page."""
    who, _ = await posted(request)
    session: Session = request.state.session
    await run_in_threadpool(end_session, _console(request).db, session, who.actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- security teams


@router.get("/alerts")
def alerts_page(request: Request, scope: PickedTenant, status: str = "", severity: str = "") -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    if status and status not in ALERT_STATUSES:
        raise PageError(400, f"Unknown status {status!r}.")
    if severity and severity not in SEVERITIES:
        raise PageError(400, f"Unknown severity {severity!r}.")
    console = _console(request)
    from leaksentinel.actions.alerts import list_alerts

    rows = list_alerts(console.db, scope.id if scope else None, status or None)
    if severity:
        rows = [r for r in rows if r["severity"] == severity]
    rows.reverse()  # newest first
    return render(
        request,
        "alerts.html",
        who=who,
        session=session,
        alerts=rows[:MAX_LISTED],
        more=max(0, len(rows) - MAX_LISTED),
        statuses=ALERT_STATUSES,
        severities=SEVERITIES,
        status=status,
        severity=severity,
        tenant=_picked(who, scope),
        tenants=[] if who.is_tenant else _tenant_names(console.db),
    )


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert: ScopedAlert) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator", "analyst")
    detail = _alert_detail(_console(request).db, alert.id)
    return render(
        request,
        "alert.html",
        who=who,
        session=session,
        can_triage=who.role in ("tenant_admin", "operator"),
        **detail,
    )


@router.post("/alerts/{alert_id}/{action}")
async def triage(request: Request, alert: ScopedAlert, action: str) -> Response:
    who, _ = await posted(request, "tenant_admin", "operator")
    status = TRIAGE.get(action)
    if status is None:
        raise PageError(404, "Unknown action.")
    from leaksentinel.actions.alerts import set_alert_status

    await run_in_threadpool(
        lambda: set_alert_status(
            _console(request).db, str(alert.id), status, tenant_id=alert.tenant_id, actor=who.actor
        )
    )
    return redirect(request, f"/alerts/{alert.id}", f"Alert {alert.id} is now {status.replace('_', ' ')}.")


@router.get("/watches")
def watches_page(request: Request, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator")
    console = _console(request)
    from leaksentinel.actions.watches import list_watches

    rows = list_watches(console.db, scope.id) if scope else []
    return render(
        request,
        "watches.html",
        who=who,
        session=session,
        watches=rows,
        tenant=_picked(who, scope),
        tq=_tenant_query(who, scope),
        picked=scope is not None,
        can_edit=who.role in ("tenant_admin", "operator"),
        tenants=[] if who.is_tenant else _tenant_names(console.db),
    )


def _scope_or_400(scope: TenantRef | None) -> TenantRef:
    if scope is None:
        raise PageError(400, "Pick a tenant first.")
    return scope


@router.post("/watches")
async def add_watch(request: Request, scope: PickedTenant) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    tenant = _scope_or_400(scope)
    from leaksentinel.actions.watches import add_domain_watch, add_keyword_watch, add_regex_watch

    adders: dict[str, Callable[..., dict[str, Any]]] = {
        "domain": add_domain_watch,
        "keyword": add_keyword_watch,
        "regex": add_regex_watch,
    }
    kind, value = _one(form, "kind"), _one(form, "value")
    add = adders.get(kind)
    back = "/watches" + _tenant_query(who, scope)
    if add is None or not value or len(value) > 1024:
        return redirect(
            request, back, "Give a kind (domain, keyword or regex) and a value of up to 1024 characters."
        )
    try:
        await run_in_threadpool(lambda: add(_console(request).db, tenant.id, value, actor=who.actor))
    except NotFound:
        raise PageError(404, "No such tenant.") from None
    except BadInput as exc:
        return redirect(request, back, f"Not added: {exc}")
    return redirect(request, back, f"Watching the {kind} {value}.")


def _watch_of(db: Database, tenant: TenantRef, watch_id: str) -> dict[str, Any]:
    from leaksentinel.actions.watches import list_watches

    for row in list_watches(db, tenant.id):
        if str(row["id"]) == watch_id:
            return row
    raise PageError(404, "No such watch.")


def _confirm(
    request: Request,
    who: Principal,
    session: Session,
    *,
    title: str,
    what: str,
    warning: str,
    action: str,
    back: str,
    button: str,
) -> HTMLResponse:
    """The confirmation step of a destructive action: what goes, what cannot be undone, a required box."""
    return render(
        request,
        "confirm.html",
        who=who,
        session=session,
        title=title,
        what=what,
        warning=warning,
        action=action,
        back=back,
        button=button,
    )


def _confirmed(form: dict[str, list[str]]) -> bool:
    return _one(form, "confirm") == "yes"


@router.get("/watches/{watch_id}/remove")
def confirm_remove_watch(request: Request, watch_id: str, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "operator")
    tenant = _scope_or_400(scope)
    watch = _watch_of(_console(request).db, tenant, watch_id)
    tq = _tenant_query(who, scope)
    records = watch["kind"] == "records"
    return _confirm(
        request,
        who,
        session,
        title=f"Remove watch {watch['id']}?",
        what=(
            f"{watch.get('records', 0)} registered records ({watch.get('hashes', 0)} hashes) of {tenant.name}"
            if records
            else f"The {watch['kind']} watch {watch.get('name') or watch['value']} of {tenant.name}"
        ),
        warning=(
            "The hashes are deleted here and cannot be recovered: registering them again means hashing "
            "the records again on the company's machine."
            if records
            else "Postings will no longer be matched against it."
        ),
        action=f"/watches/{watch['id']}/remove{tq}",
        back=f"/watches{tq}",
        button="Remove watch",
    )


@router.post("/watches/{watch_id}/remove")
async def remove_watch(request: Request, watch_id: int, scope: PickedTenant) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    tenant = _scope_or_400(scope)
    back = "/watches" + _tenant_query(who, scope)
    if not _confirmed(form):
        return redirect(request, back, f"Watch {watch_id} was not removed: tick the confirmation box.")
    from leaksentinel.actions.watches import remove_watch as remove

    try:
        await run_in_threadpool(
            lambda: remove(_console(request).db, tenant.id, str(watch_id), actor=who.actor)
        )
    except NotFound:
        raise PageError(404, "No such watch.") from None
    return redirect(request, back, f"Watch {watch_id} removed.")


@router.get("/subscriptions")
def subscriptions_page(request: Request, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "tenant_viewer", "operator")
    return _subscriptions(request, who, session, scope)


def _subscriptions(
    request: Request,
    who: Principal,
    session: Session,
    scope: TenantRef | None,
    created: dict[str, Any] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    console = _console(request)
    from leaksentinel.actions.subscriptions import list_subscriptions

    rows = list_subscriptions(console.db, scope.id) if scope else []
    return render(
        request,
        "subscriptions.html",
        who=who,
        session=session,
        subscriptions=rows,
        tenant=_picked(who, scope),
        tq=_tenant_query(who, scope),
        picked=scope is not None,
        created=created,
        error=error,
        severities=SEVERITIES,
        can_edit=who.role in ("tenant_admin", "operator"),
        tenants=[] if who.is_tenant else _tenant_names(console.db),
    )


@router.post("/subscriptions")
async def subscribe(request: Request, scope: PickedTenant) -> Response:
    """Shown directly (no redirect): a webhook's signing secret appears once, on this response only."""
    who, form = await posted(request, "tenant_admin", "operator")
    session: Session = request.state.session
    tenant = _scope_or_400(scope)
    channel, target = _one(form, "channel"), _one(form, "target")
    if channel not in ("webhook", "email", "slack") or not target or len(target) > 2048:
        return _subscriptions(request, who, session, scope, error="Give a channel and a target.")
    from leaksentinel.actions.subscriptions import add_subscription

    console = _console(request)
    kinds = [k.strip() for k in _one(form, "kinds").split(",") if k.strip()][:10] or None
    try:
        created = await run_in_threadpool(
            lambda: add_subscription(
                console.db,
                console.settings,
                tenant.id,
                webhook=target if channel == "webhook" else None,
                email=target if channel == "email" else None,
                slack=target if channel == "slack" else None,
                secret=_one(form, "secret")[:256] or None,
                min_severity=_one(form, "min_severity", "low") or "low",
                kinds=kinds,
                digest=_one(form, "digest") or None,
                actor=who.actor,
            )
        )
    except BadInput as exc:
        return _subscriptions(request, who, session, scope, error=f"Not added: {exc}")
    return _subscriptions(request, who, session, scope, created=created)


def _subscription_of(db: Database, tenant: TenantRef, sub_id: str) -> dict[str, Any]:
    from leaksentinel.actions.subscriptions import list_subscriptions

    for row in list_subscriptions(db, tenant.id):
        if str(row["id"]) == sub_id:
            return row
    raise PageError(404, "No such subscription.")


@router.get("/subscriptions/{sub_id}/remove")
def confirm_unsubscribe(request: Request, sub_id: str, scope: PickedTenant) -> HTMLResponse:
    who, session = current(request, "tenant_admin", "operator")
    tenant = _scope_or_400(scope)
    sub = _subscription_of(_console(request).db, tenant, sub_id)
    tq = _tenant_query(who, scope)
    return _confirm(
        request,
        who,
        session,
        title=f"Remove subscription {sub['id']}?",
        what=f"Alerts of {tenant.name} delivered by {sub['channel']} to {sub['target']}",
        warning="Nothing more is delivered there, and its pending deliveries are dropped.",
        action=f"/subscriptions/{sub['id']}/remove{tq}",
        back=f"/subscriptions{tq}",
        button="Remove subscription",
    )


@router.post("/subscriptions/{sub_id}/remove")
async def unsubscribe(request: Request, sub_id: int, scope: PickedTenant) -> Response:
    who, form = await posted(request, "tenant_admin", "operator")
    tenant = _scope_or_400(scope)
    back = "/subscriptions" + _tenant_query(who, scope)
    if not _confirmed(form):
        return redirect(request, back, f"Subscription {sub_id} was not removed: tick the confirmation box.")
    from leaksentinel.actions.subscriptions import remove_subscription

    try:
        await run_in_threadpool(
            lambda: remove_subscription(_console(request).db, tenant.id, sub_id, actor=who.actor)
        )
    except NotFound:
        raise PageError(404, "No such subscription.") from None
    return redirect(request, back, f"Subscription {sub_id} removed.")


@router.get("/howto")
def howto(request: Request) -> HTMLResponse:
    who, session = current(request)
    return render(request, "howto.html", who=who, session=session)


# ---- analysts


@router.get("/search")
def search_page(
    request: Request, q: str = "", source: str = "", since: str = "", until: str = "", after: str = ""
) -> HTMLResponse:
    who, session = current(request, "analyst", "operator")
    result: dict[str, Any] | None = None
    error = None
    q = q.strip()
    if q:
        if len(q) > 4096:
            raise PageError(400, "That query is too long.")
        try:
            result = _run_search(request, q, source, since, until, after)
        except PageError:
            raise
        except BadInput as exc:
            error = str(exc)
    facets = (result or {}).get("facets") or {}
    days = sorted((facets.get("day") or {}).items(), reverse=True)[:31]
    sources = sorted((facets.get("source") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return render(
        request,
        "search.html",
        who=who,
        session=session,
        q=q,
        source=source,
        since=since,
        until=until,
        result=result,
        error=error,
        facet_sources=sources,
        facet_days=days,
    )


@router.get("/postings/{posting_id}")
def posting_page(request: Request, posting_id: str) -> HTMLResponse:
    who, session = current(request, "analyst", "operator")
    posting = _posting(_console(request).db, _number(posting_id, "posting"))
    return render(request, "posting.html", who=who, session=session, posting=posting)


# ---- operators


@router.get("/sources")
def sources_page(request: Request) -> HTMLResponse:
    who, session = current(request, "operator", "analyst")
    from leaksentinel.actions.sources import list_sources

    return render(
        request,
        "sources.html",
        who=who,
        session=session,
        sources=list_sources(_console(request).db),
        can_edit=who.role == "operator",
    )


@router.get("/sources/{name}/jobs")
def jobs_page(request: Request, name: str) -> HTMLResponse:
    who, session = current(request, "operator", "analyst")
    return render(request, "jobs.html", who=who, session=session, **_jobs(_console(request).db, name))


@router.get("/sources/{name}/remove")
def confirm_remove_source(request: Request, name: str) -> HTMLResponse:
    who, session = current(request, "operator")
    from leaksentinel.actions.sources import find_source

    with _console(request).db.session() as sess:
        try:
            source = find_source(sess, name)
        except NotFound:
            raise PageError(404, "No such source.") from None
        label, kind, url = source.name, source.kind, source.url
    return _confirm(
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

    db = _console(request).db

    def change() -> str:
        if action == "remove":
            if not _confirmed(form):
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
            mode, value = _one(form, "mode"), _one(form, "value")
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
    rows = list_deliveries(_console(request).db, status or None)
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
    all_dead = _one(form, "all_dead") == "1"
    try:
        out = await run_in_threadpool(
            lambda: retry_deliveries(_console(request).db, ids, all_dead=all_dead, actor=who.actor)
        )
    except NotFound:
        raise PageError(404, "No such delivery.") from None
    except BadInput as exc:
        return redirect(request, "/deliveries?status=dead", f"Nothing redelivered: {exc}")
    return redirect(request, "/deliveries?status=dead", f"{len(out)} deliveries put back in the outbox.")


# --------------------------------------------------------------------------- mounting


def _is_console_page(request: Request) -> bool:
    """Whether a request went to a console page (the API, /docs and /metrics answer in JSON)."""
    return not request.url.path.startswith(("/api/", "/docs", "/metrics", "/openapi.json"))


def mount_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its HTML error pages to the API application."""
    app.state.console = Console(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    async def _page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        who: Principal | None = None
        session: Session | None = None
        with contextlib.suppress(LoginRequired, PageError):  # the error page shows the menu when it can
            who, session = current(request)
        return render(
            request,
            "error.html",
            who=who,
            session=session,
            status_code=exc.status,
            code=exc.status,
            message=exc.message,
        )

    async def _login_required(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return _login_form(request, "Your session has ended; log in again.", 401)

    async def _not_found(request: Request, exc: Exception) -> Response:
        """Out of scope or missing: the API's JSON 404 outside the console, the console's 404 page in it."""
        if not _is_console_page(request):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return await _page_error(request, PageError(404, "Not found."))

    app.state.session_principal = session_principal  # how api.deps finds the caller on console pages
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(NotFound, _not_found)
    app.include_router(router)
