"""Candidate extraction: the typed values a posting might hold, in their canonical forms.

Why: matching hashes every candidate and looks it up, so extraction decides what can ever be found.
It errs towards recall (a false candidate costs one lookup, a missed one is a missed leak) and is
bounded everywhere, because every posting is hostile: a 50 MB single line, binary junk and deeply
nested JSON are normal input. Guarantees: linear-time patterns (see "patterns" below), lines cut into
64 KiB segments, a work budget per segment (smaller after a line's first MiB), a deadline after which
it stops and keeps what it found. Lines are split on "\n" only; line numbers are 1-based.

Usage::

    for c in extract_candidates(text, regions=("CN",)):
        lookup(keyed_hash(key, c.field_type, c.canonical), c.line)

Two families of candidates:
- typed: emails, phones, cards, IBANs, Chinese ids, US SSNs, IPv4 addresses and dates, found by
  regex scans anywhere in the text (digit runs are cut into groups and the plausible group spans are
  checked: Luhn, libphonenumber, GB 11643...), and identifiers written in the groups of their format
  with one separator throughout (``110105 19491231 002X``, ``gb82-west-1234-...``, ``123 45 6789``;
  see "grouped identifiers"), and cn_ids, IBANs and cards wrapped onto the next line where the format makes
  the join unambiguous (see "values wrapped over two lines": such a value stands on its first line).
  Full-width forms and NFKC spaces are read as ASCII first (`narrow_forms`);
- delimited fields: each line is split on ``: ; | , tab``, full-width ``：；，、`` and runs of 2+ spaces,
  ``key=value`` is split too, SQL INSERT string literals and JSON-line string values are pulled
  out; each value is tried as username, name, api_key (when token-like), dob, passport and text;
  the words of a value of 2..4 words are tried too (``姓名：张三 电话：...`` gives 张三).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import phonenumbers
import re2

from core.canonical import (
    IBAN_LENGTHS,
    MDY_REGIONS,
    canonicalize,
    canonicalize_folded,
    fold,
    luhn_ok,
)

__all__ = ["Candidate", "extract_candidates", "narrow_forms"]

SEGMENT_CHARS = 65_536  # long lines are scanned in pieces of this size
# Work budgets per segment: a field or a digit run costs 1, each phone parse 1 more. A line's first
# FULL_SEGMENTS segments get the full budget, later ones REDUCED_SHARE of it, so that a 50 MB single
# line of junk takes seconds while a real dump of ordinary lines is read in full.
SEGMENT_WORK = 2048
FULL_SEGMENTS = 16
REDUCED_SHARE = 8
MAX_PHONE_PARSES_PER_RUN = 24
MAX_TOKENS_PER_FIELD = 4
FIELD_MAX_CHARS = 256
JSON_MAX_CHARS = 1_000_000
JSON_MAX_VALUES = 20_000
JSON_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Candidate:
    """A value found in a posting: its type, canonical form, text as written and 1-based line."""

    field_type: str
    canonical: str
    raw: str
    line: int


# --------------------------------------------------------------------------- patterns

# Fixed patterns over untrusted text run on Python's `re`, written so that no match attempt can scan far
# and fail repeatedly (what makes backtracking quadratic): every run that may fail is bounded, and a
# lookbehind lets a run be tried only where it starts. Linear-time is checked by the hostile-input
# tests. (Patterns that tenants write, regex watches, go to RE2 elsewhere.)
_EMAIL = r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[^\W_][\w\-]{0,62}\.){1,8}[A-Za-z]{2,24}"
_CJK_DATE = r"\d{4} ?年 ?\d\d? ?月 ?\d\d? ?[日号]?"
_IBAN = r"(?<![A-Za-z0-9])[A-Z]{2}\d\d(?: ?[A-Za-z0-9]{1,4}){3,9}"
# groups joined by one of "-./()" (a space on either side allowed) or by 1..5 spaces (`138  1234  5678`)
_NUM = r"\+?\(?\d+[Xx]?(?:(?: ?[\-./] ?| ?\( ?| ?\) ?| {1,5})\d+[Xx]?){0,11}\)?"  # <= 12 groups
_EMAIL_RE = re.compile(_EMAIL)
_CJK_DATE_RE = re.compile(_CJK_DATE)
_IBAN_RE = re.compile(_IBAN)
_NUM_RE = re.compile(_NUM)

_DIGIT_GROUP = re.compile(r"\d+[Xx]?")
_DELIMITERS = re.compile(r"[:;|,\t：；，、]| {2,}")
# Escaped quotes let a failed string scan restart at every later quote (quadratic in `re`): RE2 is linear.
_SQL_STRING = re2.compile(r"'((?:[^'\\]|\\.|'')*)'")
# `key=value`, `key: value`, `姓名：张三` inside free text (values end at whitespace or a delimiter).
_LABELLED = re.compile(
    r"(?<![\w.\-])[\w.\-]{1,40} ?[=:：] ?(\"[^\"\n]{0,256}\"|'[^'\n]{0,256}'|[^\s\"',;|&：:=]{1,256})"
)
_SQL_HINT = re.compile(r"\binsert\s+into\b", re.IGNORECASE)
_KEY = re.compile(r"[\w.\-]{1,40}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-.+/=~]{16,512}")
_NOT_A_NAME = re.compile(r"[0-9@_/\\=<>#$%&*+~^|\[\]{}]")
_DOB_HINT = re.compile(
    r"\d{1,4}\s*[\-/.年]|\d{8}$|\d{1,2}\s*[a-z]|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", re.I
)
_IPV4_SHAPE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_QUOTES = "\"'`“”‘’"
# A line with none of these holds no typed value, no label and no delimited field: skipped whole.
_STRUCTURE = re.compile(r"[0-9@:;|,\t：；，、=]|  |[０-９＠]")
# Shapes that cannot be a name or a registered free-text field: prose clauses and long CJK runs.
_LONG_CJK_NAME = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]{9}")
_LONG_CJK_TEXT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]{25}")
_HAS_DIGIT = re.compile(r"\d")
NAME_MAX_WORDS = 6
TEXT_MAX_WORDS = 8  # a longer field without a digit is prose, not an address or an answer
_TYPED = frozenset({"email", "phone", "card", "iban", "cn_id", "ssn", "ip"})


# --------------------------------------------------------------------------- per-call state


@dataclass(slots=True)
class _Context:
    """What one `extract_candidates` call carries between lines and segments."""

    regions: tuple[str, ...]
    dob_regions: tuple[str | None, ...]
    deadline: float
    line: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)
    seen_fields: set[str] = field(default_factory=set)
    typed_raws: set[str] = field(default_factory=set)
    found: list[Candidate] = field(default_factory=list)
    segment: int = 0
    work: int = 0

    def start_line(self, number: int) -> None:
        if number != self.line:
            self.line = number
            self.segment = 0
            self.seen.clear()
            self.seen_fields.clear()
            self.typed_raws.clear()

    def start_segment(self) -> None:
        full = self.segment < FULL_SEGMENTS
        self.segment += 1
        self.work = SEGMENT_WORK if full else SEGMENT_WORK // REDUCED_SHARE
        if len(self.seen_fields) > 100_000:
            self.seen_fields.clear()

    def add(self, field_type: str, canonical: str | None, raw: str) -> None:
        """Keep a candidate once per (type, canonical) on a line."""
        if canonical is not None and (field_type, canonical) not in self.seen:
            self.seen.add((field_type, canonical))
            if field_type in _TYPED:
                self.typed_raws.add(raw)
            self.found.append(Candidate(field_type, canonical, raw, self.line))

    def take(self) -> list[Candidate]:
        found, self.found = self.found, []
        return found


def extract_candidates(
    text: str,
    regions: Iterable[str] = (),
    *,
    max_bytes: int = 50_000_000,
    deadline_s: float = 30.0,
) -> Iterator[Candidate]:
    """Yield the candidates in `text`, deduplicated per (field_type, canonical, line).

    `regions` are the countries whose national phone numbers (no `+`) are read; `+`/`00` numbers are
    always read. Text beyond `max_bytes` (UTF-8) is ignored; after `deadline_s` seconds it stops.
    """
    ctx = _Context(
        regions=_phone_regions(regions),
        dob_regions=_dob_regions(regions),
        deadline=time.monotonic() + deadline_s,
    )
    lines = _lines(_bounded(text, max_bytes))
    current = next(lines, None)
    while current is not None:
        following = next(lines, None)
        if time.monotonic() > ctx.deadline:
            return
        lineno, line = current
        ctx.start_line(lineno)
        if following is not None:
            _wrapped(line, following[1], ctx)  # a value wrapped onto the next line: on this one
            yield from ctx.take()
        yield from _scan_line(line, ctx)
        current = following


def _phone_regions(regions: Iterable[str]) -> tuple[str, ...]:
    supported = phonenumbers.SUPPORTED_REGIONS
    out: list[str] = []
    for region in regions:
        code = str(region).strip().upper()
        if code in supported and code not in out:
            out.append(code)
    return tuple(out)


def _dob_regions(regions: Iterable[str]) -> tuple[str | None, ...]:
    """Ambiguous dates are read D/M/Y, and also M/D/Y when a watching region writes them so."""
    if any(str(r).strip().upper() in MDY_REGIONS for r in regions):
        return (None, "US")
    return (None,)


def _bounded(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8; lone surrogates (bytes decoded with surrogateescape) replaced."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    else:
        if len(data) <= max_bytes:
            return text
    return data[: max(0, max_bytes)].decode("utf-8", "ignore")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based number, line) split on "\\n" only, so numbers agree with any line-based viewer."""
    start, number, size = 0, 1, len(text)
    while start <= size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        yield number, text[start:end].rstrip("\r")
        start, number = end + 1, number + 1


