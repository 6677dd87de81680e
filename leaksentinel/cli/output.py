"""Printing for the CLI: JSON Lines for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["emit_list", "emit_object", "err"]


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def emit_object(obj: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(_json(obj) + "\n")
    else:
        sys.stdout.write((human if human is not None else _human(obj)) + "\n")
    sys.stdout.flush()


def _human(obj: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v if not isinstance(v, list | dict) else _json(v)}" for k, v in obj.items())


def emit_list(
    rows: Iterable[dict[str, Any]], as_json: bool, columns: Sequence[str], title: str | None = None
) -> None:
    if as_json:
        for row in rows:
            sys.stdout.write(_json(row) + "\n")
        sys.stdout.flush()
        return
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    count = 0
    for row in rows:
        count += 1
        # Text, not markup: a posting title such as "[/b]" is data, never a rich tag (nor a crash).
        table.add_row(*[Text(_cell(row.get(c))) for c in columns])
    _console().print(table if count else Text(f"(no {title or 'rows'})"))


#: Width of a table written to a pipe or a file: wide enough that no row is ever cut or wrapped.
PIPE_WIDTH = 1_000_000


def _console() -> Console:
    """A terminal gets a table fitted to its width; a pipe or a file gets every table whole.

    Why: rich assumes 80 columns when stdout is not a terminal, which cut URLs and errors in
    ``source list | less`` and in scripts that grep the table.
    """
    out = sys.stdout
    if out.isatty():
        return Console(file=out, highlight=False)
    return Console(file=out, highlight=False, width=PIPE_WIDTH, no_color=True, soft_wrap=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def err(message: str) -> None:
    """One line on stderr, never wrapped (scripts read it).

    Control characters (a name typed or pasted with an escape sequence) are shown escaped: an error
    message must not be able to drive the terminal.
    """
    line = " ".join(message.split())
    sys.stderr.write("".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in line) + "\n")
    sys.stderr.flush()
