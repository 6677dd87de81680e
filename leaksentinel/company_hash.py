"""``leaksentinel hash``: the company's side, run on its own machine, never opening a connection.

Why validate before printing: a malformed CSV must end in one clear error, not in half a file of
hashes that a script then registers; a regular file is read twice (check, then hash) and never held
whole. Standard input and other non-regular files (pipes, devices) cannot be read twice: they are held
in memory up to ``MAX_BUFFERED_CHARS``, and every physical line is bounded by ``MAX_LINE_CHARS``, so
``--csv /dev/zero`` ends in a clear error instead of eating the machine's memory.

Why report refused values: a card failing Luhn or a malformed email cannot be matched in a leak, so
it is not hashed; a company that registers its data must learn how many of its values were dropped
(by type, with line numbers to fix), and ``--strict`` turns any refusal into an error.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from core.canonical import FIELD_TYPES, UnknownFieldType, canonicalize
from core.errors import BadInput
from core.hashing import SCHEME_VERSION, keyed_hash

__all__ = [
    "MAX_BUFFERED_CHARS",
    "MAX_LINE_CHARS",
    "MAX_RECORD_KEY_CHARS",
    "ColumnPlan",
    "Refusals",
    "bounded_lines",
    "check_record_key",
    "hash_csv",
    "hash_values",
    "open_input",
    "plan_columns",
]

csv.field_size_limit(1 << 20)
#: One physical line of input (a CSV row or a value); longer is not a data file.
MAX_LINE_CHARS = 1 << 20
#: Standard input or a pipe/device, held in memory because it cannot be read twice.
MAX_BUFFERED_CHARS = 256 << 20
#: What ``watch add --records`` stores as a record key.
MAX_RECORD_KEY_CHARS = 256
_BOM = "\ufeff"
#: What a held line costs beyond its characters (a str object and its list slot), so that many short
#: lines are bounded as well as a few long ones.
_LINE_OVERHEAD = 64


class Refusals:
    """Values ``hash`` refused (by type, with their first line numbers) and rows left with no valid value."""

    FIRST_LINES = 5

    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}
        self.lines: dict[str, list[int]] = {}
        self.empty_rows = 0
        self.empty_lines: list[int] = []

    def refuse(self, field_type: str, line: int) -> None:
        self.by_type[field_type] = self.by_type.get(field_type, 0) + 1
        first = self.lines.setdefault(field_type, [])
        if len(first) < self.FIRST_LINES:
            first.append(line)

    def empty_row(self, line: int) -> None:
        self.empty_rows += 1
        if len(self.empty_lines) < self.FIRST_LINES:
            self.empty_lines.append(line)

    def __bool__(self) -> bool:
        return bool(self.by_type or self.empty_rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "refused": dict(self.by_type),
            "lines": {k: list(v) for k, v in self.lines.items()},
            "rows_without_value": self.empty_rows,
            "rows_without_value_lines": list(self.empty_lines),
        }

    def summary(self) -> str:
        """One line: ``refused 3 values (card 2: lines 4, 9; email 1: line 7); 1 row ... left out (line 7)``."""
        parts: list[str] = []
        if self.by_type:
            total = sum(self.by_type.values())
            per_type = "; ".join(
                f"{t} {n}: {_lines(self.lines[t], n)}" for t, n in sorted(self.by_type.items())
            )
            parts.append(f"refused {total} invalid value{'s' if total != 1 else ''} ({per_type})")
        if self.empty_rows:
            n = self.empty_rows
            parts.append(
                f"{n} row{'s' if n != 1 else ''} with no valid value left out ({_lines(self.empty_lines, n)})"
            )
        return "; ".join(parts)


def _lines(first: list[int], count: int) -> str:
    shown = ", ".join(str(n) for n in first)
    more = ", ..." if count > len(first) else ""
    return f"line{'s' if count > 1 else ''} {shown}{more}"


def bounded_lines(
    stream: IO[str] | Iterable[str],
    origin: str,
    *,
    max_line: int = MAX_LINE_CHARS,
    max_total: int | None = None,
) -> Iterator[str]:
    """The stream's lines, each at most ``max_line`` characters and all together at most ``max_total``
    (counting each line's cost in memory, ``_LINE_OVERHEAD`` more than its characters).

    Why not ``for line in stream``: a file without newlines (``/dev/zero``) is one endless line.
    """
    readline = getattr(stream, "readline", None)
    total = 0
    number = 0
    iterator = iter(stream) if readline is None else None
    while True:
        try:
            line = readline(max_line + 1) if readline is not None else next(iterator, "")  # type: ignore[arg-type]
        except UnicodeDecodeError:
            raise BadInput(f"{origin}: not UTF-8 text (near line {number + 1})") from None
        if not line:
            return
        number += 1
        if len(line) > max_line and not line.endswith("\n"):
            raise BadInput(
                f"{origin}: line {number} is longer than {max_line} characters (not a CSV or list of values?)"
            )
        if "\x00" in line:
            raise BadInput(f"{origin}: line {number} holds a NUL byte (a binary file, not text?)")
        total += len(line) + _LINE_OVERHEAD
        if max_total is not None and total > max_total:
            raise BadInput(
                f"{origin}: more than {max_total // (1 << 20)} MiB to hold in memory "
                "(standard input, a pipe or a device is read once and kept; give a regular file)"
            )
        yield line


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None


def open_input(path: Path | str) -> IO[str]:
    """A text file opened for reading, a UTF-8 byte-order mark dropped (Excel writes one)."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{path} is a directory")
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None