def _segments(text: str) -> Iterator[str]:
    """Pieces of at most SEGMENT_CHARS, cut at a delimiter near the end when there is one."""
    start, size = 0, len(text)
    while start < size:
        end = min(start + SEGMENT_CHARS, size)
        if end < size:
            cut = max(text.rfind(sep, end - 256, end) for sep in (" ", "\t", ",", ";", "|"))
            end = cut + 1 if cut > start else end
        yield text[start:end]
        start = end


# --------------------------------------------------------------------------- one line


def _scan_line(line: str, ctx: _Context) -> Iterator[Candidate]:
    narrow = narrow_forms(line)
    if len(line) <= SEGMENT_CHARS and _STRUCTURE.search(narrow) is None:
        return  # prose without digits, '@', labels or delimiters: at most a bare name, never a record
    stripped = line.lstrip()
    if stripped[:1] in ("{", "[") and len(line) <= JSON_MAX_CHARS:
        values = _json_values(stripped)  # JSON is read as written: a full-width quote is no quote
        if values is not None:
            yield from _scan_text("\t".join(values), ctx, sql=False)
            return
    sql = "'" in narrow and (_SQL_HINT.search(narrow[:512]) is not None or narrow.lstrip().startswith("("))
    yield from _scan_text(narrow, ctx, sql=sql)


