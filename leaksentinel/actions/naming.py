"""Names of tenants and sources: unique slugs, accepted wherever an id is.

Why never all digits: commands accept a name or an id, so a tenant named ``1`` would be confused with the
tenant whose id is 1 (one tenant reading another's alerts). ``\\Z`` (not ``$``) so a trailing newline fails.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from core.errors import BadInput

T = TypeVar("T")

__all__ = ["MAX_ID", "as_row_id", "check_no_controls", "check_slug", "get_by_id"]

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_slug(name: str, what: str) -> str:
    if not isinstance(name, str) or not _SLUG.match(name):
        raise BadInput(
            f"{what} name {name!r} is not a slug (lower-case letters, digits, '-' and '_', at most 64)"
        )
    if name.isdigit():
        raise BadInput(f"{what} name {name!r} is all digits: it would read as an id; add a letter")
    return name


def check_no_controls(value: str, what: str) -> str:
    """Refuse NUL and other control characters (they hide text in logs, tables and terminals)."""
    if _CONTROLS.search(value):
        raise BadInput(f"{what} has a control character (NUL, newline, escape ...)")
    return value


#: Ids are 32-bit on PostgreSQL (SERIAL): a larger number names no row (and must not reach the database).
MAX_ID = 2**31 - 1


def as_row_id(value: object) -> int | None:
    """``"42"`` -> 42; None for anything that cannot be a stored id (not digits, 0, beyond ``MAX_ID``)."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def get_by_id(sess: Any, model: type[T], raw: object, what: str) -> T | None:
    """The row of ``model`` whose id a person typed; ``BadInput`` when it is not a number at all."""
    text = str(raw)
    if not (text.isascii() and text.isdigit()) or len(text) > 40:
        raise BadInput(f"{what} id must be a number, got {text[:64]!r}")
    row_id = as_row_id(text)
    return None if row_id is None else sess.get(model, row_id)