def check_record_key(key: str, origin: str, line: int) -> str:
    """Record keys are opaque but printable: a NUL or control character would corrupt what stores them."""
    for ch in key:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            raise BadInput(
                f"{origin}: line {line}: the record key holds a control character (U+{ord(ch):04X}); "
                "record keys must be printable"
            )
    if len(key) > MAX_RECORD_KEY_CHARS:
        raise BadInput(
            f"{origin}: line {line}: the record key is longer than {MAX_RECORD_KEY_CHARS} characters"
        )
    return key


class ColumnPlan:
    """Which CSV column is the record key and which field type every other column holds."""

    def __init__(self, header: list[str], key_column: str | None) -> None:
        names = [h.strip() for h in header]
        if names:
            names[0] = names[0].lstrip(_BOM).strip()  # a BOM left by a stream that was not opened utf-8-sig
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


def _rows(lines: Iterable[str], origin: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line of the row, cells); a quoted cell may span lines."""
    reader = csv.reader(lines, strict=True)
    last = 0
    try:
        for row in reader:
            yield last + 1, row
            last = reader.line_num
    except csv.Error as exc:
        raise BadInput(f"{origin}: malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{origin}: not UTF-8 text") from None


def _hash_row(
    plan: ColumnPlan, row: list[str], line: int, key: bytes | None, region: str | None, refusals: Refusals
) -> dict[str, Any]:
    """The row's fields (hashed when ``key`` is given); refused values and an empty row go to ``refusals``."""
    fields: dict[str, Any] = {}
    for index, field_type in plan.types:
        value = row[index]
        if not value.strip():
            continue
        canonical = canonicalize(field_type, value, region)
        if canonical is None:
            refusals.refuse(field_type, line)
            continue
        digest = keyed_hash(key, field_type, canonical) if key is not None else ""
        if field_type in fields:
            prior = fields[field_type]
            fields[field_type] = [*prior, digest] if isinstance(prior, list) else [prior, digest]
        else:
            fields[field_type] = digest
    if not fields:
        refusals.empty_row(line)
    return fields


def _is_blank(row: list[str]) -> bool:
    return not row or not any(cell.strip() for cell in row)


def check_csv(
    lines: Iterable[str],
    origin: str,
    key_column: str | None,
    *,
    strict: bool = False,
    region: str | None = None,
) -> ColumnPlan:
    """The whole file's shape (and, with ``strict``, every value) checked before anything is printed."""
    rows = _rows(lines, origin)
    first = next(rows, None)
    if first is None:
        raise BadInput(f"{origin}: empty CSV (expected a header naming each column's field type)")
    plan = ColumnPlan(first[1], key_column)
    refusals = Refusals()
    for line, row in rows:
        if _is_blank(row):
            continue
        if len(row) != plan.width:
            raise BadInput(
                f"{origin}: malformed CSV at line {line}: {len(row)} columns, the header has {plan.width}"
            )
        if plan.key_index is not None:
            check_record_key(row[plan.key_index].strip(), origin, line)
        if strict:
            _hash_row(plan, row, line, None, region, refusals)
    if strict and refusals:
        raise BadInput(f"{origin}: {refusals.summary()} (--strict)")
    return plan


