"""``run``, the fleet roles (``worker``, ``scheduler``, ``serve``), ``demo`` and ``purge``."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from core.errors import BadInput, OperationalError
from core.settings import Settings
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_object


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]
LOG_FORMAT = Annotated[
    LogFormat | None,
    typer.Option("--log-format", help="text for people (default), json: one object per line."),
]
METRICS_PORT = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics on this port (on metrics_host; default: the metrics_port setting, 0: none).",
    ),
]
VALID_QUEUES = ("crawl", "notify")


def parse_queues(text: str) -> str:
    """``crawl``, ``notify`` or both, comma-separated; anything else is bad usage (exit 2), not a silent idle worker."""
    names = [q.strip() for q in text.split(",") if q.strip()]
    unknown = [q for q in names if q not in VALID_QUEUES]
    if not names or unknown:
        shown = ", ".join(repr(q) for q in unknown) or repr(text)
        raise BadInput(f"--queues: unknown queue {shown}; choose crawl, notify or crawl,notify")
    return ",".join(dict.fromkeys(names))


def _settings(metrics_port: int | None) -> Settings:
    """The settings, with ``--metrics-port`` over the ``metrics_port`` setting when given."""
    settings = state.settings
    return settings if metrics_port is None else settings.with_(metrics_port=metrics_port)


def _logging(log_format: LogFormat | None) -> None:
    from leaksentinel.activity import configure_logging

    configure_logging(log_format.value if log_format else state.settings.log_format)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def _run(
        host: Annotated[str | None, typer.Option("--host")] = None,
        port: Annotated[int | None, typer.Option("--port")] = None,
        log_format: LOG_FORMAT = None,
        metrics_port: METRICS_PORT = None,
    ) -> None:
        """Run the service: scheduler, crawl and alert workers, HTTP API and console.

        Logs one line per crawl finished, alert raised, delivery sent or dead, and source health change.
        """
        from leaksentinel.service import Service

        _logging(log_format)
        service = Service(_settings(metrics_port), host=host, port=port)
        service.serve_forever()  # logs "serving http://..." once it listens

    @app.command("worker")
    def _worker(
        queues: Annotated[
            str, typer.Option("--queues", help="crawl, notify or crawl,notify: the queues this worker takes.")
        ] = "crawl,notify",
        concurrency: Annotated[
            int | None,
            typer.Option(
                "--concurrency", min=1, max=256, help="Parallel tasks (default: worker_concurrency)."
            ),
        ] = None,
        log_format: LOG_FORMAT = None,
        metrics_port: METRICS_PORT = None,
    ) -> None:
        """A fleet role: a Celery worker on the crawl and/or notify queue of the configured broker.

        Without redis_url it joins the broker of a `leaksentinel run` on this home. SIGTERM stops it within
        20 s; a crawl it cuts short is recorded `interrupted`.
        """
        import sys

        from leaksentinel.service import WorkerRole

        chosen = parse_queues(queues)
        _logging(log_format)
        WorkerRole(
            _settings(metrics_port), queues=chosen, concurrency=concurrency, worker_log=sys.stderr.buffer
        ).serve_forever()

    @app.command("scheduler")
    def _scheduler(log_format: LOG_FORMAT = None, metrics_port: METRICS_PORT = None) -> None:
        """A fleet role: fires due crawls (one leader across the fleet, elected in Redis) and publishes the outbox."""
        from leaksentinel.service import SchedulerRole

        _logging(log_format)
        SchedulerRole(_settings(metrics_port)).serve_forever()

    @app.command("serve")
    def _serve(
        host: Annotated[str | None, typer.Option("--host")] = None,
        port: Annotated[int | None, typer.Option("--port")] = None,
        log_format: LOG_FORMAT = None,
    ) -> None:
        """A fleet role: the HTTP API and console only; crawl-now and tips are sent to the workers through the broker."""
        from leaksentinel.service import ServeRole

        _logging(log_format)
        ServeRole(state.settings, host=host, port=port).serve_forever()

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
        if result.get("partitions_dropped"):
            human += f"; {result['partitions_dropped']} monthly partition(s) of posting text dropped"
        emit_object(result, as_json, human)