# Full-width ASCII forms (U+FF01..U+FF5E) and the spaces NFKC makes " " (no-break, figure, narrow no-break,
# ideographic) read as their ASCII forms, as NFKC would: `１３８ｘ`, `Ｘ` as an id's check character,
# `１１０１０５　１９４９...` are then found by the same patterns as their ASCII writings. One character for
# one, so lengths and positions do not move; the native scanner applies the same map.
NARROW_SPACES = "\u00a0\u2007\u202f\u3000"
_NARROW_MAP = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {ord(c): 0x20 for c in NARROW_SPACES}
_NARROWABLE = re.compile("[\uff01-\uff5e" + NARROW_SPACES + "]")


def narrow_forms(text: str) -> str:
    """`text` with full-width ASCII forms and NFKC-space characters as ASCII (see `_NARROW_MAP`)."""
    if text.isascii() or _NARROWABLE.search(text) is None:
        return text
    return text.translate(_NARROW_MAP)


def _scan_text(text: str, ctx: _Context, *, sql: bool) -> Iterator[Candidate]:
    text = narrow_forms(text)
    for segment in _segments(text):
        if time.monotonic() > ctx.deadline:
            return
        ctx.start_segment()
        _typed(segment, ctx)
        values = _sql_values(segment) if sql else _delimited(segment)
        for value in itertools.chain(values, _labelled(segment)):
            if ctx.work <= 0:
                break
            _field(value, ctx)
        yield from ctx.take()


