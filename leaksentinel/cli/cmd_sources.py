"""``source add/list/set`` and ``crawl``."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from core.settings import Settings
from crawlers.extensions.progress import ENV as PROGRESS_ENV
from crawlers.extensions.progress import read_progress
from crawlers.job import Interrupted, run_crawl
from crawlers.schedule import describe_schedule
from leaksentinel.actions.sources import add_source, find_source, list_sources, remove_source, set_source
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_list, emit_object, err

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]

#: How often the progress line reads the run's progress file.
POLL_S = 0.25


def _stderr_fd() -> Any:
    """The real stderr for the child's log (``-v``), or None when it has no file descriptor (tests)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return sys.stderr


def _progress_text(name: str, p: dict[str, Any] | None, elapsed: float) -> str:
    """One short line (it must fit 80 columns): pages, postings, matches, and errors when there are any."""
    clock = f"{elapsed:.0f} s"
    if not p:
        return f"{name}: starting, {clock}"
    errors = f", {p['errors']} errors" if p.get("errors") else ""
    phase = ", closing" if p.get("finished") else ""
    return (
        f"{name}: {p.get('fetched', 0)} pages, {p.get('postings', 0)} postings ({p.get('new', 0)} new), "
        f"{p.get('matches', 0)} matches, {p.get('alerts', 0)} alerts{errors}{phase}, {clock}"
    )


def crawl_with_progress(settings: Settings, name: str, *, verbose: bool = False) -> dict[str, Any]:
    """``run_crawl`` with a live progress line on a terminal, and the crawler's log only with ``-v``.

    Why this shape: the run is a child process (crawlers.job); its progress extension writes a JSON file
    that ``run_crawl`` lets it find through the environment it passes on, and this thread renders it.
    Without ``-v`` the child's log goes to run_crawl's own temporary file (its first error is kept).
    """
    if verbose:
        return run_crawl(settings, name, stderr=_stderr_fd())
    if not sys.stderr.isatty():
        return run_crawl(settings, name)
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with tempfile.TemporaryDirectory(prefix="leaksentinel-crawl-") as tmp:
        progress_file = Path(tmp) / "progress.json"
        previous = os.environ.get(PROGRESS_ENV)
        os.environ[PROGRESS_ENV] = str(progress_file)
        done = threading.Event()
        try:
            started = time.monotonic()
            with console.status(_progress_text(name, None, 0.0)) as status:

                def poll() -> None:
                    while not done.wait(POLL_S):
                        progress = read_progress(progress_file)
                        status.update(_progress_text(name, progress, time.monotonic() - started))

                poller = threading.Thread(target=poll, name="crawl-progress", daemon=True)
                poller.start()
                try:
                    summary = run_crawl(settings, name)
                finally:
                    done.set()
                    poller.join(timeout=2)
            if not sys.stdout.isatty():
                # The spinner line is transient: when stdout (JSON, a file) does not show the summary on the
                # terminal, the run's final numbers stay there as the last line (the last poll may predate them).
                console.print(_progress_text(name, summary, time.monotonic() - started))
            return summary
        finally:
            if previous is None:
                os.environ.pop(PROGRESS_ENV, None)
            else:
                os.environ[PROGRESS_ENV] = previous


