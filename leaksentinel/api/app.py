"""The HTTP API (OpenAPI at /openapi.json) and the web console.

Why one application: the console is a client of the same actions and the same key checks as the
API, so what a key may do is decided in one place (leaksentinel.api.auth).
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from core.db import open_database
from core.errors import BadInput, NotFound
from core.settings import Settings
from leaksentinel.api import routes_ops, routes_tenant
from leaksentinel.api.limits import RateLimiter

__all__ = ["SECURITY_HEADERS", "create_app"]

#: Crawled content is hostile: pages never run inline script, load nothing from elsewhere, and are never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(
    settings: Settings, *, celery: Any = None, queue_depths: Callable[[], dict[str, int]] | None = None
) -> FastAPI:
    app = FastAPI(
        title="leaksentinel",
        version="0.1.0",
        max_body_size=settings.api_max_body_bytes,
        description="Leak monitoring: tenants register hashed data, crawlers watch the underground, "
        "alerts are delivered once per leak. Bearer API keys; see docs/.",
    )
    app.state.settings = settings
    app.state.db = open_database(settings)
    app.state.limiter = RateLimiter(settings.api_rate_per_s, settings.api_burst)
    app.state.tip_limiter = RateLimiter(5 / 60, 5)
    app.state.celery = celery
    app.state.queue_depths = queue_depths

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": "not found"}, status_code=404)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return JSONResponse({"detail": "not found"}, status_code=404)  # an id beyond any stored one

    @app.exception_handler(BadInput)
    async def _bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith(("/docs", "/redoc")):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(routes_tenant.router)
    app.include_router(routes_ops.router)
    try:
        from leaksentinel.console.routes import mount_console
    except ImportError:  # the console is optional for an API-only deployment

        @app.get("/", response_class=HTMLResponse)
        def index() -> HTMLResponse:
            return HTMLResponse(
                "<!doctype html><title>leaksentinel</title><p>API: <a href='/docs'>/docs</a></p>"
            )
    else:
        mount_console(app)
    return app
