"""The HTTP API (OpenAPI at /openapi.json) and the web console.

Why one application: the console is a client of the same actions and the same key checks as the
API, so what a key may do is decided in one place (leaksentinel.api.auth).
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from sqlalchemy.exc import DataError

from core.db import open_database
from core.errors import BadInput, NotFound
from core.settings import Settings
from leaksentinel.actions.deployment import check_hash_key
from leaksentinel.api import health, routes_ops, routes_tenant
from leaksentinel.api.bodies import JsonTextGuard, bad_text_response, validation_error_response
from leaksentinel.api.limits import AUTH_FAILURE_BURST, AUTH_FAILURE_RATE, RateLimiter

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


HERE = Path(__file__).resolve().parent


def _docs_assets() -> dict[str, Path]:
    """The files /docs needs, all served from here: Swagger UI from its package, our start-up script."""
    from openapi_ui_bundles.swagger_ui import static_path

    vendor = Path(static_path)
    return {
        "swagger-ui.css": vendor / "swagger-ui.css",
        "swagger-ui-bundle.js": vendor / "swagger-ui-bundle.js",
        "leaksentinel-docs.js": HERE / "static" / "docs.js",
    }


def create_app(
    settings: Settings,
    *,
    celery: Any = None,
    queue_depths: Callable[[], dict[str, int]] | None = None,
    csp: bool = True,
) -> FastAPI:
    """The application. ``csp=False`` leaves out the Content-Security-Policy header: only tests use it,
    to show that escaping alone keeps hostile text inert (the CSP is a second line, not the first)."""
    app = FastAPI(
        title="leaksentinel",
        version="0.1.0",
        max_body_size=settings.api_max_body_bytes,
        docs_url=None,  # served below from local files, under the CSP
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        description="Leak monitoring: tenants register hashed data, crawlers watch the underground, "
        "alerts are delivered once per leak. Bearer API keys (`Authorize` on /docs); see docs/.",
    )
    app.state.settings = settings
    app.state.db = open_database(settings)
    app.state.limiter = RateLimiter(settings.api_rate_per_s, settings.api_burst)
    app.state.tip_limiter = RateLimiter(5 / 60, 5)
    app.state.auth_failures = RateLimiter(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST)
    app.state.celery = celery
    app.state.queue_depths = queue_depths
    # The first process to open a deployment's database records its hashing key; /readyz compares.
    check_hash_key(app.state.db, settings)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": "not found"}, status_code=404)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return JSONResponse({"detail": "not found"}, status_code=404)  # an id beyond any stored one

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL's answer to an id beyond its integer range (SQLite raises OverflowError): nothing has it.
        if "out of range" in str(exc.orig):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse({"detail": "a value the database cannot hold"}, status_code=400)

    @app.exception_handler(BadInput)
    async def _bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_error_response)

    @app.exception_handler(UnicodeError)
    async def _bad_text(request: Request, exc: UnicodeError) -> JSONResponse:
        return bad_text_response()  # never the text itself: it may be a posted dump

    app.add_middleware(JsonTextGuard)  # inside the body-size limit and the headers, outside the routes
    headers = {k: v for k, v in SECURITY_HEADERS.items() if csp or k != "Content-Security-Policy"}

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if "\x00" in request.url.path or any("\x00" in k + v for k, v in request.query_params.multi_items()):
            # No name, id, query or date holds a NUL; PostgreSQL refuses one in any text value.
            response: Response = JSONResponse(
                {"detail": "NUL bytes are not accepted in URLs"}, status_code=400
            )
        else:
            response = await call_next(request)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    assets = _docs_assets()

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(HERE / "static" / "docs.html", media_type="text/html")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        path = assets.get(name)
        if path is None:
            raise NotFound(name)
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})

    app.include_router(health.router)
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
