"""Canonical forms of the field types a company registers and the matcher looks for.

Why: a registered value and the same value found in a posting only meet if both sides write it the same
way. `leaksentinel hash` (company side) and the matcher (service side) both call `canonicalize`, so each
type has exactly one normalisation. `None` means "not a valid value of this type" (bad checksum, impossible
date...): such values are never hashed, which keeps junk out of the registry and out of lookups.

Usage::

    canonicalize("phone", "0086 138 0013 8000")          # '+8613800138000'
    canonicalize("phone", "138 0013 8000", region="CN")  # '+8613800138000'
    canonicalize("card", "4111-1111-1111-1112")          # None (Luhn)

Rules worth knowing (documented here because both sides depend on them):
- dob: D/M/Y vs M/D/Y is read from the first two numbers when one of them is > 12; when both are <= 12
  the region decides: US (and a few M/D/Y countries) → M/D/Y, any other region or none → D/M/Y.
  Two-digit years are rejected (ambiguous). Years 1900..2099 only.
- iban: a country in the ISO 13616 registry must have its registered length; an unknown country
  code is accepted at 15..34 characters (registry additions must not break hashing), mod-97 always.
- card, iban, cn_id, ssn: spaces, hyphens and dots between groups are dropped, full-width forms read
  as ASCII (NFKC), IBANs and the id's check character `x` upper-cased: every writing of one number has
  one canonical form.
- api_key: stripped only, case kept, at least 16 characters, no whitespace inside.
- Values longer than `MAX_VALUE_CHARS` are rejected before any work is done.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import phonenumbers

from core.errors import BadInput
from core.phone_national import UNDECIDED, national_e164

__all__ = [
    "CORROBORATING",
    "FIELD_TYPES",
    "IBAN_LENGTHS",
    "IDENTIFYING",
    "MAX_VALUE_CHARS",
    "MDY_REGIONS",
    "UnknownFieldType",
    "canonicalize",
    "canonicalize_folded",
    "cn_id_check_digit",
    "fold",
    "fold_reference",
    "luhn_ok",
    "name_from_folded",
    "text_from_folded",
    "username_from_folded",
]

FIELD_TYPES: tuple[str, ...] = (
    "email",
    "phone",
    "card",
    "iban",
    "cn_id",
    "ssn",
    "username",
    "api_key",
    "name",
    "dob",
    "text",
    "passport",
    "ip",
)
IDENTIFYING: frozenset[str] = frozenset(
    {"email", "phone", "card", "iban", "cn_id", "ssn", "username", "api_key", "passport"}
)
CORROBORATING: frozenset[str] = frozenset({"name", "dob", "text", "ip"})

MAX_VALUE_CHARS = 1024


class UnknownFieldType(BadInput):
    """A field type outside `FIELD_TYPES` was named (a typo in a CSV header, say)."""

    def __init__(self, field_type: str) -> None:
        super().__init__(f"unknown field type {field_type!r} (known: {', '.join(FIELD_TYPES)})")
        self.field_type = field_type


# --------------------------------------------------------------------------- shared text folding


def _nfkc(value: str) -> str:
    """NFKC, skipped for ASCII (its own normal form) because it is the hot path."""
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def fold(value: str) -> str:
    """NFKC + case-fold, repeated until stable so that folding a folded value changes nothing.

    The same result as :func:`fold_reference`. Each round of the reference, ``NFKC(value).casefold()``,
    is done by core.search._tokens's ``fold`` when the extension is built (one pass in C; a per-code-point
    table and unicodedata only where characters compose: see tokens.c), else by :func:`_fold_py`."""
    if value.isascii():
        return value.lower()
    native = _native_round
    if native is None:
        return _fold_py(value)
    for _ in range(4):
        folded, stable = native(value)
        # stable: every character of the fold is a boundary character that is its own NFKC (tokens.c),
        # so the fold is its own NFKC without the check (about 1.4 ns a character on a Chinese text)
        if stable or unicodedata.is_normalized("NFKC", folded):
            return folded  # folded.casefold() == folded: casefold is idempotent on every code point
        value = folded
    return value


def _native_round_function() -> Callable[[str], tuple[str, bool]] | None:
    import importlib

    try:
        tokens = importlib.import_module("core.search._tokens")
    except ImportError:  # no C compiler at install: the Python path below
        return None
    round_: Callable[[str], tuple[str, bool]] = tokens.fold_checked
    return round_


#: One round of the reference in C, with whether its result is certainly its own NFKC, or None (tests set
#: it to None to exercise the Python path).
_native_round: Callable[[str], tuple[str, bool]] | None = _native_round_function()


def _fold_py(value: str) -> str:
    """:func:`fold` in Python, faster than the reference on long texts: folding is local to a line (a line
    end is a starter that nothing composes with, and case folding is per character), so a long text is
    folded in pieces cut on line ends, its ASCII stretches only lower-cased (ASCII is its own NFKC and
    ``lower`` is ``casefold`` on ASCII), and NFKC of a long piece goes through a per-character table
    first (see :func:`_nfkc_long`)."""
    if value.isascii():
        return value.lower()
    if len(value) <= _FOLD_PIECE:
        return _fold_unicode(value)
    parts: list[str] = []
    pos, size = 0, len(value)
    search = _NON_ASCII.search
    while pos < size:
        match = search(value, pos)
        if match is None:
            parts.append(value[pos:].lower())
            break
        found = match.start()
        start = max(pos, value.rfind("\n", pos, found) + 1)  # the line of the first non-ASCII character
        if start > pos:
            parts.append(value[pos:start].lower())  # whole ASCII lines
        end = value.find("\n", min(found + _FOLD_PIECE, size))
        end = size if end < 0 else end + 1
        parts.append(_fold_unicode(value[start:end]))
        pos = end
    return "".join(parts)


def fold_reference(value: str) -> str:
    """The reference of :func:`fold`: the whole value folded at once, round after round."""
    if value.isascii():
        return value.lower()
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", value).casefold()
        if unicodedata.is_normalized("NFKC", folded) and folded.casefold() == folded:
            return folded
        value = folded
    return value


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: `fold` cuts texts longer than this into pieces; NFKC goes through the table from this many characters.
_FOLD_PIECE = 8192
_TABLE_MIN = 1024
_nfkc_table_cache: list[Any] = []


def _fold_unicode(value: str) -> str:
    """`fold_reference` of a non-ASCII value (its check ``folded.casefold() == folded`` always holds:
    ``str.casefold`` is idempotent on every code point, which a test checks)."""
    for _ in range(4):
        folded = _nfkc_long(value).casefold()
        if unicodedata.is_normalized("NFKC", folded):
            return folded
        value = folded
    return value


def _nfkc_long(value: str) -> str:
    """``unicodedata.normalize("NFKC", value)``, faster for a long value that is not yet normalized.

    Each BMP character whose NFKC alone is one other character (full-width forms, the ideographic space,
    compatibility ideographs...) is first replaced by it through a table, in numpy. Replacing characters
    by their NFKC keeps the compatibility decomposition of the text (NFKD(NFKC(c)) is NFKD(c)), hence its
    NFKC: when the result is already normalized, it is the NFKC of the value; else it is normalized."""
    if len(value) < _TABLE_MIN:
        return unicodedata.normalize("NFKC", value)
    if unicodedata.is_normalized("NFKC", value):
        return value  # what normalize returns, without checking it again
    import numpy as np  # only for long non-ASCII texts (the company-side hashing never needs it)

    table = _nfkc_table()
    codes = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    bmp = codes < 0x10000
    if bmp.all():
        mapped = table.take(codes)  # take: much faster than indexing by a uint32 array
    else:
        mapped = codes.copy()
        mapped[bmp] = table.take(codes[bmp])
    text = mapped.tobytes().decode("utf-32-le", "surrogatepass")
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def _nfkc_table() -> Any:
    """uint32 table over the BMP: a character's NFKC when that is one other character, else itself."""
    if not _nfkc_table_cache:
        import numpy as np

        table = np.arange(0x10000, dtype=np.uint32)
        for code in range(0x80, 0x10000):
            char = chr(code)
            if not unicodedata.decomposition(char):  # no mapping: its NFKC alone is itself
                continue
            normal = unicodedata.normalize("NFKC", char)
            if len(normal) == 1 and normal != char:
                table[code] = ord(normal)
        _nfkc_table_cache.append(table)
    return _nfkc_table_cache[0]