def _json_values(line: str) -> list[str] | None:
    """The scalar values of a JSON line (bounded count and depth), or None if it is not JSON."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if type(doc) is dict and len(doc) <= JSON_MAX_VALUES:
        flat = _flat_values(doc)
        if flat is not None:
            return flat
    values: list[str] = []
    stack: list[tuple[object, int]] = [(doc, 0)]
    while stack and len(values) < JSON_MAX_VALUES:
        node, depth = stack.pop()
        if isinstance(node, str):
            values.append(node.replace("\n", " "))
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int | float):
            values.append(str(node))
        elif depth < JSON_MAX_DEPTH:
            children = node.values() if isinstance(node, dict) else node
            if isinstance(children, Iterable):
                stack.extend((child, depth + 1) for child in reversed(list(children)))
    return values


def _flat_values(doc: dict[str, object]) -> list[str] | None:
    """The values of a JSON object holding only scalars (the usual dump row), in the order the general
    walk below gives them; None when a value is nested."""
    values: list[str] = []
    for value in doc.values():
        kind = type(value)
        if kind is str:
            values.append(value.replace("\n", " "))  # type: ignore[attr-defined]
        elif kind is int or kind is float:
            values.append(str(value))
        elif value is None or kind is bool:
            continue
        else:
            return None
    return values


def _sql_values(segment: str) -> Iterator[str]:
    for match in _SQL_STRING.finditer(segment):
        yield match.group(1).replace("\\'", "'").replace("''", "'")


def _labelled(segment: str) -> Iterator[str]:
    if "=" in segment or ":" in segment or "：" in segment:
        for match in _LABELLED.finditer(segment):
            yield match.group(1)


def _delimited(segment: str) -> list[str]:
    return _DELIMITERS.split(segment, maxsplit=SEGMENT_WORK)


# --------------------------------------------------------------------------- typed scan


def _typed(segment: str, ctx: _Context) -> None:
    """One pass per shape; cheap `in` tests skip passes that cannot match; runs cost budget units."""
    if "@" in segment and "." in segment:
        for match in _EMAIL_RE.finditer(segment):
            ctx.work -= 1
            if ctx.work <= 0:
                return
            raw = match.group()
            ctx.add("email", _canonical("email", raw), raw)
    if "年" in segment:
        for match in _CJK_DATE_RE.finditer(segment):
            raw = match.group()
            ctx.add("dob", _canonical("dob", raw), raw)
    for match in _IBAN_RE.finditer(segment):
        ctx.work -= 1
        if ctx.work <= 0:
            return
        _iban(match.group(), ctx)
    for match in _NUM_RE.finditer(segment):
        if ctx.work <= 0:
            return
        forms, cost = _run_forms(match.group(), ctx.regions, ctx.dob_regions)
        ctx.work -= cost
        for field_type, canonical, raw in forms:
            ctx.add(field_type, canonical, raw)
    _grouped(segment, ctx)


# --------------------------------------------------------------------------- grouped identifiers

# Identifiers written in groups: `110105 19491231 002X`, `110105-1949-1231-002X`, `gb82-west-1234-...`,
# `4111.1111.1111.1111`, `6222  0212  3456  7890  123`, `123 45 6789`. A group is a maximal run of ASCII
# letters and digits; a separator is 1..5 characters of " ", "-", "." with at most one that is not a
# space (" - ", "  ", "."), and one separator is used throughout a value. Group lengths are the format's:
#   cn_id  6-8-4 or 6-4-4-4 (last character a digit or X), GB 11643 checked by canonicalize;
#   card   4-6-5, 4-6-4, or groups of 4 and a last group of 1..4, 13..19 digits, Luhn (longest first);
#   ssn    3-2-4, not joined to a digit by the same separator on either side (it has no checksum);
#   iban   known country, groups of 4 up to the registered length (last group shorter), or unbroken
#          in any case at the registered length; mod 97.
# Each start is a group; a value found consumes its groups. No work units: one linear pass, no parses.
# The native scanner (scan_grouped in _native/scanner.c) is a port of this.
GROUP_LIMIT = 9  # an IBAN of 34 characters is 9 groups
_GROUP_START = re.compile(r"(?<![A-Za-z0-9])(?:[A-Za-z]{2}[0-9]{2}|[0-9]{3})")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_SEP_RUN = re.compile(r"[ .\-]{1,6}")
_CARD_3_GROUPS = ((4, 6, 5), (4, 6, 4))


def _grouped(segment: str, ctx: _Context) -> None:
    for field_type, _start, _end, compact, raw in _grouped_values(segment):
        ctx.add(field_type, _canonical(field_type, compact), raw)


def _grouped_values(s: str) -> Iterator[tuple[str, int, int, str, str]]:
    """(type, start, end, compact, raw) of each grouped value in `s` (its checksum not yet checked)."""
    pos = 0
    while (m := _GROUP_START.search(s, pos)) is not None:
        pos, value = _grouped_at(s, m.start())
        if value is not None:
            yield value


def _group_run(s: str, pos: int) -> tuple[list[tuple[int, int]], str]:
    """The groups from `pos` (at most GROUP_LIMIT) joined by the first separator, and that separator."""
    first = _ALNUM_RUN.match(s, pos)
    assert first is not None
    groups, sep, end = [(pos, first.end())], "", first.end()
    while len(groups) < GROUP_LIMIT:
        m = _SEP_RUN.match(s, end)
        if m is None:
            break
        text = m.group()
        if len(text) > 5 or len(text) - text.count(" ") > 1 or (sep and text != sep):
            break
        g = _ALNUM_RUN.match(s, m.end())
        if g is None:
            break
        sep = text
        groups.append((g.start(), g.end()))
        end = g.end()
    return groups, sep


def _grouped_at(s: str, pos: int) -> tuple[int, tuple[str, int, int, str, str] | None]:
    """Try the group at `pos` as the start of a grouped identifier: where to search next, and the value."""
    groups, sep = _group_run(s, pos)
    first = s[pos : groups[0][1]]
    lens = [b - a for a, b in groups]
    found: tuple[str, int] | None = None  # type, number of groups
    if first.isdigit():
        if lens[0] == 6:
            found = _grouped_cn_id(s, groups, lens)
        elif lens[0] == 4:
            found = _grouped_card(s, groups, lens)
        elif lens[0] == 3:
            found = _grouped_ssn(s, groups, lens, sep)
    elif len(first) >= 4 and first[:2].isalpha() and first[2:4].isdigit():
        found = _grouped_iban(first, lens)
    if found is None:
        return groups[0][1], None
    field_type, count = found
    end = groups[count - 1][1]
    compact = "".join(s[a:b] for a, b in groups[:count])
    return end, (field_type, pos, end, compact, s[pos:end])


def _digits(s: str, group: tuple[int, int]) -> bool:
    return s[group[0] : group[1]].isdigit()


def _grouped_cn_id(s: str, groups: list[tuple[int, int]], lens: list[int]) -> tuple[str, int] | None:
    for shape in ((6, 8, 4), (6, 4, 4, 4)):
        k = len(shape)
        if tuple(lens[:k]) == shape and all(_digits(s, g) for g in groups[: k - 1]):
            a, b = groups[k - 1]
            if s[a : b - 1].isdigit() and (s[b - 1].isdigit() or s[b - 1] in "Xx"):
                return "cn_id", k
    return None


def _grouped_card(s: str, groups: list[tuple[int, int]], lens: list[int]) -> tuple[str, int] | None:
    for k in range(min(len(groups), 5), 2, -1):
        shape = lens[:k]
        if k == 3:
            fits = tuple(shape) in _CARD_3_GROUPS
        else:
            fits = all(n == 4 for n in shape[:-1]) and 1 <= shape[-1] <= 4
        if fits and all(_digits(s, g) for g in groups[:k]):
            digits = "".join(s[a:b] for a, b in groups[:k])
            if luhn_ok(digits):
                return "card", k
    return None


def _grouped_ssn(s: str, groups: list[tuple[int, int]], lens: list[int], sep: str) -> tuple[str, int] | None:
    if lens[:3] != [3, 2, 4] or not all(_digits(s, g) for g in groups[:3]):
        return None
    if len(groups) > 3 and _is_digit_ascii(s[groups[3][0]]):
        return None  # the start of something longer
    before = groups[0][0] - len(sep)
    if before >= 1 and s[before : groups[0][0]] == sep and _is_digit_ascii(s[before - 1]):
        return None  # the end of something longer
    return "ssn", 3


def _grouped_iban(first: str, lens: list[int]) -> tuple[str, int] | None:
    length = IBAN_LENGTHS.get(first[:2].upper())
    if length is None:
        return None
    if lens[0] == length:
        return "iban", 1
    if lens[0] != 4:
        return None
    total = 4
    for k, n in enumerate(lens[1:], start=2):
        if n > 4:
            return None
        total += n
        if total == length:
            return "iban", k
        if n < 4 or total > length:
            return None
    return None


# --------------------------------------------------------------------------- values wrapped over two lines

# A value may be wrapped onto the next line where its format makes the join unambiguous (see
# docs/identifier-writings.md). Only the end of a line and the start of the next are read: `a`, the last
# WRAP_WINDOW characters of the line without its trailing spaces, tabs and CRs, and `b`, the first
# WRAP_WINDOW characters of the next line after its indentation (spaces and tabs), both narrowed; a window
# that would cut a run of letters and digits is shortened to the nearest other character instead.
#   grouped: cn_id, IBAN or card groups broken at a group boundary. The line break stands for the
#            separator, which is the one written before the last group of `a` or after the first group of
#            `b` (each tried): `a + sep + b` is read as in _grouped, and a value that starts in `a` and
#            ends in `b` (groups on both lines, one separator throughout, the format's group lengths, its
#            checksum) is a candidate.
#   unbroken: the last run of `a` and the first run of `b` joined: an 18-character cn_id (GB 11643 and
#            its date and province checks), or an IBAN whose country and check digits are on the first
#            line and whose joined length is its country's (mod 97). Cards are not joined unbroken: their
#            lengths vary and Luhn alone would glue one number in ten.
# The candidate stands on the first line; its raw text is the two pieces joined by "\n". The native
# scanner (scan_wrapped in _native/scanner.c) is a port of this.
WRAP_WINDOW = 80
_WRAP_TYPES = frozenset({"card", "iban", "cn_id"})
_WRAP_GROUP_MAX = 8  # the longest group of a grouped value (cn_id 6-8-4)
_INDENT = re.compile("[ \t" + NARROW_SPACES + "]*")
_TRAILING = " \t\r" + NARROW_SPACES
_LAST_RUN = re.compile(r"[A-Za-z0-9]+\Z")
_FIRST_RUN = re.compile(r"[A-Za-z0-9]+")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_SEP_BEFORE = re.compile(r"(?<=[A-Za-z0-9])[ .\-]+\Z")
_SEP_AFTER = re.compile(r"[ .\-]+(?=[A-Za-z0-9])")


def _is_alnum_ascii(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _wrap_windows(line: str, following: str) -> tuple[str, str] | None:
    """The end of `line` and the start of `following` a wrapped value would stand in (see above)."""
    a = line.rstrip(_TRAILING)
    if not a or not _is_alnum_ascii(narrow_forms(a[-1])):
        return None
    start = _INDENT.match(following)
    b = following[start.end() if start else 0 :]
    if not b or not _is_alnum_ascii(narrow_forms(b[0])):
        return None
    wa = narrow_forms(a[-WRAP_WINDOW - 1 :])
    if len(wa) > WRAP_WINDOW:
        cuts_run = _is_alnum_ascii(wa[0]) and _is_alnum_ascii(wa[1])
        wa = wa[1:]
        if cuts_run:  # the window starts inside a run: after the first other character
            m = _NOT_ALNUM.search(wa)
            if m is None:
                return None
            wa = wa[m.end() :]
    wb = narrow_forms(b[: WRAP_WINDOW + 1])
    if len(wb) > WRAP_WINDOW:
        cuts_run = _is_alnum_ascii(wb[-2]) and _is_alnum_ascii(wb[-1])
        wb = wb[:-1]
        if cuts_run:  # the window ends inside a run: before the last other character
            cut = len(wb) - 1
            while cut >= 0 and _is_alnum_ascii(wb[cut]):
                cut -= 1
            if cut < 0:
                return None
            wb = wb[:cut]
    return wa, wb


def _valid_separator(sep: str) -> bool:
    return len(sep) <= 5 and len(sep) - sep.count(" ") <= 1


def _wrapped(line: str, following: str, ctx: _Context) -> None:
    """Candidates of a value that starts at the end of `line` and ends at the start of `following`."""
    windows = _wrap_windows(line, following)
    if windows is None:
        return
    a, b = windows
    last = _LAST_RUN.search(a)
    first = _FIRST_RUN.match(b)
    if last is None or first is None:
        return
    if last.end() - last.start() <= _WRAP_GROUP_MAX and first.end() <= _WRAP_GROUP_MAX:
        seps: list[str] = []
        before = _SEP_BEFORE.search(a, 0, last.start())
        after = _SEP_AFTER.match(b, first.end())
        for m in (before, after):
            if m is not None and _valid_separator(m.group()) and m.group() not in seps:
                seps.append(m.group())
        for sep in seps:
            for field_type, start, end, compact, _raw in _grouped_values(a + sep + b):
                if field_type in _WRAP_TYPES and start < len(a) and end > len(a) + len(sep):
                    raw = a[start:] + "\n" + b[: end - len(a) - len(sep)]
                    ctx.add(field_type, _canonical(field_type, compact), raw)
    r1, r2 = last.group(), first.group()
    value = r1 + r2
    if len(value) == 18 and r1.isdigit() and value[:17].isdigit() and value[17] in "0123456789Xx":
        ctx.add("cn_id", _canonical("cn_id", value), r1 + "\n" + r2)
    elif (
        len(r1) >= 4
        and r1[:2].isalpha()
        and r1[2:4].isdigit()
        and IBAN_LENGTHS.get(r1[:2].upper()) == len(value)
    ):
        ctx.add("iban", _canonical("iban", value), r1 + "\n" + r2)


def _is_digit_ascii(char: str) -> bool:
    return "0" <= char <= "9"


def _iban(raw: str, ctx: _Context) -> None:
    """The greedy match may run into following words: cut to the country's registered length."""
    compact = "".join(raw.split()).upper()
    length = IBAN_LENGTHS.get(compact[:2])
    if length:
        compact = compact[:length]
        raw = _prefix_with_chars(raw, length)
    ctx.add("iban", _canonical("iban", compact), raw)


