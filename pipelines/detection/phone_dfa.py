"""libphonenumber's number patterns compiled to digit automata, for a cheap "certainly not valid" test.

Why: dumps are full of digit runs that are not phone numbers (order numbers, QQ numbers, timestamps,
ids). extract.py asks libphonenumber about each (~25 us); the native scanner first asks these automata
whether *any* reading libphonenumber could make of the digits is matched by one of the region's
number-type patterns. When none is, the number is certainly invalid (``is_valid_number`` needs a type
pattern to match the national significant number) and libphonenumber is not called; otherwise it is.
The readings are over-approximated (every length the national-prefix pattern could strip, with and
without the country code), so the test can only answer "invalid" when libphonenumber would too.

Regions whose metadata has a national-prefix transform rule, or a pattern this compiler does not
support, get no automaton: every number there still goes to libphonenumber.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre_c
import re._parser as sre_p
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata

from core.phone_national import MAX_NSN, NUMBER_TYPES, NationalRules, national_rules

__all__ = ["Dfa", "National", "RegionAutomata", "compile_patterns", "national_tables", "region_automata"]

MAX_UNROLL = 20  # digit strings are at most 17 long: unbounded repeats are cut here
MAX_STATES = 60_000
_DIGITS = frozenset(range(48, 58))


class Unsupported(Exception):
    """A construct outside what metadata patterns use."""


@dataclass(frozen=True)
class Dfa:
    """Transitions as rows of 10 uint32 (state 0 is dead), accepting states as bytes, and (when asked
    for) per state a uint16 of which patterns fully match there (bit i: the i-th pattern compiled)."""

    table: bytes
    accept: bytes
    masks: bytes = b""

    @property
    def states(self) -> int:
        return len(self.accept)

    def fullmatch(self, digits: str) -> bool:
        return bool(self.accept[self._run(digits)])

    def prefix_lengths(self, digits: str) -> list[int]:
        out, state = [], 1
        for i, ch in enumerate(digits):
            if self.accept[state] and i > 0:
                out.append(i)
            state = self._next(state, ch)
            if state == 0:
                return out
        if self.accept[state]:
            out.append(len(digits))
        return out

    def _next(self, state: int, ch: str) -> int:
        i = (state * 10 + (ord(ch) - 48)) * 4
        return int.from_bytes(self.table[i : i + 4], "little")

    def _run(self, digits: str) -> int:
        state = 1
        for ch in digits:
            state = self._next(state, ch)
            if state == 0:
                return 0
        return state


class _Nfa:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset[int], int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, items: list[tuple[object, object]], start: int) -> int:
        cur = start
        for op, av in items:
            cur = self._node(op, av, cur)
        return cur

    def _node(self, op: object, arg: object, start: int) -> int:
        av: Any = arg
        if op is sre_c.LITERAL:
            end = self.state()
            self.edges[start].append((frozenset({int(av)}) & _DIGITS, end))
            return end
        if op is sre_c.IN:
            end = self.state()
            self.edges[start].append((_charset(av), end))
            return end
        if op is sre_c.ANY:
            end = self.state()
            self.edges[start].append((_DIGITS, end))
            return end
        if op is sre_c.SUBPATTERN:
            return self.build(list(av[-1]), start)
        if op is sre_c.BRANCH:
            end = self.state()
            for branch in av[1]:
                s = self.state()
                self.eps[start].append(s)
                self.eps[self.build(list(branch), s)].append(end)
            return end
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            hi = min(hi, MAX_UNROLL) if hi != sre_c.MAXREPEAT else MAX_UNROLL
            cur = start
            for _ in range(lo):
                cur = self.build(list(sub), cur)
            end = self.state()
            self.eps[cur].append(end)
            for _ in range(hi - lo):
                cur = self.build(list(sub), cur)
                self.eps[cur].append(end)
            return end
        raise Unsupported(str(op))


def _charset(items: list[tuple[Any, Any]]) -> frozenset[int]:
    out: set[int] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            out.add(int(av))
        elif op is sre_c.RANGE:
            lo, hi = av
            out.update(range(lo, hi + 1))
        elif op is sre_c.CATEGORY and av is sre_c.CATEGORY_DIGIT:
            out.update(_DIGITS)
        else:
            raise Unsupported(str(op))
    return frozenset(_DIGITS - out) if negate else frozenset(out & _DIGITS)


def compile_patterns(patterns: list[str], extra: tuple[str, ...] = (), *, marks: bool = False) -> Dfa:
    """One automaton accepting the digit strings any of `patterns` fully matches. `extra` patterns are
    compiled beside them without making a state accepting; `marks` records in `masks` which of all of
    them (patterns first) match at each state (16 at most)."""
    everything = [*patterns, *extra]
    if marks and len(everything) > 16:
        raise Unsupported("more than 16 marked patterns")
    if extra and not marks:
        raise ValueError("extra patterns show only in the marks")
    nfa = _Nfa()
    start = nfa.state()
    shared = None if marks else nfa.state()  # unmarked: one accepting state (fewer distinct subsets)
    ends: dict[int, int] = {}  # an accepting NFA state -> its pattern's bit (0 for the shared one)
    for index, pattern in enumerate(everything):
        s = nfa.state()
        end = shared if shared is not None else nfa.state()
        nfa.eps[start].append(s)
        nfa.eps[nfa.build(list(sre_p.parse(pattern)), s)].append(end)
        ends[end] = index if marks else 0

    def closure(states: frozenset[int]) -> frozenset[int]:
        stack, seen = list(states), set(states)
        while stack:
            for t in nfa.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    def mask(states: frozenset[int]) -> int:
        return sum(1 << ends[s] for s in states if s in ends)

    accepting_bits = (1 << len(patterns)) - 1 if marks else 1
    ids: dict[frozenset[int], int] = {frozenset(): 0}
    rows: list[list[int]] = [[0] * 10]
    masks = [0]
    todo = [closure(frozenset({start}))]
    ids[todo[0]] = 1
    rows.append([0] * 10)
    masks.append(mask(todo[0]))
    while todo:
        current = todo.pop()
        row = rows[ids[current]]
        for d in range(10):
            moved = frozenset(t for s in current for chars, t in nfa.edges[s] if 48 + d in chars)
            target = closure(moved) if moved else frozenset()
            if target not in ids:
                if len(ids) >= MAX_STATES:
                    raise Unsupported("too many states")
                ids[target] = len(rows)
                rows.append([0] * 10)
                masks.append(mask(target))
                todo.append(target)
            row[d] = ids[target]
    table = b"".join(v.to_bytes(4, "little") for row in rows for v in row)
    accept = bytes(int(m & accepting_bits != 0) for m in masks)
    return Dfa(table, accept, b"".join(m.to_bytes(2, "little") for m in masks) if marks else b"")


@dataclass(frozen=True)
class National:
    """The scanner's exact test of a plain national number (core.phone_national's, as automata): the
    region's `types` automaton marks each number type's pattern (bits 0..n-1) and the general
    description's (`general_bit`); `length_masks[L]` (uint16, L = 0..MAX_NSN) has the bit of every
    description whose possible lengths admit L (or list none). Valid: the general bit and a type bit
    both survive the length mask of the digits' count."""

    country_code: str
    general_bit: int
    type_bits: int
    length_masks: bytes


