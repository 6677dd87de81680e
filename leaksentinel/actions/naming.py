"""Names of tenants and sources: unique slugs, accepted wherever an id is.

Why never all digits: commands accept a name or an id, so a tenant named ``1`` would be confused with the
tenant whose id is 1 (one tenant reading another's alerts). ``\\Z`` (not ``$``) so a trailing newline fails.
"""

from __future__ import annotations

import re

from core.errors import BadInput

__all__ = ["check_no_controls", "check_slug"]

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
