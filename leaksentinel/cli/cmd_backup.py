"""``backup FILE`` / ``restore FILE``: the embedded home as one checked archive (leaksentinel.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_object

JSON = Annotated[bool, typer.Option("--json", help="Machine output (one JSON object).")]


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def _backup(
        file: Annotated[Path, typer.Argument(help="The archive to write (.tar.gz), outside the home.")],
        force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
        as_json: JSON = False,
    ) -> None:
        """Copy the home (database, keys, evidence, indexes) consistently, also while `run` is up."""
        from leaksentinel.backup import backup_home

        result = backup_home(state.settings, file, force=force)
        emit_object(
            result,
            as_json,
            human=f"backed up {result['files']} files ({result['bytes']} bytes) to {result['backup']}",
        )

    @app.command("restore")
    def _restore(
        file: Annotated[Path, typer.Argument(help="An archive written by `leaksentinel backup`.")],
        as_json: JSON = False,
    ) -> None:
        """Restore a backup into an empty or new home (every hash is checked before anything is written)."""
        from leaksentinel.backup import restore_home

        result = restore_home(state.settings, file)
        rebuilt = f"; rebuilt {', '.join(result['rebuilt'])}" if result["rebuilt"] else ""
        emit_object(
            result,
            as_json,
            human=f"restored {result['files']} files into {result['restored']}{rebuilt}",
        )