def national_tables(rules: NationalRules, type_count: int) -> National:
    """`rules`' lengths as the scanner reads them; the types are bits 0..type_count-1, general next."""
    descriptions = [*rules.types, rules.general]
    out = bytearray()
    for length in range(MAX_NSN + 1):
        bits = sum(1 << i for i, (lengths, _) in enumerate(descriptions) if not lengths or length in lengths)
        out += bits.to_bytes(2, "little")
    return National(rules.country_code, 1 << type_count, (1 << type_count) - 1, bytes(out))


@dataclass(frozen=True)
class RegionAutomata:
    """What the scanner needs to rule numbers out for one calling code."""

    country_code: int
    types: Dfa  # every number-type pattern of every region sharing the calling code
    national_prefix: Dfa | None  # national_prefix_for_parsing (prefix matches), of the main region
    idd: Dfa | None  # the region's international prefix (a national number starting so is not ruled out)
    national: National | None = None  # the exact test, for a region with a calling code of its own


def _main_metadata(country_code: int) -> PhoneMetadata | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    return PhoneMetadata.metadata_for_region(region) if region != "ZZ" else None


@functools.lru_cache(maxsize=64)
def region_automata(region: str) -> RegionAutomata | None:
    """The automata for `region`'s calling code, or None when this test cannot be made exact."""
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return None
    code = int(meta.country_code or 0)
    main = _main_metadata(code)
    if main is None:
        return None
    rules = national_rules(region)
    patterns: list[str] = []
    for member in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        m = PhoneMetadata.metadata_for_region(member)
        if m is None:
            return None
        for kind in NUMBER_TYPES:
            desc = getattr(m, kind, None)
            if desc is not None and desc.national_number_pattern:
                patterns.append(desc.national_number_pattern)
    try:
        if rules is not None and [p for _, p in rules.types] != patterns:
            rules = None  # (never so today: the region's own types are the calling code's)
        if rules is not None:  # the same type patterns, the general one marked beside them
            types = compile_patterns(patterns, (rules.general[1],), marks=True)
        else:
            types = compile_patterns(patterns) if patterns else compile_patterns(["(?!)x"])
        for m in {id(meta): meta, id(main): main}.values():
            if m.national_prefix_transform_rule:
                return None
        npfp = main.national_prefix_for_parsing
        national_prefix = compile_patterns([npfp]) if npfp else None
        if meta.national_prefix_for_parsing != main.national_prefix_for_parsing:
            return None  # stripping differs between the region and its calling code's main region
        idd = compile_patterns([meta.international_prefix]) if meta.international_prefix else None
    except (Unsupported, RecursionError, re.error):
        return None
    national = national_tables(rules, len(patterns)) if rules is not None else None
    return RegionAutomata(code, types, national_prefix, idd, national)
