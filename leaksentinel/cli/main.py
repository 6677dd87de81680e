"""The ``leaksentinel`` command line (contract: shared/CLI-CONTRACT.md).

Why a wrapper around Typer: bad input must end in a one-line message on stderr and exit 2, an
operational failure in exit 1, and never in a traceback, whatever layer raised it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from core.errors import LeakSentinelError
from leaksentinel.cli import cmd_alerts, cmd_detect, cmd_search, cmd_service, cmd_sources, cmd_tenants
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


@app.callback()
def _root(
    config: Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")] = None,
) -> None:
    state.config = config
    state._settings = None


cmd_tenants.register(app)
cmd_detect.register(app)
cmd_sources.register(app)
cmd_alerts.register(app)
cmd_service.register(app)
cmd_search.register(app)
cmd_search.register_reindex(app)


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


def main(argv: list[str] | None = None) -> int:
    args = hoist_config(list(sys.argv[1:] if argv is None else argv))
    try:
        result = app(args=args, standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        err("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except LeakSentinelError as exc:
        err(f"leaksentinel: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
