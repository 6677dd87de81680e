"""Masked forms of values for display in alerts, webhooks and the console.

Why: an alert must let a person recognise which record leaked without the alert itself (an email, a
webhook body, a screenshot) becoming a second leak. Values of 4 or more characters are never shown whole.

Usage::

    mask("email", "john@acme.com")          # 'j***@acme.com'
    mask("card", "6212345678901232")        # '**** **** **** 1232'
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["mask"]

_STAR = "*"
_NON_DIGIT = re.compile(r"\D+")
_SEPARATORS = re.compile(r"[\s\-]+")


def _keep_ends(value: str, head: int = 1, tail: int = 1) -> str:
    """First `head` and last `tail` characters around stars; shortened so something is always hidden."""
    n = len(value)
    if n <= 1:
        return _STAR * n
    if n <= 3:
        return value[0] + _STAR * (n - 1)
    while head + tail >= n - 1 and (head > 1 or tail > 1):
        if head >= tail:
            head -= 1
        else:
            tail -= 1
    return value[:head] + _STAR * (n - head - tail) + (value[-tail:] if tail else "")


def _email(value: str) -> str:
    local, sep, domain = value.strip().rpartition("@")
    if not sep or not local:
        return _keep_ends(value)
    return f"{local[0]}***@{domain}"


def _phone(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    if len(digits) < 8:
        return _keep_ends(digits)
    if value.strip().startswith("+"):
        code_len = _country_code_len(digits)
        code, national = digits[:code_len], digits[code_len:]
        if len(national) >= 8:
            return f"+{code} {national[:3]}{_STAR * (len(national) - 7)}{national[-4:]}"
        return f"+{code} {_keep_ends(national, 1, 2)}"
    return digits[:3] + _STAR * (len(digits) - 7) + digits[-4:]


def _country_code_len(digits: str) -> int:
    """Length of the calling code at the start of an E.164 number, via libphonenumber's table."""
    try:
        from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
    except ImportError:  # pragma: no cover - phonenumbers is a dependency
        return 1
    for size in (1, 2, 3):
        if int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE:
            return size
    return 1


def _card(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    if len(digits) < 8:
        return _keep_ends(digits)
    return "**** **** **** " + digits[-4:]


def _iban(value: str) -> str:
    iban = _SEPARATORS.sub("", value).upper()
    if len(iban) < 10:
        return _keep_ends(iban)
    return iban[:2] + _STAR * (len(iban) - 6) + iban[-4:]


def _cn_id(value: str) -> str:
    cid = _SEPARATORS.sub("", value).upper()
    if len(cid) < 14:
        return _keep_ends(cid)
    return cid[:6] + _STAR * (len(cid) - 10) + cid[-4:]


def _ssn(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    if len(digits) != 9:
        return _keep_ends(digits)
    return "***-**-" + digits[-4:]


def _name(value: str) -> str:
    words = value.split()
    if len(words) == 1 and len(value) >= 2 and not value.isascii():
        return value[0] + _STAR * (len(value) - 1)  # 张三 → 张*
    return " ".join(word[0] + "***" for word in words) if words else ""


def _api_key(value: str) -> str:
    key = value.strip()
    if len(key) < 12:
        return _keep_ends(key)
    return key[:4] + "…" + key[-2:]


def _dob(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    if len(digits) >= 4:
        return digits[:4] + "-**-**" if len(digits) == 8 and value.strip()[:4].isdigit() else "****-**-**"
    return _keep_ends(value)


_MASKS: dict[str, Callable[[str], str]] = {
    "email": _email,
    "phone": _phone,
    "card": _card,
    "iban": _iban,
    "cn_id": _cn_id,
    "ssn": _ssn,
    "name": _name,
    "api_key": _api_key,
    "dob": _dob,
}


def mask(field_type: str, value: str) -> str:
    """A display form of `value` that hides most of it; unknown types keep the first and last character."""
    masked = _MASKS.get(field_type, _keep_ends)(value)
    if len(value) >= 4 and masked == value:  # last line of defence: never echo a value back
        return _keep_ends(value)
    return masked
