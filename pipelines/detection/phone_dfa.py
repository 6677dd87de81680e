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

from core.phone_national import NUMBER_TYPES

__all__ = ["Dfa", "RegionAutomata", "compile_patterns", "region_automata"]

MAX_UNROLL = 20  # digit strings are at most 17 long: unbounded repeats are cut here
MAX_STATES = 60_000
_DIGITS = frozenset(range(48, 58))


class Unsupported(Exception):
    """A construct outside what metadata patterns use."""


@dataclass(frozen=True)
class Dfa:
    """Transitions as rows of 10 uint32 (state 0 is dead), accepting states as bytes."""

    table: bytes
    accept: bytes

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


def compile_patterns(patterns: list[str]) -> Dfa:
    """One automaton accepting the digit strings any of `patterns` fully matches."""
    nfa = _Nfa()
    start, accept = nfa.state(), nfa.state()
    for pattern in patterns:
        s = nfa.state()
        nfa.eps[start].append(s)
        nfa.eps[nfa.build(list(sre_p.parse(pattern)), s)].append(accept)

    def closure(states: frozenset[int]) -> frozenset[int]:
        stack, seen = list(states), set(states)
        while stack:
            for t in nfa.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    ids: dict[frozenset[int], int] = {frozenset(): 0}
    rows: list[list[int]] = [[0] * 10]
    accepting = [0]
    todo = [closure(frozenset({start}))]
    ids[todo[0]] = 1
    rows.append([0] * 10)
    accepting.append(int(accept in todo[0]))
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
                accepting.append(int(accept in target))
                todo.append(target)
            row[d] = ids[target]
    table = b"".join(v.to_bytes(4, "little") for row in rows for v in row)
    return Dfa(table, bytes(accepting))


@dataclass(frozen=True)
class RegionAutomata:
    """What the scanner needs to rule numbers out for one calling code."""

    country_code: int
    types: Dfa  # every number-type pattern of every region sharing the calling code
    national_prefix: Dfa | None  # national_prefix_for_parsing (prefix matches), of the main region
    idd: Dfa | None  # the region's international prefix (a national number starting so is not ruled out)


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
    return RegionAutomata(code, types, national_prefix, idd)
