"""``leaksentinel hash``: the company's side, run on its own machine, never opening a connection.

Why validate before printing: a malformed CSV must end in one clear error, not in half a file of
hashes that a script then registers; the file is read twice (check, then hash) and never held whole.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from core.canonical import FIELD_TYPES, UnknownFieldType, canonicalize
from core.errors import BadInput
from core.hashing import SCHEME_VERSION, keyed_hash

__all__ = ["ColumnPlan", "hash_csv", "hash_values", "plan_columns"]

csv.field_size_limit(1 << 20)
MAX_LINE_CHARS = 1 << 20


class ColumnPlan:
    """Which CSV column is the record key and which field type every other column holds."""

    def __init__(self, header: list[str], key_column: str | None) -> None:
        names = [h.strip() for h in header]
        if not names or not any(names):
            raise BadInput("the CSV has no header row naming each column's field type")
        self.key_index: int | None = None
        if key_column is not None:
            if key_column not in names:
                raise BadInput(f"key column {key_column!r} is not in the CSV header {names}")
            self.key_index = names.index(key_column)
        self.types: list[tuple[int, str]] = []
        for index, name in enumerate(names):
            if index == self.key_index:
                continue
            field_type = name.lower()
            if field_type not in FIELD_TYPES:
                hint = "" if key_column else "; name the record key column with --key-column"
                raise BadInput(
                    f"unknown field type {name!r} in CSV column {index + 1} (known: {', '.join(FIELD_TYPES)}{hint})"
                )
            self.types.append((index, field_type))
        self.width = len(names)


def plan_columns(header: list[str], key_column: str | None) -> ColumnPlan:
    return ColumnPlan(header, key_column)


def _rows(stream: IO[str], origin: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(stream, strict=True)
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise BadInput(f"{origin}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{origin}: not UTF-8 text") from None


def check_csv(stream: IO[str], origin: str, key_column: str | None) -> ColumnPlan:
    rows = _rows(stream, origin)
    first = next(rows, None)
    if first is None:
        raise BadInput(f"{origin}: empty CSV (expected a header naming each column's field type)")
    plan = ColumnPlan(first[1], key_column)
    for line, row in rows:
        if row and len(row) != plan.width:
            raise BadInput(
                f"{origin}: malformed CSV at line {line}: {len(row)} columns, the header has {plan.width}"
            )
    return plan


def hash_csv(
    path: Path | str,
    key: bytes,
    *,
    key_column: str | None = None,
    region: str | None = None,
    stream: IO[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one output object per data row; the file is validated completely first."""
    origin = str(path)
    if stream is None:
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                plan = check_csv(fh, origin, key_column)
        except FileNotFoundError:
            raise BadInput(f"no such file: {path}") from None
        except IsADirectoryError:
            raise BadInput(f"{path} is a directory") from None
        fh2: IO[str] = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed in finally
    else:
        lines = list(stream)  # standard input cannot be read twice
        plan = check_csv(iter(lines), origin, key_column)  # type: ignore[arg-type]
        fh2 = iter(lines)  # type: ignore[assignment]
    try:
        rows = _rows(fh2, origin)
        next(rows, None)
        number = 0
        for _line, row in rows:
            if not row or not any(cell.strip() for cell in row):
                continue
            number += 1
            record_key = row[plan.key_index].strip() if plan.key_index is not None else str(number)
            fields: dict[str, Any] = {}
            for index, field_type in plan.types:
                canonical = canonicalize(field_type, row[index], region)
                if canonical is None:
                    continue
                digest = keyed_hash(key, field_type, canonical)
                if field_type in fields:
                    prior = fields[field_type]
                    fields[field_type] = [*prior, digest] if isinstance(prior, list) else [prior, digest]
                else:
                    fields[field_type] = digest
            out: dict[str, Any] = {"record_key": record_key, "fields": fields, "v": SCHEME_VERSION}
            if region:
                out["region"] = region
            yield out
    finally:
        if stream is None:
            fh2.close()


def hash_values(
    lines: Iterable[str], key: bytes, field_type: str, *, region: str | None = None
) -> Iterator[dict[str, Any]]:
    """``hash --type T``: one value per line; the line number is the record key."""
    if field_type not in FIELD_TYPES:
        raise UnknownFieldType(field_type)
    for number, line in enumerate(lines, 1):
        value = line.rstrip("\r\n")
        if not value.strip():
            continue
        canonical = canonicalize(field_type, value[:MAX_LINE_CHARS], region)
        if canonical is None:
            print(f"line {number}: not a valid {field_type}, skipped", file=sys.stderr)
            continue
        fields = {field_type: keyed_hash(key, field_type, canonical)}
        out: dict[str, Any] = {"record_key": str(number), "fields": fields, "v": SCHEME_VERSION}
        if region:
            out["region"] = region
        yield out