def hash_csv(
    path: Path | str,
    key: bytes,
    *,
    key_column: str | None = None,
    region: str | None = None,
    stream: IO[str] | None = None,
    refusals: Refusals | None = None,
    strict: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield one output object per data row that has at least one valid value.

    The input is validated completely first (shape, record keys, and with ``strict`` every value).
    A row whose every value is refused (or blank) is not output: a record with no hash can never
    match, and registering it would only pretend it is watched. It is counted in ``refusals`` beside
    the refused values, so the caller can say which lines to fix. Its number is still used: the
    default record key (the 1-based data row number) of every later row stays the same.
    """
    origin = str(path)
    refusals = refusals if refusals is not None else Refusals()
    buffered: list[str] | None = None
    if stream is not None:
        buffered = list(bounded_lines(stream, origin, max_total=MAX_BUFFERED_CHARS))
    elif not _is_regular(Path(path)):
        if Path(path).is_dir():
            raise BadInput(f"{path} is a directory")
        with open_input(path) as fh:
            buffered = list(bounded_lines(fh, origin, max_total=MAX_BUFFERED_CHARS))
    if buffered is not None:
        if buffered:
            buffered[0] = buffered[0].lstrip(_BOM)
        plan = check_csv(iter(buffered), origin, key_column, strict=strict, region=region)
    else:
        with open_input(path) as fh:
            plan = check_csv(bounded_lines(fh, origin), origin, key_column, strict=strict, region=region)
    return _hash_rows(path, plan, buffered, key, region, refusals)


def _hash_rows(
    path: Path | str,
    plan: ColumnPlan,
    buffered: list[str] | None,
    key: bytes,
    region: str | None,
    refusals: Refusals,
) -> Iterator[dict[str, Any]]:
    origin = str(path)
    fh: IO[str] | None = None
    try:
        if buffered is None:
            fh = open_input(path)
            lines: Iterable[str] = bounded_lines(fh, origin)
        else:
            lines = iter(buffered)
        rows = _rows(lines, origin)
        next(rows, None)
        number = 0
        for line, row in rows:
            if _is_blank(row):
                continue
            number += 1
            record_key = row[plan.key_index].strip() if plan.key_index is not None else str(number)
            fields = _hash_row(plan, row, line, key, region, refusals)
            if not fields:
                continue
            out: dict[str, Any] = {"record_key": record_key, "fields": fields, "v": SCHEME_VERSION}
            if region:
                out["region"] = region
            yield out
    finally:
        if fh is not None:
            fh.close()


def hash_values(
    lines: Iterable[str],
    key: bytes,
    field_type: str,
    *,
    region: str | None = None,
    refusals: Refusals | None = None,
    origin: str = "<stdin>",
) -> Iterator[dict[str, Any]]:
    """``hash --type T``: one value per line; the line number is the record key.

    Invalid values are counted in ``refusals`` (with their line numbers), not printed one by one.
    """
    if field_type not in FIELD_TYPES:
        raise UnknownFieldType(field_type)
    refusals = refusals if refusals is not None else Refusals()
    for number, line in enumerate(bounded_lines(lines, origin), 1):
        value = line.rstrip("\r\n")
        if number == 1:
            value = value.lstrip(_BOM)
        if not value.strip():
            continue
        canonical = canonicalize(field_type, value, region)
        if canonical is None:
            refusals.refuse(field_type, number)
            continue
        fields = {field_type: keyed_hash(key, field_type, canonical)}
        out: dict[str, Any] = {"record_key": str(number), "fields": fields, "v": SCHEME_VERSION}
        if region:
            out["region"] = region
        yield out
