"""Console sign-in: the start page, login with an API key, logout (ended on the server too), the how-to."""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leaksentinel.api.auth import (
    check_auth_failures,
    principal_from_key,
    record_auth_failure,
)
from leaksentinel.console.pages import (
    HOME_PAGE,
    LoginRequired,
    PageError,
    console_of,
    current,
    form_of,
    form_value,
    posted,
    render,
    secure_cookies,
)
from leaksentinel.console.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    end_session,
    start_session,
)

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
    console = console_of(request)
    if console.signer.verify(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse("/", status_code=303)
    return login_form(request)


def login_form(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The login page, tied to a random pre-login cookie so a login form cannot be posted cross-site."""
    import secrets

    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    response = render(
        request,
        "login.html",
        status_code=status,
        error=error,
        login_csrf=console_of(request).signer.login_csrf(nonce),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    form = await form_of(request)
    if not console.signer.check_login_csrf(request.cookies.get(LOGIN_COOKIE), form_value(form, "csrf")):
        raise PageError(403, "The login form's security token is missing or stale. Reload the page.")
    client = request.client.host if request.client else "unknown"
    if not console.login_limiter.allow(f"login:{client}"):
        return login_form(request, "Too many attempts; wait a minute and try again.", 429)
    try:
        check_auth_failures(request)
    except HTTPException:
        return login_form(request, "Too many failed attempts; wait a minute and try again.", 429)
    key = form_value(form, "api_key")
    who = await run_in_threadpool(principal_from_key, console.db, key) if key and len(key) <= 256 else None
    if who is None:
        record_auth_failure(request)
        return login_form(request, "That API key is not valid.", 401)
    start_id = await run_in_threadpool(start_session, console.db, who.key_id, who.actor)
    response = RedirectResponse(HOME_PAGE.get(who.role, "/howto"), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        console.signer.issue(who.key_id, start_id=start_id),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session on the server too: a copy of the cookie no longer opens any page."""
    who, _ = await posted(request)
    session: Session = request.state.session
    await run_in_threadpool(end_session, console_of(request).db, session, who.actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/howto")
def howto(request: Request) -> HTMLResponse:
    who, session = current(request)
    return render(request, "howto.html", who=who, session=session)