@functools.lru_cache(maxsize=65_536)
def _canonical(field_type: str, value: str) -> str | None:
    """`canonicalize` without a region, cached: the same addresses recur across a dump."""
    return canonicalize(field_type, value)


def _prefix_with_chars(raw: str, count: int) -> str:
    """The shortest prefix of `raw` holding `count` non-space characters."""
    seen = 0
    for index, char in enumerate(raw):
        if not char.isspace():
            seen += 1
            if seen == count:
                return raw[: index + 1]
    return raw


_Form = tuple[str, str, str]  # field_type, canonical, raw
_RUN_CACHE: dict[tuple[str, tuple[str, ...], tuple[str | None, ...]], tuple[tuple[_Form, ...], int]] = {}
_RUN_CACHE_SIZE = 65_536


def _run_forms(
    run: str, regions: tuple[str, ...], dob_regions: tuple[str | None, ...]
) -> tuple[tuple[_Form, ...], int]:
    """The candidates in one digit run and their cost in work units.

    Cached, but the cost charged is always the uncached one: what a line yields must not depend on
    what the process read before (the work budget would run out at different places).
    """
    key = (run, regions, dob_regions)
    cached = _RUN_CACHE.get(key)
    if cached is not None:
        return cached
    forms: list[_Form] = []
    cost = _number_run(run, regions, dob_regions, forms)
    result = (tuple(forms), cost)
    if len(_RUN_CACHE) >= _RUN_CACHE_SIZE:
        _RUN_CACHE.clear()
    _RUN_CACHE[key] = result
    return result