def _collapse(value: str) -> str:
    return " ".join(value.split())


# --------------------------------------------------------------------------- email

_EMAIL_LOCAL_BAD = re.compile(r"[\s@<>()\[\]\\,;:\"]")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


def _email(value: str) -> str | None:
    """`local@domain.tld`, whole address folded, domain as lower-case punycode."""
    address = fold(value.strip())
    local, sep, domain = address.rpartition("@")
    if not sep or not local or len(local) > 64 or _EMAIL_LOCAL_BAD.search(local):
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    ascii_domain = _idna(domain.rstrip("."))
    if ascii_domain is None:
        return None
    return f"{local}@{ascii_domain}"


def _idna(domain: str) -> str | None:
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    domain = domain.lower()
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not _TLD.fullmatch(labels[-1]):
        return None
    if not all(_LDH_LABEL.fullmatch(label) for label in labels):
        return None
    return domain


# --------------------------------------------------------------------------- phone

_PHONE_EXTENSION = re.compile(r"\s*(?:ext\.?|x|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"\+?[0-9()\-. /]{4,40}")


def _phone(value: str, region: str | None) -> str | None:
    """E.164 through libphonenumber; `region` reads national numbers; must be a valid number."""
    text = _PHONE_EXTENSION.sub("", _nfkc(value).strip())
    text = " ".join(text.split())
    if text.startswith("(+") and ")" in text:  # "(+86) 138 1234 5678": the country code in brackets
        text = "+" + text[2:].replace(")", " ", 1)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not _PHONE_CHARS.fullmatch(text):
        return None
    if not text.startswith("+") and not region:
        return None
    if region:  # a plain national number: read from the metadata (~7 µs instead of ~70)
        known = national_e164(text, region.upper())
        if known != UNDECIDED:
            return known
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --------------------------------------------------------------------------- card

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_SEPARATORS = re.compile(r"[\s\-]+")
# Identifiers (card, iban, cn_id, ssn) are also written in dotted groups (`4111.1111.1111.1111`); after
# NFKC, full-width digits, letters, `Ｘ` and ideographic spaces are ASCII, so every writing meets.
_ID_SEPARATORS = re.compile(r"[\s\-.]+")


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of an ASCII digit string."""
    odd = sum(ord(c) - 48 for c in digits[-1::-2])
    even = sum(_DOUBLED[ord(c) - 48] for c in digits[-2::-2])
    return (odd + even) % 10 == 0


def _ascii_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _card(value: str) -> str | None:
    """Digits only, 12..19 of them, Luhn-valid (covers UnionPay 62... at 16..19 digits)."""
    digits = _ID_SEPARATORS.sub("", _nfkc(value))
    if not (12 <= len(digits) <= 19 and _ascii_digits(digits) and luhn_ok(digits)):
        return None
    return digits


# --------------------------------------------------------------------------- iban

# ISO 13616 registry lengths (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def _iban(value: str) -> str | None:
    """Separators removed, upper case, registered length, ISO 7064 mod-97 == 1."""
    iban = _ID_SEPARATORS.sub("", _nfkc(value)).upper()
    if not iban.isascii() or not _IBAN_SHAPE.fullmatch(iban):
        return None
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return None
    rearranged = iban[4:] + iban[:4]
    if int("".join(str(int(c, 36)) for c in rearranged)) % 97 != 1:
        return None
    return iban


# --------------------------------------------------------------------------- cn_id

_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"
_CN_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)


def cn_id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits."""
    total = sum(w * (ord(c) - 48) for w, c in zip(_CN_WEIGHTS, first17, strict=True))
    return _CN_CHECK[total % 11]


def _cn_id(value: str) -> str | None:
    """18 characters, province code, real birth date, GB 11643 check (X upper case)."""
    cid = _ID_SEPARATORS.sub("", _nfkc(value)).upper()
    if len(cid) != 18 or not _ascii_digits(cid[:17]) or int(cid[:2]) not in _CN_PROVINCES:
        return None
    if _date(int(cid[6:10]), int(cid[10:12]), int(cid[12:14])) is None:
        return None
    if cn_id_check_digit(cid[:17]) != cid[17]:
        return None
    return cid


# --------------------------------------------------------------------------- ssn


def _ssn(value: str) -> str | None:
    """US SSN as 9 digits; never-issued areas (000, 666, 9xx), group 00 and serial 0000 rejected."""
    ssn = _ID_SEPARATORS.sub("", _nfkc(value))
    if len(ssn) != 9 or not _ascii_digits(ssn):
        return None
    area, group, serial = ssn[:3], ssn[3:5], ssn[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return ssn


# --------------------------------------------------------------------------- username, api_key, passport


def _username(value: str) -> str | None:
    return username_from_folded(fold(value))


def username_from_folded(folded: str) -> str | None:
    """Username rule on an already folded value (lets the extractor fold a field once)."""
    name = folded.strip()
    # isprintable() is False for every whitespace but " ", so this also means "no whitespace"
    if not 3 <= len(name) <= 64 or " " in name or not name.isprintable():
        return None
    return name


def _api_key(value: str) -> str | None:
    """Stripped only: keys are case-sensitive opaque tokens."""
    key = value.strip()
    if len(key) < 16 or " " in key or not key.isprintable():
        return None
    return key


def _passport(value: str) -> str | None:
    """Upper-case alphanumerics without separators, 6..12 long, at least one digit."""
    number = _SEPARATORS.sub("", _nfkc(value)).upper()
    if not (6 <= len(number) <= 12 and number.isascii() and number.isalnum()):
        return None
    if not any(c.isdigit() for c in number):
        return None
    return number


def _ip(value: str) -> str | None:
    """The address in its standard compressed form (IPv4 dotted quad, IPv6 RFC 5952)."""
    try:
        return ipaddress.ip_address(_nfkc(value).strip()).compressed
    except ValueError:
        return None


# --------------------------------------------------------------------------- name, text


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x9FFF  # CJK unified + ext A
        or 0xAC00 <= code <= 0xD7AF  # hangul
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3134F
    )


_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`")


# Names: the punctuation ! " ' ( ) , - . : ; ? separates words; other ASCII punctuation (@ # _ / ...) means "not a name".
_ASCII_NOT_NAME = re.compile(r"[^a-z\s!\"'(),\-.:;?]")
_NAME_REJECT = frozenset("#%&*/@[\\]_{}")
_ASCII_NOT_LETTER = re.compile(r"[^a-z]+")


def name_from_folded(folded: str) -> str | None:
    """Name rule on a folded value: punctuation dropped, letters only, no spaces between CJK."""
    if folded.isascii():
        return _ascii_name(folded)
    out = _unicode_name(folded)
    for _ in range(3):  # dropping an apostrophe can let a letter and a mark compose: refold to a fixed point
        if out is None:
            return None
        again = _unicode_name(fold(out))
        if again == out:
            return out
        out = again
    return out


def _unicode_name(folded: str) -> str | None:
    chars = []
    for char in folded.translate(_APOSTROPHES):
        category = unicodedata.category(char)
        if category[0] in "LM":
            chars.append(char)
        elif (category[0] in "PZ" and char not in _NAME_REJECT) or char.isspace():
            chars.append(" ")
        else:
            return None  # digits, symbols, controls: not a name
    words = "".join(chars).split()
    if not words:
        return None
    out = words[0]
    for word in words[1:]:
        out += word if _is_cjk(out[-1]) and _is_cjk(word[0]) else " " + word
    if not 2 <= len(out) <= 128 or not unicodedata.category(out[0]).startswith("L"):
        return None
    return out


def _ascii_name(folded: str) -> str | None:
    """The same rule for ASCII (the common case), with regexes instead of a per-character loop."""
    text = folded.translate(_APOSTROPHES)
    if _ASCII_NOT_NAME.search(text):
        return None  # digits, symbols (S*) or controls other than whitespace
    out = " ".join(_ASCII_NOT_LETTER.sub(" ", text).split())
    if not 2 <= len(out) <= 128:
        return None
    return out


def _name(value: str) -> str | None:
    return name_from_folded(fold(value))


def text_from_folded(folded: str) -> str | None:
    """Text rule on a folded value: whitespace collapsed, non-empty."""
    text = _collapse(folded)
    return text or None


def _text(value: str) -> str | None:
    return text_from_folded(fold(value))


# --------------------------------------------------------------------------- dob

MDY_REGIONS = frozenset({"US", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "VI", "UM"})
_YMD = re.compile(r"(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})")
_YMD_CJK = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_XXY = re.compile(r"(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})")
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
            ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
            ("oct", "october"), ("nov", "november"), ("dec", "december"),
        )
    )
    for m in names
}  # fmt: skip
_D_MON_Y = re.compile(r"(\d{1,2})\s*[-/. ]\s*([a-z]{3,9})\.?\s*[-/., ]\s*(\d{4})")
_MON_D_Y = re.compile(r"([a-z]{3,9})\.?\s*[-/. ]\s*(\d{1,2})(?:st|nd|rd|th)?\s*[-/., ]\s*(\d{4})")


def _date(year: int, month: int, day: int) -> str | None:
    if not 1900 <= year <= 2099:
        return None
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def _dob(value: str, region: str | None) -> str | None:
    """ISO `YYYY-MM-DD` from the common written forms; impossible dates rejected."""
    text = fold(value.strip())
    if len(text) > 40:
        return None
    for pattern in (_YMD, _YMD_CJK, _COMPACT):
        if m := pattern.fullmatch(text):
            return _date(int(m[1]), int(m[2]), int(m[3]))
    if m := _XXY.fullmatch(text):
        return _day_month_year(int(m[1]), int(m[2]), int(m[3]), region)
    if (m := _D_MON_Y.fullmatch(text)) and m[2] in _MONTHS:
        return _date(int(m[3]), _MONTHS[m[2]], int(m[1]))
    if (m := _MON_D_Y.fullmatch(text)) and m[1] in _MONTHS:
        return _date(int(m[3]), _MONTHS[m[1]], int(m[2]))
    return None


def _day_month_year(first: int, second: int, year: int, region: str | None) -> str | None:
    """Resolve D/M/Y vs M/D/Y: a number > 12 decides; otherwise the region's convention."""
    if first > 12 or (second <= 12 and (region or "").upper() not in MDY_REGIONS):
        return _date(year, second, first)
    return _date(year, first, second)


# --------------------------------------------------------------------------- dispatch

_RULES: dict[str, Callable[[str, str | None], str | None]] = {
    "email": lambda v, r: _email(v),
    "phone": _phone,
    "card": lambda v, r: _card(v),
    "iban": lambda v, r: _iban(v),
    "cn_id": lambda v, r: _cn_id(v),
    "ssn": lambda v, r: _ssn(v),
    "username": lambda v, r: _username(v),
    "api_key": lambda v, r: _api_key(v),
    "name": lambda v, r: _name(v),
    "dob": _dob,
    "text": lambda v, r: _text(v),
    "passport": lambda v, r: _passport(v),
    "ip": lambda v, r: _ip(v),
}
assert set(_RULES) == set(FIELD_TYPES)

_FOLDED_RULES: dict[str, Callable[[str], str | None]] = {
    "username": username_from_folded,
    "name": name_from_folded,
    "text": text_from_folded,
}


def canonicalize(field_type: str, value: str, region: str | None = None) -> str | None:
    """The one canonical form of `value` as a `field_type`, or None when it is not a valid one.

    `region` (ISO 3166 alpha-2) is the default country for national phone numbers and the
    D/M/Y-vs-M/D/Y convention for dates; other types ignore it. Raises UnknownFieldType.
    """
    rule = _RULES.get(field_type)
    if rule is None:
        raise UnknownFieldType(field_type)
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        return None
    return rule(value, region)


def canonicalize_folded(field_type: str, folded: str) -> str | None:
    """`canonicalize(field_type, value)` for username/name/text, given `fold(value)` (same result, less work).

    The caller checks `len(value) <= MAX_VALUE_CHARS` on the raw value, as `canonicalize` does.
    """
    return _FOLDED_RULES[field_type](folded)
