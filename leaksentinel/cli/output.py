"""Printing for the CLI: JSON Lines for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

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
        table.add_row(*[_cell(row.get(c)) for c in columns])
    Console(highlight=False).print(table if count else f"(no {title or 'rows'})")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def err(message: str) -> None:
    """One line on stderr, never wrapped (scripts read it)."""
    sys.stderr.write(" ".join(message.split()) + "\n")
    sys.stderr.flush()
