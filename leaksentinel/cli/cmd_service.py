"""``run``, ``demo`` and ``purge``."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from core.errors import OperationalError
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_object


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]


def register(app: typer.Typer) -> None:
    @app.command("run")
    def _run(
        host: Annotated[str | None, typer.Option("--host")] = None,
        port: Annotated[int | None, typer.Option("--port")] = None,
        log_format: Annotated[
            LogFormat | None,
            typer.Option("--log-format", help="text for people (default), json: one object per line."),
        ] = None,
    ) -> None:
        """Run the service: scheduler, crawl and alert workers, HTTP API and console.

        Logs one line per crawl finished, alert raised, delivery sent or dead, and source health change.
        """
        from leaksentinel.activity import configure_logging
        from leaksentinel.service import Service

        settings = state.settings
        configure_logging(log_format.value if log_format else settings.log_format)
        service = Service(settings, host=host, port=port)
        service.serve_forever()  # logs "serving http://..." once it listens

    @app.command("demo")
    def _demo(as_json: JSON = False) -> None:
        """Show the whole path on a simulated underground: crawl, match, deliver alerts."""
        from leaksentinel.demo import run_demo

        result = run_demo(state.settings)
        if as_json:
            emit_object(result, True)
        if result["delivered"] == 0:
            raise OperationalError("the demo delivered no alert")

    @app.command("purge")
    def _purge(
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
        ] = False,
        as_json: JSON = False,
    ) -> None:
        """Delete posting text, search entries and evidence older than retention_days, unless an alert holds them.

        The posting rows stay (ids, URLs, hashes), so alerts, sightings and repost detection keep working.
        """
        from core.db import open_database
        from leaksentinel.actions.retention import purge

        settings = state.settings
        result = purge(open_database(settings), settings, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        human = (
            f"{verb} the text of {result['postings']} posting(s) older than {settings.retention_days} days, "
            f"{result['search_entries']} search entries and {result['evidence_files']} evidence file(s); "
            f"{result['held_by_alerts']} old posting(s) kept because an alert holds them"
        )
        emit_object(result, as_json, human)