@dataclass(frozen=True, slots=True)
class _Group:
    start: int  # where the value may start (a '+' or '(' before the digits included)
    end: int
    digits: int  # characters of the group (an id's trailing X counts)


def _number_run(
    run: str, regions: tuple[str, ...], dob_regions: tuple[str | None, ...], out: list[_Form]
) -> int:
    """Check the plausible spans of a digit run as ip, date, cn_id, ssn, card and phone; returns the cost."""
    groups = [
        _Group(_value_start(run, m.start()), m.end(), m.end() - m.start()) for m in _DIGIT_GROUP.finditer(run)
    ]
    if sum(g.digits for g in groups) < 7 and len(groups) < 3:
        return 1
    if _IPV4_SHAPE.fullmatch(run):
        _add(out, "ip", canonicalize("ip", run), run)
        return 1
    if _dates(run, groups, dob_regions, out) and len(groups) == 3:
        return 1  # just a date: not worth a phone parse
    for g in groups:
        if g.digits == 18:
            _add(out, "cn_id", canonicalize("cn_id", run[g.start : g.end]), run[g.start : g.end])
    _ssns(run, groups, out)
    _cards(run, groups, out)
    return 1 + _phones(run, groups, regions, out)


def _add(out: list[_Form], field_type: str, canonical: str | None, raw: str) -> None:
    if canonical is not None:
        out.append((field_type, canonical, raw))


