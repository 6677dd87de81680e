"""Errors that the front doors turn into exit codes and HTTP statuses.

Why: bad input must end in a one-line message and exit 2, never a traceback, so every layer raises
these instead of letting library exceptions escape.
"""

from __future__ import annotations

__all__ = ["BadInput", "LeakSentinelError", "NotFound", "OperationalError"]


class LeakSentinelError(Exception):
    """Base of every error leaksentinel raises on purpose."""

    exit_code = 1


class BadInput(LeakSentinelError, ValueError):
    """The caller gave something unusable (exit 2, HTTP 400/422)."""

    exit_code = 2


class NotFound(BadInput):
    """A named object (tenant, source, alert...) does not exist (exit 2, HTTP 404)."""


class OperationalError(LeakSentinelError):
    """Something outside the caller's control failed: a source unreachable, a delivery failed (exit 1)."""

    exit_code = 1
