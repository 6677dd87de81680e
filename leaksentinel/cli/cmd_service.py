"""``run`` and ``demo``."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from core.errors import OperationalError
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_object, err

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]


def register(app: typer.Typer) -> None:
    @app.command("run")
    def _run(
        host: Annotated[str | None, typer.Option("--host")] = None,
        port: Annotated[int | None, typer.Option("--port")] = None,
    ) -> None:
        """Run the service: scheduler, crawl and alert workers, HTTP API and console."""
        from leaksentinel.service import Service

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        settings = state.settings
        service = Service(settings, host=host, port=port)
        err(
            f"leaksentinel: serving http://{service.host}:{service.port} (home {settings.home}); Ctrl-C stops"
        )
        service.serve_forever()

    @app.command("demo")
    def _demo(as_json: JSON = False) -> None:
        """Show the whole path on a simulated underground: crawl, match, deliver alerts."""
        from leaksentinel.demo import run_demo

        result = run_demo(state.settings)
        if as_json:
            emit_object(result, True)
        if result["delivered"] == 0:
            raise OperationalError("the demo delivered no alert")