def _nfkc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _value_start(run: str, digits_start: int) -> int:
    start = digits_start
    while start > 0 and run[start - 1] in "+(":
        start -= 1
    return start


def _separator(run: str, left: _Group, right: _Group) -> str:
    return run[left.end : right.start].strip() or " "


def _dates(run: str, groups: list[_Group], dob_regions: tuple[str | None, ...], out: list[_Form]) -> bool:
    """Date-shaped triples (Y-M-D, D/M/Y, M/D/Y) as dob candidates; True when there was one."""
    found = False
    for i in range(len(groups) - 2):
        a, b, c = groups[i : i + 3]
        if (a.digits == 4 and b.digits <= 2 and c.digits <= 2) or (
            a.digits <= 2 and b.digits <= 2 and c.digits == 4
        ):
            raw = run[a.start : c.end]
            for region in dob_regions:
                canonical = canonicalize("dob", raw, region)
                found = found or canonical is not None
                _add(out, "dob", canonical, raw)
    return found


def _ssns(run: str, groups: list[_Group], out: list[_Form]) -> None:
    for i in range(len(groups) - 2):
        a, b, c = groups[i : i + 3]
        if (a.digits, b.digits, c.digits) == (3, 2, 4) and run[a.end : b.start] == run[
            b.end : c.start
        ] == "-":
            raw = run[a.start : c.end]
            _add(out, "ssn", canonicalize("ssn", raw), raw)


def _cards(run: str, groups: list[_Group], out: list[_Form]) -> None:
    """Spans of space- or dash-separated groups holding 12..19 digits, longest first, Luhn-checked."""
    i = 0
    while i < len(groups):
        found = 0
        total, j = 0, i
        ends: list[int] = []
        while j < len(groups) and total + groups[j].digits <= 19:
            if j > i and _separator(run, groups[j - 1], groups[j]) not in (" ", "-"):
                break
            total += groups[j].digits
            if total >= 12:
                ends.append(j)
            j += 1
        for j in reversed(ends):
            raw = run[groups[i].start : groups[j].end].lstrip("+(")
            digits = _nfkc(raw.replace(" ", "").replace("-", ""))
            if digits.isascii() and digits.isdigit() and luhn_ok(digits):
                _add(out, "card", canonicalize("card", raw), raw)
                found = j - i + 1
                break
        i += found or 1


def _phones(run: str, groups: list[_Group], regions: tuple[str, ...], out: list[_Form]) -> int:
    """Spans of groups that libphonenumber accepts as valid, longest first; returns the parses made."""
    parses, i = 0, 0
    while i < len(groups) and parses < MAX_PHONE_PARSES_PER_RUN:
        found = 0
        for j in _phone_span_ends(groups, i):
            raw = run[groups[i].start : groups[j].end]
            phone, tried = _first_phone(raw, regions)
            parses += tried
            if phone is not None:
                out.append(("phone", phone, raw))
                found = j - i + 1
                break
        i += found or 1
    return parses


def _phone_span_ends(groups: list[_Group], i: int) -> list[int]:
    ends, total = [], 0
    for j in range(i, len(groups)):
        total += groups[j].digits
        if total > 17:
            break
        if total >= 7:
            ends.append(j)
    return ends[::-1]


def _first_phone(raw: str, regions: tuple[str, ...]) -> tuple[str | None, int]:
    """The first region's valid reading of `raw` (international forms need none) and the parses tried."""
    international = raw.startswith(("+", "00"))
    digits = sum(c.isdigit() for c in raw)
    tried = 0
    for region in (None,) if international else regions:
        if not international and not _possible_length(region, digits):
            continue
        tried += 1
        phone = _phone(raw, region)
        if phone is not None:
            return phone, tried
    return None, tried


