"""A national phone number's E.164 form read straight from libphonenumber's metadata, without its parse.

Why: dumps and logs are full of digit groups that libphonenumber reads as national numbers: every
``2024-05-13 08`` of a log is a Guangzhou fixed line (area code 20) to it. `phonenumbers.parse` +
`is_valid_number` + `format_number` cost ~70 µs each, and a 20 MB scan met ~700 of them: 8% of its CPU.

Exactness: the shortcut answers only for a plain national number (digit groups, no leading 0, no ``+``)
when none of parse's rewriting rules can apply to it: it does not start with the region's country code,
its international dialling prefix or its national (trunk / carrier) prefix, and its country code
belongs to that region alone. Such a number is parsed as its own digits, and libphonenumber calls it
valid when it matches the region's general description and one number type's (`_number_type_helper`):
the same descriptions, lengths and patterns are read here. Anything else returns `UNDECIDED`, and the
caller parses as before; tests compare both on every shape and region.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = [
    "MAX_NSN",
    "MIN_NSN",
    "NUMBER_TYPES",
    "UNDECIDED",
    "NationalRules",
    "national_e164",
    "national_rules",
]

#: What `national_e164` returns when it cannot answer (the caller parses the number).
UNDECIDED: Final = "undecided"

#: Digit groups with one space, dot or hyphen between them, the first digit not 0 (a trunk prefix).
_PLAIN = re.compile(r"[1-9][0-9]*(?:[ .\-][0-9]+)*")
_SEPARATORS = str.maketrans("", "", " .-")
#: libphonenumber's bounds on a national significant number's length (parse refuses the others).
MIN_NSN, MAX_NSN = 2, 17
#: The number types libphonenumber's `_number_type_helper` tries; any one of them makes a number valid.
NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)

#: A number description as metadata gives it: possible lengths (empty: any) and the pattern.
Description = tuple[frozenset[int], str]


@dataclass(frozen=True)
class NationalRules:
    """What decides a plain national number of one region, as libphonenumber's metadata states it; read
    here once for both checks (this module's, and the native scanner's automata in phone_dfa)."""

    country_code: str
    rewrites: tuple[str, ...]  # prefixes parse would strip or read (IDD, trunk, carrier)
    general: Description
    types: tuple[Description, ...]  # in NUMBER_TYPES order, those with a pattern


def _description(desc: object) -> Description | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None  # libphonenumber: no pattern matches nothing
    return frozenset(getattr(desc, "possible_length", None) or ()), str(pattern)


@functools.lru_cache(maxsize=512)
def national_rules(region: str) -> NationalRules | None:
    """The rules of `region` (upper case), or None where the shortcut cannot be exact: a country code
    shared with other regions (validity then picks the region by pattern), or no general description."""
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None or meta.country_code is None:
        return None
    if tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code, ())) != (region,):
        return None
    general = _description(meta.general_desc)
    if general is None:
        return None
    rewrites = tuple(str(p) for p in (meta.international_prefix, meta.national_prefix_for_parsing) if p)
    types = tuple(
        d for d in (_description(getattr(meta, name, None)) for name in NUMBER_TYPES) if d is not None
    )
    return NationalRules(str(meta.country_code), rewrites, general, types)


_Compiled = tuple[frozenset[int], "re.Pattern[str]"]


@dataclass(frozen=True)
class _Validity:
    general: _Compiled
    types: tuple[_Compiled, ...]

    def valid(self, digits: str) -> bool:
        """libphonenumber's `_number_type_helper(...) != UNKNOWN`: the general description, then any
        type's (a description's lengths, when it lists any, are checked before its pattern)."""
        return _matches(digits, self.general) and any(_matches(digits, desc) for desc in self.types)


def _matches(digits: str, desc: _Compiled) -> bool:
    lengths, pattern = desc
    return (not lengths or len(digits) in lengths) and pattern.fullmatch(digits) is not None


@functools.lru_cache(maxsize=512)
def _rewrites(region: str) -> tuple[re.Pattern[str], ...]:
    rules = national_rules(region)
    return tuple(re.compile(p) for p in rules.rewrites) if rules else ()


def _compile(rules: NationalRules) -> _Validity:
    general = (rules.general[0], re.compile(rules.general[1]))
    return _Validity(general, tuple((lengths, re.compile(p)) for lengths, p in rules.types))


@functools.lru_cache(maxsize=512)
def _validity(region: str) -> _Validity:
    """The descriptions' patterns compiled (on the first number that needs them: CN's take ~8 ms)."""
    rules = national_rules(region)
    assert rules is not None
    return _compile(rules)


def national_e164(text: str, region: str) -> str | None:
    """E.164 of `text` read as a national number of `region` (upper case), None if libphonenumber finds
    it invalid, or `UNDECIDED` when parse could rewrite it (the caller parses it then)."""
    if _PLAIN.fullmatch(text) is None:
        return UNDECIDED
    rules = national_rules(region)
    if rules is None:
        return UNDECIDED
    digits = text.translate(_SEPARATORS)
    if not MIN_NSN <= len(digits) <= MAX_NSN or digits.startswith(rules.country_code):
        return UNDECIDED
    if any(prefix.match(digits) for prefix in _rewrites(region)):
        return UNDECIDED
    return f"+{rules.country_code}{digits}" if _validity(region).valid(digits) else None