def register(app: typer.Typer) -> None:
    source = typer.Typer(help="Where the crawlers look, and when.", no_args_is_help=True)
    app.add_typer(source, name="source")

    @source.command("add")
    def _add(
        name: str,
        kind: Annotated[
            str,
            typer.Option("--kind", help="pastebin, gists, discourse, phpbb, xenforo, telegram, rss, generic"),
        ],
        url: Annotated[str, typer.Option("--url")],
        every: Annotated[str | None, typer.Option("--every", help="Interval such as 5m.")] = None,
        cron: Annotated[
            str | None, typer.Option("--cron", help='Cron expression such as "*/5 * * * *".')
        ] = None,
        render: Annotated[
            bool, typer.Option("--render", help="Fetch pages through a headless browser.")
        ] = False,
        proxy: Annotated[
            str | None, typer.Option("--proxy", help="HTTP(S) proxy URL for this source.")
        ] = None,
        item: Annotated[
            str | None, typer.Option("--item", help="generic: CSS selector of each posting on a page.")
        ] = None,
        link: Annotated[
            str | None, typer.Option("--link", help="generic: CSS selector of links to postings.")
        ] = None,
        content: Annotated[
            str | None, typer.Option("--content", help="generic: CSS selector of a followed page's posting.")
        ] = None,
        next_: Annotated[
            str | None, typer.Option("--next", help="generic: CSS selector of the next page link.")
        ] = None,
        robots: Annotated[
            bool | None,
            typer.Option(
                "--robots/--ignore-robots",
                help="Obey robots.txt (default: yes, but for the pastebin and gists APIs).",
            ),
        ] = None,
        page_budget: Annotated[
            int | None, typer.Option("--page-budget", help="At most this many pages per run.")
        ] = None,
        delay: Annotated[
            float | None, typer.Option("--delay", help="Seconds between requests to the site.")
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Add a source."""
        pairs = (
            ("item", item),
            ("link", link),
            ("content", content),
            ("next", next_),
            ("page_budget", page_budget),
            ("delay", delay),
        )
        options: dict[str, Any] = {k: v for k, v in pairs if v}
        if robots is not None:
            options["robots"] = robots
        out = add_source(
            state.db, name, kind, url, every=every, cron=cron, render=render, proxy=proxy, options=options
        )
        emit_object(
            out,
            as_json,
            human=f"source {out['name']} ({out['kind']}) added, schedule: {describe_schedule(out['schedule']) or 'none'}",
        )

    @source.command("list")
    def _list(as_json: JSON = False) -> None:
        """List sources with their schedule and last run."""
        rows = list_sources(state.db)
        if not as_json:  # people read "every 2m"; JSON keeps the stored form scripts already parse
            rows = [
                row
                | {
                    "schedule": describe_schedule(row.get("schedule")),
                    # why it failed, or why it is unhealthy (silent, stale) when no run failed
                    "last_error": row.get("last_error") or row.get("health_reason"),
                }
                for row in rows
            ]
        emit_list(
            rows,
            as_json,
            [
                "name",
                "kind",
                "url",
                "schedule",
                "enabled",
                "last_run",
                "last_status",
                "next_run",
                "health",
                "last_error",
            ],
            title="sources",
        )

    @source.command("remove")
    def _remove(
        name: Annotated[str, typer.Argument(help="Source name or id.")],
        as_json: JSON = False,
    ) -> None:
        """Remove a source: no longer listed nor scheduled, its name free again; its postings stay."""
        out = remove_source(state.db, name)
        emit_object(
            out,
            as_json,
            human=f"source {out['name']} removed; its {out['postings_kept']} postings stay "
            f"(shown as from {out['stored_as']})",
        )

    @source.command("set")
    def _set(
        name: str,
        every: Annotated[str | None, typer.Option("--every")] = None,
        cron: Annotated[str | None, typer.Option("--cron")] = None,
        pause: Annotated[bool, typer.Option("--pause")] = False,
        resume: Annotated[bool, typer.Option("--resume")] = False,
        url: Annotated[str | None, typer.Option("--url")] = None,
        proxy: Annotated[str | None, typer.Option("--proxy")] = None,
        render: Annotated[bool | None, typer.Option("--render/--no-render")] = None,
        as_json: JSON = False,
    ) -> None:
        """Change a source; a running service picks the change up without a restart."""
        out = set_source(
            state.db,
            name,
            every=every,
            cron=cron,
            pause=pause,
            resume=resume,
            url=url,
            proxy=proxy,
            render=render,
        )
        emit_object(
            out,
            as_json,
            human=f"source {out['name']}: schedule {describe_schedule(out['schedule']) or 'none'}, "
            f"{'enabled' if out['enabled'] else 'paused'}",
        )

    @app.command("crawl")
    def _crawl(
        name: str,
        as_json: JSON = False,
        verbose: Annotated[
            bool, typer.Option("--verbose", "-v", help="Show the crawler's (Scrapy's) log on stderr.")
        ] = False,
    ) -> None:
        """Crawl a source once, now, in the foreground (progress on stderr)."""
        with state.db.session() as sess:
            find_source(sess, name)  # a removed source is not crawled, not even by its id
        try:
            summary = crawl_with_progress(state.settings, name, verbose=verbose)
        except Interrupted:  # SIGTERM: run_crawl stored the job as interrupted; say so, no traceback
            err(f"leaksentinel: crawl of {name} interrupted (SIGTERM); the job is stored as interrupted")
            raise typer.Exit(143) from None
        keys = ("source", "fetched", "postings", "new", "matches", "alerts", "errors", "seconds")
        line = {k: summary.get(k) for k in keys} | {k: v for k, v in summary.items() if k not in keys}
        if summary.get("status") == "failed":
            err(f"leaksentinel: crawl of {name} failed: {summary.get('error') or 'no page could be fetched'}")
        emit_object(
            line,
            as_json,
            human=(
                f"{line['source']}: fetched {line['fetched']}, postings {line['postings']}, new {line['new']}, "
                f"matches {line['matches']}, alerts {line['alerts']}, errors {line['errors']} in {line['seconds']} s"
            ),
        )
        if summary.get("status") == "failed":
            raise typer.Exit(1)

    @app.command("report")
    def _report(
        url: Annotated[str | None, typer.Argument(help="A page that holds leaked data.")] = None,
        text: Annotated[
            str | None, typer.Option("--text", help="A file holding a leaked text, or - for stdin.")
        ] = None,
        note: Annotated[str | None, typer.Option("--note", help="What it is, where it was seen.")] = None,
        as_json: JSON = False,
    ) -> None:
        """The tip line: crawl a reported page, or take a reported text, into the same pipeline."""
        import sys
        from pathlib import Path

        from core.errors import BadInput
        from leaksentinel.tips import MAX_TIP_BYTES, report_text, report_url

        if (url is None) == (text is None):
            raise BadInput("give a URL or --text FILE (or - for stdin), not both")
        if url is not None:
            out = report_url(state.settings, url, note=note)
            emit_object(
                out,
                as_json,
                human=f"reported page crawled: {out['postings']} postings, {out['alerts']} alerts",
            )
            if out.get("status") == "failed":
                raise typer.Exit(1)
            return
        assert text is not None
        if text == "-":
            body = sys.stdin.read(MAX_TIP_BYTES + 1)
        else:
            path = Path(text)
            if not path.is_file():
                raise BadInput(f"no such file: {text}")
            from pipelines.decode import decode_bytes

            with path.open("rb") as handle:  # bounded: a device or a huge file is never read whole
                body = decode_bytes(handle.read(MAX_TIP_BYTES + 1))
        out = report_text(state.settings, body, note=note)
        emit_object(
            out,
            as_json,
            human=f"reported text stored as {out['url']}: {out['findings']} findings, {out['alerts']} alerts",
        )
