"""Names of tenants and sources: unique slugs, accepted wherever an id is."""

from __future__ import annotations

import re

from core.errors import BadInput

__all__ = ["check_slug"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_slug(name: str, what: str) -> str:
    if not _SLUG.match(name or ""):
        raise BadInput(
            f"{what} name {name!r} is not a slug (lower-case letters, digits, '-' and '_', at most 64)"
        )
    return name