def _phone(raw: str, region: str | None) -> str | None:
    """E.164 of `raw` read in `region`; Chinese mobiles by a shape check, the rest by libphonenumber."""
    m = _CN_MOBILE_RAW.fullmatch(raw) if region in ("CN", None) else None
    if m is not None and (region is not None or m[1] is not None):
        national = m[2] + m[3] + m[4]
        if _CN_MOBILE.fullmatch(national):
            return "+86" + national
    return _parsed_phone(raw, region)


@functools.lru_cache(maxsize=65_536)
def _parsed_phone(raw: str, region: str | None) -> str | None:
    return canonicalize("phone", raw, region)


# Chinese mobiles (most phones in the dumps this service reads) cost a regex instead of a ~25 µs
# libphonenumber parse: the raw shape (optional +86/0086, 3-4-4 digits with optional spaces or a dash)
# and libphonenumber's own mobile pattern for CN, which implies a valid number whose E.164 is
# "+86" + the 11 digits. Anything else, including shapes this does not accept, is parsed as before.
_CN_MOBILE_RAW = re.compile(r"(\+86 {0,5}|0086 {0,5})?(1\d\d)(?: {1,5}|-)?(\d{4})(?: {1,5}|-)?(\d{4})")
_CN_META = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_CN_MOBILE = re.compile(
    str(_CN_META.mobile.national_number_pattern) if _CN_META and _CN_META.mobile else r"(?!)"
)


@functools.lru_cache(maxsize=1024)
def _national_lengths(region: str) -> frozenset[int]:
    """Digit counts a national number of `region` can have as written (with or without trunk prefix)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    lengths = set(meta.general_desc.possible_length or ()) if meta and meta.general_desc else set()
    if not lengths:
        return frozenset(range(4, 18))
    prefix = len(meta.national_prefix or "") if meta else 0
    return frozenset(lengths | {n + prefix for n in lengths})


def _possible_length(region: str | None, digits: int) -> bool:
    return region is not None and digits in _national_lengths(region)


# --------------------------------------------------------------------------- delimited fields


def _field(value: str, ctx: _Context) -> None:
    """A delimited value as the generic types, plus its `key=value` value and the words of a short one."""
    ctx.work -= 1
    value = value.strip().strip(_QUOTES).strip()
    if not value or len(value) > FIELD_MAX_CHARS or value in ctx.seen_fields or _CONTROL.search(value):
        return  # control characters: binary junk, not a value anyone registered
    ctx.seen_fields.add(value)
    _generic(value, ctx, whole=True)
    key, eq, rest = value.partition("=")
    if eq and _KEY.fullmatch(key.strip()):
        _field(rest, ctx)
    words = value.split()
    if 1 < len(words) <= MAX_TOKENS_PER_FIELD:
        for word in words:
            word = word.strip(_QUOTES)
            if word and word not in ctx.seen_fields:
                ctx.seen_fields.add(word)
                _generic(word, ctx, whole=False)


def _generic(value: str, ctx: _Context, *, whole: bool) -> None:
    if value in ctx.typed_raws:
        return  # the field is an email, phone, card, id... already: not also a username or a text
    for field_type, canonical in _generic_forms(value, whole, ctx.dob_regions):
        ctx.add(field_type, canonical, value)


@functools.lru_cache(maxsize=65_536)
def _generic_forms(
    value: str, whole: bool, dob_regions: tuple[str | None, ...]
) -> tuple[tuple[str, str], ...]:
    """The generic types of one value; `text` only for whole fields (a word is not a text).

    Cached: field values repeat a lot across lines and postings (statuses, domains, passwords).
    """
    forms: list[tuple[str, str | None]] = []
    folded = fold(value)
    words = value.count(" ") + 1 if value.isascii() else len(value.split())
    has_digit = _HAS_DIGIT.search(value) is not None
    if whole and (has_digit or (words <= TEXT_MAX_WORDS and not _LONG_CJK_TEXT.search(value))):
        forms.append(("text", canonicalize_folded("text", folded)))
    size = len(value)
    if 3 <= size <= 64:
        forms.append(("username", canonicalize_folded("username", folded)))
    if (
        not has_digit
        and words <= NAME_MAX_WORDS
        and not _NOT_A_NAME.search(value)
        and not _LONG_CJK_NAME.search(value)
    ):
        forms.append(("name", canonicalize_folded("name", folded)))
    else:
        if size >= 16 and _TOKEN.fullmatch(value) and _has_letter_and_digit(value):
            forms.append(("api_key", canonicalize("api_key", value)))
        if 6 <= size <= 12 and value.isascii() and value.isalnum():
            forms.append(("passport", canonicalize("passport", value)))
    if 6 <= size <= 40 and _DOB_HINT.match(value):  # month names too: "2 Jan 1990"
        forms.extend(("dob", canonicalize("dob", value, region)) for region in dob_regions)
    return tuple((t, c) for t, c in forms if c is not None)


def _has_letter_and_digit(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
