"""The ``leaksentinel`` command line (contract: shared/CLI-CONTRACT.md).

Why a wrapper around Typer: bad input must end in a one-line message on stderr and exit 2, an
operational failure in exit 1, and never in a traceback, whatever layer raised it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer import _click as typer_click

from core.errors import LeakSentinelError
from leaksentinel.cli import (
    cmd_alerts,
    cmd_backup,
    cmd_detect,
    cmd_evidence,
    cmd_search,
    cmd_service,
    cmd_sources,
    cmd_tenants,
)
from leaksentinel.cli.context import state
from leaksentinel.cli.output import err

__all__ = ["app", "main"]

app = typer.Typer(
    name="leaksentinel",
    help="Watch paste sites, forums and channels for your company's data, registered only as keyed hashes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version() -> str:
    """The installed distribution's version; the source tree's pyproject.toml when run uninstalled."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("leaksentinel")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "unknown"


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"leaksentinel {version()}\n")
        sys.stdout.flush()
        raise typer.Exit(0)


@app.callback()
def _root(
    config: Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")] = None,
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    state.config = config
    state._settings = None


cmd_tenants.register(app)
cmd_detect.register(app)
cmd_sources.register(app)
cmd_alerts.register(app)
cmd_evidence.register(app)
cmd_service.register(app)
cmd_search.register(app)
cmd_search.register_reindex(app)
cmd_backup.register(app)


def hoist_config(argv: list[str]) -> list[str]:
    """Accept ``--config FILE`` anywhere on the line (``leaksentinel tenant list --config x.toml``)."""
    out: list[str] = []
    hoisted: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg == "--config" and i + 1 < len(argv):
            hoisted += [arg, argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--config="):
            hoisted.append(arg)
        else:
            out.append(arg)
        i += 1
    return hoisted + out


PROG = "leaksentinel"

#: Usage errors from Typer's bundled click and from a standalone click (a plugin or helper may raise either).
_USAGE_ERRORS: tuple[type[Exception], ...] = (typer_click.exceptions.UsageError, click.UsageError)
_CLICK_ERRORS: tuple[type[Exception], ...] = (typer_click.exceptions.ClickException, click.ClickException)
_NO_ARGS_HELP: tuple[type[Exception], ...] = (
    typer_click.exceptions.NoArgsIsHelpError,
    getattr(click.exceptions, "NoArgsIsHelpError", typer_click.exceptions.NoArgsIsHelpError),
)
_EXITS: tuple[type[BaseException], ...] = (typer.Exit, click.exceptions.Exit)
_ABORTS: tuple[type[BaseException], ...] = (typer.Abort, click.exceptions.Abort)


def usage_line(exc: Exception) -> str:
    """A click usage error as one line with a hint: ``leaksentinel: no such command 'lst' (try: ...)``."""
    text = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    # "No such command 'lst'. Did you mean 'list'?" -> "no such command 'lst'; did you mean 'list'?"
    text = re.sub(r"\.\s+([A-Z])(?=[a-z])", lambda m: "; " + m.group(1).lower(), text)
    text = re.sub(r"\.\s+\(", " (", text).rstrip(".")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    ctx: Any = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else PROG
    return f"{PROG}: {text} (try: {path} --help)"


def main(argv: list[str] | None = None) -> int:
    """Run one command; every way it can end becomes an exit code (0, 1, 2, 130), never a traceback."""
    args = hoist_config(list(sys.argv[1:] if argv is None else argv))
    try:
        result = app(args=args, standalone_mode=False, prog_name=PROG)
        return int(result) if isinstance(result, int) else 0
    except _EXITS as exc:
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except _ABORTS:
        err("aborted")
        return 130
    except _NO_ARGS_HELP as exc:
        # A group named without a command: its help is the hint (stderr, and a usage error's code).
        sys.stderr.write(str(exc.format_message()).rstrip() + "\n")  # type: ignore[attr-defined]
        return 2
    except _USAGE_ERRORS as exc:
        err(usage_line(exc))
        return 2
    except _CLICK_ERRORS as exc:
        err(f"{PROG}: {exc.format_message()}")  # type: ignore[attr-defined]
        return 2
    except LeakSentinelError as exc:
        err(f"leaksentinel: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    # Everything the service writes into its home (database, keys, evidence, index segments, logs) is the
    # owner's alone: leaked personal data and webhook secrets live there. Child processes inherit it.
    os.umask(0o077)
    sys.exit(main())


if __name__ == "__main__":
    entry()
