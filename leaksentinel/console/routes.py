"""The web console: server-rendered pages for security teams, analysts and operators, one router per
area over leaksentinel/actions (as the API has), mounted on the API application.

The pages call the same actions, and apply the same role and tenant rules (leaksentinel.api.deps), as the
JSON API: another tenant's object is a 404 page.
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import contextlib

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from core.errors import NotFound
from leaksentinel.api.auth import Principal
from leaksentinel.console import routes_analyst, routes_ops, routes_overview, routes_session, routes_tenant
from leaksentinel.console.pages import (
    EVIDENCE_CHARS,
    HERE,
    Console,
    LoginRequired,
    PageError,
    current,
    highlight,
    render,
    session_principal,
)
from leaksentinel.console.routes_session import login_form
from leaksentinel.console.session import Session

__all__ = ["EVIDENCE_CHARS", "highlight", "mount_console"]


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
        return login_form(request, "Your session has ended; log in again.", 401)

    async def _not_found(request: Request, exc: Exception) -> Response:
        """Out of scope or missing: the API's JSON 404 outside the console, the console's 404 page in it."""
        if not _is_console_page(request):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return await _page_error(request, PageError(404, "Not found."))

    app.state.session_principal = session_principal  # how api.deps finds the caller on console pages
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(NotFound, _not_found)
    for area in (routes_session, routes_tenant, routes_analyst, routes_ops, routes_overview):
        app.include_router(area.router)
