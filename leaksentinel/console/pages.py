"""What every console page shares: rendering (autoescaped Jinja2), flash messages, who is signed in,
forms with CSRF tokens, the tenant picker and the confirmation step of destructive actions.

Why server-rendered with autoescaping: everything crawled is hostile, so every value reaches the page
through Jinja2's autoescape, crawled text is shown inside ``<pre>`` as text, and links found in postings
are shown as text; the only markup built in Python is the search highlight, which escapes the snippet
first and adds nothing but ``<mark>``. No inline script or style (the CSP forbids them).
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import base64
import re
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from sqlalchemy import select

from core.db import Database
from core.models import Posting, Tenant
from core.settings import Settings
from leaksentinel.api.auth import Principal
from leaksentinel.api.deps import TenantRef
from leaksentinel.api.limits import RateLimiter
from leaksentinel.console.session import (
    SESSION_COOKIE,
    ConsoleSigner,
    Session,
    console_secret,
    principal_from_key_id,
    session_ended,
)

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
#: Roles that may open alert pages (tenant roles: only their own tenant's, through ScopedAlert).
ALERT_ROLES = ("tenant_admin", "tenant_viewer", "operator", "analyst")
NAV: dict[str, list[tuple[str, str]]] = {
    "tenant_admin": [
        ("/alerts", "Alerts"),
        ("/overview", "Overview"),
        ("/watches", "Watches"),
        ("/subscriptions", "Subscriptions"),
    ],
    "tenant_viewer": [
        ("/alerts", "Alerts"),
        ("/overview", "Overview"),
        ("/watches", "Watches"),
        ("/subscriptions", "Subscriptions"),
    ],
    "analyst": [("/search", "Search"), ("/alerts", "Alerts"), ("/sources", "Sources"), ("/ops", "Dashboard")],
    "operator": [
        ("/ops", "Dashboard"),
        ("/sources", "Sources"),
        ("/deliveries?status=dead", "Dead letters"),
        ("/alerts", "Alerts"),
        ("/watches", "Watches"),
        ("/subscriptions", "Subscriptions"),
        ("/overview", "Tenant overview"),
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


def duration(seconds: Any) -> str:
    """A run's length as people read it: ``850 ms``, ``14.2 s``, ``3 min 05 s``, ``1 h 02 min`` (empty: none)."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def size(value: Any) -> str:
    """Bytes as people read them: ``512 B``, ``12.3 kB``, ``4.0 MB`` (decimal units; empty: none)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return ""
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"  # pragma: no cover - the loop returns at GB


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
    env.filters["duration"] = duration
    env.filters["size"] = size
    return env


class Console:
    """What the pages share: templates, the signer, the database and settings."""

    def __init__(self, app: FastAPI) -> None:
        self.settings: Settings = app.state.settings
        self.db: Database = app.state.db
        self.env = _environment()
        self.signer = ConsoleSigner(console_secret(self.settings))
        self.login_limiter = RateLimiter(0.5, 10)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def secure_cookies(request: Request) -> bool:
    """Secure cookies when served over HTTPS, or when the public URL says a TLS proxy is in front."""
    return request.url.scheme == "https" or console_of(request).settings.console_url.startswith("https:")


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
    console = console_of(request)
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
            secure=secure_cookies(request),
        )
    return response


# --------------------------------------------------------------------------- who is asking


def session_principal(request: Request) -> Principal:
    """The principal of the session cookie (what ``api.deps.current_principal`` asks on console pages),
    or LoginRequired: no cookie, a forged or expired one, a logged-out session, a revoked key."""
    console = console_of(request)
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
    if not console_of(request).signer.check_csrf(session.token, form_value(form, "csrf")):
        raise PageError(403, "The form's security token is missing or stale. Reload the page and try again.")
    if roles and who.role not in roles:
        raise PageError(403, f"This needs one of the roles: {', '.join(roles)}.")
    return who, form


def form_value(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0].strip() if values else default


def path_number(value: str, what: str) -> int:
    """An id from a URL: anything but a plain number is a 404 page, not a validation error."""
    if not value.isdigit() or len(value) > 18:
        raise PageError(404, f"No such {what}.")
    return int(value)


def picked_name(who: Principal, scope: TenantRef | None) -> str:
    """The tenant shown as picked in an operator's picker ('' for tenant users, who have no picker)."""
    return scope.name if scope is not None and not who.is_tenant else ""


def tenant_query(who: Principal, scope: TenantRef | None) -> str:
    """``?tenant=NAME`` for an operator's forms and links (the scope travels in the URL, as GETs have it)."""
    if who.is_tenant or scope is None:
        return ""
    return "?" + urllib.parse.urlencode({"tenant": scope.name})


def tenant_names(db: Database) -> list[str]:
    with db.session() as sess:
        return list(sess.scalars(select(Tenant.name).order_by(Tenant.name)))


def evidence_view(posting: Posting) -> dict[str, Any]:
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


def require_scope(scope: TenantRef | None) -> TenantRef:
    if scope is None:
        raise PageError(400, "Pick a tenant first.")
    return scope


def confirm_page(
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


def confirmed(form: dict[str, list[str]]) -> bool:
    return form_value(form, "confirm") == "yes"
