"""The search interface every backend implements, and what they share: selectors, query parsing, snippets.

Why one module of shared logic: tantivy, PostgreSQL full text and Elasticsearch must answer the same query
the same way (the CLI contract does not say which backend runs), so query syntax, selector detection and
normalisation, and snippet marking live here, and a backend only translates the parsed query.

Query syntax (hostile input never crashes: a malformed query degrades to a plain-term search, or raises
`BadInput` when nothing searchable is left)::

    acme password            both words (AND is implied)
    "customer data"          a phrase; 客户数据 is always searched as a phrase of bigrams
    acme OR globex           either
    acme -test, acme NOT test, acme AND NOT test
    (acme OR globex) leak    grouping
    alice@acme.com           a selector: the whole query (or a bare term) that is an email, phone,
                             domain, IP, card, BTC address or MD5/SHA-1/SHA-256 is looked up exactly

Usage::

    backend = open_backend(settings)
    backend.index([SearchDoc(...)])
    page = backend.search(SearchQuery("客户数据", source="pastebin", limit=20))
    more = backend.search(SearchQuery("客户数据", source="pastebin", after=page.next_cursor))
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import phonenumbers
import re2

from core.errors import BadInput
from core.search.cjk import CJK_RANGES, is_cjk_char, runs, tokenize

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "BACKENDS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "And",
    "CharLeaf",
    "Node",
    "Not",
    "Or",
    "SearchBackend",
    "SearchDoc",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SelectorLeaf",
    "TokensLeaf",
    "backend_name",
    "decode_cursor",
    "encode_cursor",
    "extract_selectors",
    "is_selector",
    "make_snippet",
    "open_backend",
    "parse_query",
    "query_fingerprint",
    "selector_terms",
    "snippet_regex",
    "to_utc",
]

#: Longer queries are refused (BadInput): nobody types them, and each term costs a posting-list walk.
MAX_QUERY_CHARS = 4096
#: At most this many terms/phrases in one query.
MAX_QUERY_TERMS = 64
#: Parentheses deeper than this are read as plain grouping-free text.
MAX_DEPTH = 16
SNIPPET_CHARS = 200
#: A snippet looks for the match in this much of the posting's text.
SNIPPET_SCAN_CHARS = 1_000_000
MARK_OPEN, MARK_CLOSE = "[[", "]]"


# --------------------------------------------------------------------------- value objects


@dataclass
class SearchDoc:
    """One posting as the index sees it."""

    id: int
    url: str
    source: str
    source_kind: str
    title: str | None
    author: str | None
    published: datetime | None
    fetched: datetime
    text: str

    @property
    def seen(self) -> datetime:
        """The date filters and day facets use: when it was posted, else when it was fetched."""
        return to_utc(self.published or self.fetched)


@dataclass
class SearchHit:
    id: int
    url: str
    source: str
    title: str | None
    published: datetime | None
    fetched: datetime
    snippet: str
    score: float

    def to_json(self) -> dict[str, Any]:
        """The CLI contract's object: ``{"id","url","source","title","published","fetched","snippet"}``."""
        return {
            "id": self.id,
            "url": self.url,
            "source": self.source,
            "title": self.title,
            "published": self.published.isoformat() if self.published else None,
            "fetched": self.fetched.isoformat(),
            "snippet": self.snippet,
        }


@dataclass
class SearchQuery:
    text: str
    source: str | None = None
    #: Inclusive bounds on the posting's date (published, else fetched).
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    #: Opaque cursor from a previous page's `SearchPage.next_cursor` (same query and filters).
    after: str | None = None
    #: Only postings from sources of this kind (pastebin, phpbb, telegram...).
    source_kind: str | None = None
    #: Only these postings (e.g. those relevant to one tenant); None: no restriction.
    ids: frozenset[int] | None = None


@dataclass
class SearchPage:
    hits: list[SearchHit]
    #: Every matching posting (not only this page).
    total: int
    #: Pass as `SearchQuery.after` for the next page; None on the last page.
    next_cursor: str | None
    #: ``{"source": {name: count}, "day": {"YYYY-MM-DD": count}}`` over all matching postings.
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    def index(self, docs: Iterable[SearchDoc]) -> int:
        """Add or replace (by id) postings; returns how many were indexed. Visible to searches on return."""
        ...

    def search(self, q: SearchQuery) -> SearchPage: ...

    def delete(self, ids: Iterable[int]) -> int: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


BACKENDS = ("auto", "tantivy", "postgres", "elasticsearch")


def backend_name(settings: Settings) -> str:
    """The backend ``search_backend`` picks: "auto" is Elasticsearch when ``search_url`` is set, else
    PostgreSQL full text when the database is PostgreSQL (the fleet default: one index every machine
    shares), else tantivy in the home."""
    name = (settings.search_backend or "auto").strip().lower()
    if name not in BACKENDS:
        raise BadInput(f"setting search_backend: expected one of {', '.join(BACKENDS)}, got {name!r}")
    if name != "auto":
        return name
    if settings.search_url:
        return "elasticsearch"
    if settings.database_url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        return "postgres"
    return "tantivy"


def open_backend(settings: Settings) -> SearchBackend:
    """The configured backend (`backend_name`); each is imported only when chosen."""
    name = backend_name(settings)
    if name == "elasticsearch":
        if not settings.search_url:
            raise BadInput("search_backend is elasticsearch but search_url is not set")
        from core.search.es_backend import ElasticsearchBackend

        return ElasticsearchBackend(settings.search_url)
    if name == "postgres":
        from core.db import open_database
        from core.search.pg_backend import PostgresBackend

        return PostgresBackend(open_database(settings).engine)
    from core.search.tantivy_backend import TantivyBackend

    return TantivyBackend(settings.home / "search")


def to_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC (that is how the database stores them)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------- cursors


def query_fingerprint(q: SearchQuery) -> str:
    """Ties a cursor to its query, so a cursor reused with other terms or filters is refused."""
    key = json.dumps(
        [
            q.text,
            q.source,
            q.since.isoformat() if q.since else None,
            q.until.isoformat() if q.until else None,
            q.source_kind,
            sorted(q.ids) if q.ids is not None else None,
        ]
    )
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_cursor(q: SearchQuery, state: dict[str, Any]) -> str:
    payload = {"f": query_fingerprint(q), **state}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(q: SearchQuery) -> dict[str, Any] | None:
    """The state stored in ``q.after``; BadInput for a cursor that is garbage or from another query."""
    if not q.after:
        return None
    try:
        raw = base64.urlsafe_b64decode(q.after + "=" * (-len(q.after) % 4))
        state = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadInput("invalid search cursor") from None
    if not isinstance(state, dict):
        raise BadInput("invalid search cursor")
    if state.get("f") != query_fingerprint(q):
        raise BadInput("the search cursor belongs to another query or other filters")
    return state


# --------------------------------------------------------------------------- parsed query


@dataclass(frozen=True)
class TokensLeaf:
    """Index tokens that must appear in this order (one token: a term; several: a phrase)."""

    tokens: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class CharLeaf:
    """A lone CJK character: found inside any bigram that holds it."""

    char: str


@dataclass(frozen=True)
class SelectorLeaf:
    kind: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = TokensLeaf | CharLeaf | SelectorLeaf | And | Or | Not

_LEX = re.compile(r'"[^"]*"?|[()]|[^\s()"]+')
_OPERATORS = {"AND", "OR", "NOT"}


def _lex(text: str) -> list[tuple[str, str]]:
    """(kind, value): kinds ``(``, ``)``, ``op``, ``not``, ``phrase``, ``word``."""
    out: list[tuple[str, str]] = []
    for m in _LEX.finditer(text):
        lexeme = m.group(0)
        if lexeme in "()":
            out.append((lexeme, lexeme))
        elif lexeme.startswith('"'):
            if len(lexeme) > 1 and lexeme.endswith('"'):
                out.append(("phrase", lexeme[1:-1]))
            else:  # unbalanced quote: its words become plain terms
                out.extend(("word", w) for w in lexeme[1:].split())
        elif lexeme in _OPERATORS:
            out.append(("not", lexeme) if lexeme == "NOT" else ("op", lexeme))
        elif lexeme.startswith("-") and len(lexeme) > 1 and not is_selector(lexeme):
            out.append(("not", "-"))
            out.append(("word", lexeme[1:]))
        elif lexeme.startswith("+") and len(lexeme) > 1 and not is_selector(lexeme):
            out.append(("word", lexeme[1:]))
        else:
            out.append(("word", lexeme))
    return out


def _leaf(text: str, phrase: bool) -> Node | None:
    if not phrase:
        found = _classify(text)
        if found:
            return SelectorLeaf(found[0], tuple(found[1]))
    tokens = tokenize(text)
    if not tokens:
        return None
    if len(tokens) == 1 and len(tokens[0]) == 1 and is_cjk_char(tokens[0]):
        return CharLeaf(tokens[0])
    return TokensLeaf(tuple(tokens), text)


class _Parser:
    """Recursive descent over the lexemes; anything unexpected is skipped, never raised."""

    def __init__(self, lexemes: list[tuple[str, str]]) -> None:
        self.lex = lexemes
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.lex[self.pos][0] if self.pos < len(self.lex) else None

    def parse(self) -> Node | None:
        parts: list[Node] = []
        while self.pos < len(self.lex):
            node = self.parse_or()
            if node is not None:
                parts.append(node)
            if self.peek() == ")":  # a stray closing parenthesis
                self.pos += 1
        return _and(parts)

    def parse_or(self) -> Node | None:
        parts = [self.parse_and()]
        while self.peek() == "op" and self.lex[self.pos][1] == "OR":
            self.pos += 1
            parts.append(self.parse_and())
        kept = [p for p in parts if p is not None]
        if len(kept) > 1:
            return Or(tuple(kept))
        return kept[0] if kept else None

    def parse_and(self) -> Node | None:
        parts: list[Node] = []
        while True:
            kind = self.peek()
            if kind is None or kind == ")" or (kind == "op" and self.lex[self.pos][1] == "OR"):
                break
            if kind == "op":  # AND is implied
                self.pos += 1
                continue
            node = self.parse_unary()
            if node is not None:
                parts.append(node)
        return _and(parts)

    def parse_unary(self) -> Node | None:
        if self.peek() == "not":
            self.pos += 1
            if self.peek() in (None, ")", "op"):
                return None
            child = self.parse_unary()
            return Not(child) if child is not None else None
        return self.parse_primary()

    def parse_primary(self) -> Node | None:
        kind, value = self.lex[self.pos]
        self.pos += 1
        if kind == "(":
            if self.depth >= MAX_DEPTH:
                return None
            self.depth += 1
            node = self.parse_or()
            self.depth -= 1
            if self.peek() == ")":
                self.pos += 1
            return node
        if kind in ("word", "phrase"):
            return _leaf(value, phrase=kind == "phrase")
        return None


def _and(parts: list[Node]) -> Node | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _leaves(node: Node) -> Iterator[Node]:
    if isinstance(node, And | Or):
        for child in node.children:
            yield from _leaves(child)
    elif isinstance(node, Not):
        yield from _leaves(node.child)
    else:
        yield node


def positive_leaves(node: Node) -> list[Node]:
    """Leaves not under a NOT: what a snippet should mark."""
    if isinstance(node, And | Or):
        return [leaf for child in node.children for leaf in positive_leaves(child)]
    if isinstance(node, Not):
        return []
    return [node]


def parse_query(text: str) -> Node:
    """The query as a tree of leaves; BadInput when it is too long or holds nothing searchable."""
    if not isinstance(text, str):
        raise BadInput("the search query must be text")
    text = text.replace("\x00", " ")
    if len(text) > MAX_QUERY_CHARS:
        raise BadInput(f"search query too long ({len(text)} characters, at most {MAX_QUERY_CHARS})")
    if not text.strip():
        raise BadInput("empty search query")
    found = _classify(text)
    if found:
        return SelectorLeaf(found[0], tuple(found[1]))
    node = _Parser(_lex(text)).parse()
    if node is None:
        # Nothing but operators and punctuation ("AND OR", "((("): search the words themselves.
        node = _and([leaf for leaf in (_leaf(w, False) for w in text.split()) if leaf is not None])
    if node is None:
        raise BadInput(f"nothing to search for in {text[:80]!r}")
    if sum(1 for _ in _leaves(node)) > MAX_QUERY_TERMS:
        raise BadInput(f"too many terms in the search query (at most {MAX_QUERY_TERMS})")
    return node


# --------------------------------------------------------------------------- snippets


def _leaf_pattern(leaf: Node) -> str | None:
    if isinstance(leaf, SelectorLeaf):
        return selector_pattern(leaf.kind, list(leaf.terms))
    if isinstance(leaf, CharLeaf):
        return re.escape(leaf.char)
    if isinstance(leaf, TokensLeaf):
        parts = []
        for kind, run in runs(leaf.text):
            parts.append(
                re.escape(run)
                if kind == "cjk"
                else rf"(?<![^\W_{CJK_RANGES}]){re.escape(run)}(?![^\W_{CJK_RANGES}])"
            )
        return r"[\W_]{0,8}".join(parts) if parts else None
    return None


def snippet_regex(node: Node) -> re.Pattern[str] | None:
    """One case-insensitive alternation of the query's positive leaves, as they may be written."""
    patterns = [p for p in (_leaf_pattern(leaf) for leaf in positive_leaves(node)) if p]
    if not patterns:
        return None
    patterns.sort(key=len, reverse=True)
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _clean(text: str) -> str:
    return " ".join(text.split())


def make_snippet(text: str, regex: re.Pattern[str] | None, width: int = SNIPPET_CHARS) -> str:
    """About `width` characters around the first match, matches marked ``[[...]]`` (plain text)."""
    scan = text[:SNIPPET_SCAN_CHARS]
    first = regex.search(scan) if regex is not None else None
    if first is None:
        head = scan[: width * 2]
        out = _clean(head)[:width]
        return out + ("…" if len(_clean(scan[: width * 3])) > len(out) else "")
    start = max(0, first.start() - max(0, (width - (first.end() - first.start())) // 3))
    end = max(first.end(), min(len(scan), start + width))
    window = scan[start:end]
    assert regex is not None
    marked = regex.sub(lambda m: f"{MARK_OPEN}{m.group(0)}{MARK_CLOSE}" if m.group(0) else "", window)
    return ("…" if start > 0 else "") + _clean(marked) + ("…" if end < len(text) else "")


# --------------------------------------------------------------------------- selectors
# Why a separate field: a word index splits ``alice@acme.com`` into ``alice acme com`` and finds every
# posting about Alice or Acme. Selectors are extracted at index time into their own exact-term field,
# normalised one way, and a query that *is* a selector is normalised the same way and looked up there,
# so it finds exactly the postings holding that value.
#
# Normal forms (both sides): emails lower-case with an IDNA domain; domains lower-case without the
# trailing dot (a posting mentioning ``vpn.acme.com`` or ``bob@acme.com`` also holds ``acme.com``); IPs in
# their compressed form; phones as digits: an international number as country code + national number
# *and* the national number alone (so ``+86 138 0013 8000`` also finds ``138-0013-8000``), national
# numbers without the trunk ``0``; cards as Luhn-valid digits; hashes lower-case hex; BTC legacy
# addresses as written (base58check-valid), bech32 lower-case.

MAX_SELECTOR_CHARS = 320

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(
    rf"(?<![a-z0-9._%+-])[a-z0-9._%+-]{{1,64}}@((?:{_LABEL}\.){{1,8}}[a-z]{{2,63}})(?![a-z0-9-])",
    re.IGNORECASE,
)
_DOMAIN = re.compile(rf"(?<![\w.@-])(?:{_LABEL}\.){{1,8}}[a-z]{{2,63}}(?![\w-])", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![0-9a-f:.])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![0-9a-f:])", re.IGNORECASE)
_HASH = re.compile(r"(?<![0-9a-z])(?:[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{32})(?![0-9a-z])", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-]|[ ]\d)")
_BTC_LEGACY = re.compile(r"(?<![A-Za-z0-9])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![A-Za-z0-9])")
_BTC_BECH32 = re.compile(r"(?<![A-Za-z0-9])bc1[02-9ac-hj-np-z]{11,71}(?![A-Za-z0-9])", re.IGNORECASE)
_PHONE_INTL = re.compile(r"(?<![\w+])(?:\+|\b00)(\d{1,4}(?:[ .-]?\(?\d{1,5}\)?){1,6})(?![\w])")
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+(.])(?<!\d[ .-])(\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]\d{3,4})(?![\w.]|[ .-]\d)"
)
_CN_MOBILE = re.compile(r"(?<![\d.+-])1[3-9]\d{9}(?![\d.-])")
_NON_DIGIT = re.compile(r"\D+")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

# The same patterns, written for scanning a posting (`extract_selectors`): they find exactly the same
# matches (tests/core/test_core_search_batch.py compares them), but each begins with the character class
# its match must start with, so the regex engine skips every other position in a fast C loop instead of
# trying the whole pattern there (the look-behind moves after that first character). That needs
# case-sensitive classes: ``[a-z]`` under IGNORECASE also matches İ ı ſ K (Kelvin sign), spelt out here.
_AZ = "a-zA-Z\u0130\u0131\u017f\u212a"
_ANY = "(?s:.)"
_LABEL_CS = rf"[0-9{_AZ}](?:[0-9{_AZ}-]{{0,61}}[0-9{_AZ}])?"
_LOCAL_CS = rf"0-9._%+{_AZ}-"
_EMAIL_SCAN = re.compile(
    rf"[{_LOCAL_CS}](?<![{_LOCAL_CS}]{_ANY})[{_LOCAL_CS}]{{0,63}}"
    rf"@(?:{_LABEL_CS}\.){{1,8}}[{_AZ}]{{2,63}}(?![0-9{_AZ}-])"
)
# The first label is the whole run of label characters before its dot ("." is not one of them), so it is
# taken possessively: a word without a dot fails at its end instead of giving back one character at a time.
_DOMAIN_SCAN = re.compile(
    rf"[0-9{_AZ}](?<![\w.@-]{_ANY})[0-9{_AZ}-]{{0,62}}+(?<!-)\."
    rf"(?:{_LABEL_CS}\.){{0,7}}[{_AZ}]{{2,63}}(?![\w-])"
)
_IPV4_SCAN = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\.?\d)")
_IPV6_SCAN = re.compile(
    rf"[0-9a-fA-F:](?<![0-9a-fA-F:.]{_ANY})"
    r"(?:(?<=:)[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){1,6}|(?<!:)[0-9a-fA-F]{0,3}(?::[0-9a-fA-F]{0,4}){2,7})"
    r"(?![0-9a-fA-F:])"
)
_HASH_SCAN = re.compile(
    rf"[0-9a-fA-F](?<![0-9{_AZ}]{_ANY})(?:[0-9a-fA-F]{{63}}|[0-9a-fA-F]{{39}}|[0-9a-fA-F]{{31}})(?![0-9{_AZ}])"
)
_CARD_SCAN = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-]|[ ]\d)")
_BTC_LEGACY_SCAN = re.compile(r"[13](?<![A-Za-z0-9][13])[1-9A-HJ-NP-Za-km-z]{25,34}(?![A-Za-z0-9])")
_BTC_BECH32_SCAN = re.compile(
    rf"[bB](?<![0-9{_AZ}]{_ANY})[cC]1[02-9ac-hj-np-zAC-HJ-NP-Z\u017f\u212a]{{11,71}}(?![0-9{_AZ}])"
)
_PHONE_INTL_SCAN = re.compile(
    rf"[+0](?<![\w+]{_ANY})(?:(?<=\+)|(?<=0)0)(\d{{1,4}}(?:[ .-]?\(?\d{{1,5}}\)?){{1,6}})(?![\w])"
)
_PHONE_NATIONAL_SCAN = re.compile(
    rf"([(\d](?<![\w+(.]{_ANY})(?<!\d[ .-]{_ANY})(?:(?<=\()\d{{2,4}}|(?<!\()\d{{1,3}})\)?[ .-]?\d{{3,4}}[ .-]\d{{3,4}})"
    r"(?![\w.]|[ .-]\d)"
)
_CN_MOBILE_SCAN = re.compile(r"1(?<![\d.+-]1)[3-9]\d{9}(?![\d.-])")
_DIGIT_GROUPS = re.compile(r"\d+")
# The same scans for ASCII text (most postings): with re.ASCII, \d and \w are byte-table lookups instead
# of Unicode database calls, and on ASCII text they match exactly the same characters.
_DOMAIN_SCAN_ASCII = re.compile(_DOMAIN_SCAN.pattern, re.ASCII)
_IPV4_SCAN_ASCII = re.compile(_IPV4_SCAN.pattern, re.ASCII)
_CARD_SCAN_ASCII = re.compile(_CARD_SCAN.pattern, re.ASCII)
_PHONE_NATIONAL_SCAN_ASCII = re.compile(_PHONE_NATIONAL_SCAN.pattern, re.ASCII)
#: Normalised selectors of recently seen values (a crawl sees the same domains and numbers again and again).
_CACHE_SIZE = 8192

# Presence tests run before the scans (`extract_selectors`): each is something every match of its scan
# pattern holds, or every match that yields a term (a hash holds 32 hex digits in a row, a card 13 digits
# with at most one space or hyphen between them...), so a posting without it cannot yield a term of that
# kind and the scan is skipped. RE2 answers in
# one DFA pass over the UTF-8 bytes, about ten times faster than an `re` scan, which tries its pattern at
# every position its first character class allows. ``\p{Nd}`` holds every character Python's ``\d``
# matches (tests/core/test_search_speed.py checks all of Unicode).
_RE2_AZ = rb"[a-zA-Z\x{130}\x{131}\x{17f}\x{212a}]"
_RE2_D = rb"\p{Nd}"


def _has(pattern: bytes) -> Callable[[bytes], object]:
    return re2.compile(pattern).search


_HAS_DOMAIN = _has(rb"\." + _RE2_AZ + _RE2_AZ)
_HAS_IPV4 = _has(_RE2_D + rb"\." + _RE2_D + rb"{1,3}\." + _RE2_D + rb"{1,3}\." + _RE2_D)
# An IPv6 term needs a candidate ipaddress accepts: with "::", or eight groups of 1-4 hex digits.
_HAS_IPV6 = _has(rb"::|[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){7}")
_HAS_HASH = _has(rb"[0-9a-fA-F]{32}")
_HAS_BTC_LEGACY = _has(rb"[13][1-9A-HJ-NP-Za-km-z]{25}")
_HAS_BTC_BECH32 = _has(rb"[bB][cC]1")
_HAS_CARD = _has(_RE2_D + rb"(?:[ -]?" + _RE2_D + rb"){12}")
_HAS_PHONE_INTL = _has(rb"(?:\+|00)" + _RE2_D)
_HAS_PHONE_NATIONAL = _has(_RE2_D + rb"{3}[ .-]" + _RE2_D + rb"{3}")
_HAS_CN_MOBILE = _has(rb"1[3-9]" + _RE2_D + rb"{9}")


# --------------------------------------------------------------------------- normalisers


def _domain(value: str) -> str | None:
    domain = value.strip().rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    if len(domain) > 253 or not _DOMAIN_NAME.fullmatch(domain):
        return None
    return domain


_DOMAIN_NAME = re.compile(rf"(?:{_LABEL}\.){{1,126}}(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})")
_LOCAL_PART = re.compile(r"[A-Za-z0-9._%+-]+")


def _parents(domain: str) -> list[str]:
    """``a.b.acme.com`` → itself, ``b.acme.com``, ``acme.com`` (never the bare TLD)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _email(value: str) -> str | None:
    local, sep, host = value.strip().rpartition("@")
    if not sep or not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    domain = _domain(host)
    return f"{local.lower()}@{domain}" if domain else None


def _ip(value: str) -> str | None:
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        return None


# Digit values, and doubled digits' digit sums, by byte: the Luhn sum in a few C calls.
_LUHN_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def _luhn(digits: str) -> bool:
    """Luhn check of ASCII digits (the last one is the check digit)."""
    raw = digits.encode("ascii")
    return (sum(raw[::-2].translate(_LUHN_PLAIN)) + sum(raw[-2::-2].translate(_LUHN_DOUBLED))) % 10 == 0


def _card(value: str) -> str | None:
    digits = value.strip().replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit() and _luhn(digits):
        return digits
    return None


def _base58check(address: str) -> bool:
    num = 0
    for ch in address:
        idx = _B58_INDEX.get(ch)
        if idx is None:
            return False
        num = num * 58 + idx
    raw = num.to_bytes(25, "big") if num.bit_length() <= 200 else b""
    if len(raw) != 25:
        return False
    return hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def _btc(value: str) -> str | None:
    value = value.strip()
    if _BTC_LEGACY.fullmatch(value) and _base58check(value):
        return value
    if _BTC_BECH32.fullmatch(value) and (value.islower() or value.isupper()):
        return value.lower()
    return None


def _intl_phone(digits: str) -> list[str]:
    """Digits after ``+``/``00`` → [cc+nsn, nsn] when libphonenumber finds a possible number."""
    if not 7 <= len(digits) <= 15:
        return []
    if _PN is not None and digits.isascii():
        fast = _intl_phone_fast(digits)
        if fast is not None:
            return fast
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return []
    if not phonenumbers.is_possible_number(number):
        return []
    nsn = phonenumbers.national_significant_number(number)
    return [f"{number.country_code}{nsn}", nsn]


try:  # libphonenumber's own steps, for `_intl_phone_fast` (an AttributeError here: another version)
    from phonenumbers import phonenumberutil as _PN

    _PN_STEPS = (
        _PN._extract_country_code,
        _PN._maybe_strip_national_prefix_carrier_code,
        _PN._test_number_length,
        _PN.region_code_for_country_code,
        phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code,
    )
    _PN_KEEP_UNSTRIPPED = (
        _PN.ValidationResult.TOO_SHORT,
        _PN.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        _PN.ValidationResult.INVALID_LENGTH,
    )
    _PN_POSSIBLE = (_PN.ValidationResult.IS_POSSIBLE, _PN.ValidationResult.IS_POSSIBLE_LOCAL_ONLY)
except (ImportError, AttributeError):  # another libphonenumber: `_intl_phone` parses
    _PN = None  # type: ignore[assignment]


def _intl_phone_fast(digits: str) -> list[str] | None:
    """`_intl_phone` of 7-15 ASCII digits, by the steps ``phonenumbers.parse("+" + digits, None)`` and
    ``is_possible_number`` take for such a string, without their handling of any other input (about five
    times faster; tests/core/test_search_speed.py compares them); None: ask ``parse``.

    After "+" the country code is the shortest prefix that is one (none: not a number); the national
    number loses its national prefix / carrier code when what is left is a possible length; a number of
    digits keeps its leading zeros, so the national significant number is that digit string."""
    for size in range(1, _PN._MAX_LENGTH_COUNTRY_CODE + 1):  # `_PN._extract_country_code`, by string
        cc = _PN_COUNTRY_CODES.get(digits[:size], 0)
        if cc:
            national = digits[size:]
            break
    else:
        return []
    metadata = _pn_metadata(cc)
    if metadata is None:
        return None
    if len(national) < 2:
        return []
    prefix = _pn_prefix(cc)
    if prefix is not None and prefix.match(national):  # else nothing to strip (as the step finds)
        _, potential, _ = _PN._maybe_strip_national_prefix_carrier_code(national, metadata)
        if _pn_length(cc, len(potential)) not in _PN_KEEP_UNSTRIPPED:
            national = potential
    if not 2 <= len(national) <= 17:
        return []
    if _pn_length(cc, len(national)) not in _PN_POSSIBLE:
        return []
    return [f"{cc}{national}", national]


#: Country calling codes by their decimal string (no code starts with "0": "0..." finds none, as in
#: `_PN._extract_country_code`).
_PN_COUNTRY_CODES = {str(cc): cc for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if cc}


@functools.cache  # at most one entry per country calling code
def _pn_metadata(cc: int) -> Any:
    return phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        cc, _PN.region_code_for_country_code(cc)
    )


@functools.cache  # at most one entry per country calling code
def _pn_prefix(cc: int) -> re.Pattern[str] | None:
    """The national prefix ``_PN._maybe_strip_national_prefix_carrier_code`` looks for at the start of a
    national number (it strips nothing when there is none, or it does not match)."""
    prefix = _pn_metadata(cc).national_prefix_for_parsing
    return re.compile(prefix) if prefix else None  # phonenumbers compiles it so (re_util.re_compile)


@functools.cache  # country calling codes x lengths 0-17
def _pn_length(cc: int, length: int) -> Any:
    """``_PN._test_number_length`` of a national number of `length` digits: it looks at nothing else of
    the number (tests/core/test_search_speed.py compares the fast path with parse)."""
    return _PN._test_number_length("0" * length, _pn_metadata(cc))


def _national_phone(text: str) -> list[str]:
    digits = _NON_DIGIT.sub("", text).lstrip("0")
    return [digits] if 6 <= len(digits) <= 12 else []


# --------------------------------------------------------------------------- query side


def _classify(text: str) -> tuple[str, list[str]] | None:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    if not value or len(value) > MAX_SELECTOR_CHARS:
        return None
    if any(c.isspace() for c in value) and not re.fullmatch(r"[\d ().+-]+", value):
        return None  # only phone and card numbers may hold spaces
    if "@" in value:
        email = _email(value)
        return ("email", [email]) if email else None
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return ("sha256", [value.lower()])
    if re.fullmatch(r"[0-9a-fA-F]{40}", value):
        return ("sha1", [value.lower()])
    if re.fullmatch(r"[0-9a-fA-F]{32}", value):
        return ("md5", [value.lower()])
    if re.fullmatch(r"(?:\d{1,3}\.){3}\d{1,3}", value):
        ip = _ip(value)
        return ("ipv4", [ip]) if ip else None
    if ":" in value and re.fullmatch(r"[0-9a-fA-F:]+", value) and value.count(":") >= 2:
        ip = _ip(value)
        return ("ipv6", [ip]) if ip and any(c != ":" for c in value) else None
    btc = _btc(value)
    if btc:
        return ("btc", [btc])
    if re.fullmatch(r"[\d ().+-]+", value):
        card = _card(value) if re.fullmatch(r"\d(?:[ -]?\d){12,18}", value) else None
        if card:
            return ("card", [card])
        m = re.fullmatch(r"(?:\+|00)(\d[\d ().-]*)", value)
        if m:
            terms = _intl_phone(_NON_DIGIT.sub("", m.group(1)))
            return ("phone", terms) if terms else None
        if _PHONE_NATIONAL.fullmatch(value) or _CN_MOBILE.fullmatch(value):
            terms = _national_phone(value)
            return ("phone", terms) if terms else None
        return None
    if "." in value and _DOMAIN.fullmatch(value.rstrip(".")):
        domain = _domain(value)
        return ("domain", [domain]) if domain else None
    if "." in value and not value.isascii():
        domain = _domain(value)  # an IDN such as 例子.中国
        if domain and "xn--" in domain:
            return ("domain", [domain])
    return None


def is_selector(text: str) -> str | None:
    """The selector kind the whole query is (email, phone, domain, ipv4, ipv6, card, btc, md5, sha1,
    sha256), or None for an ordinary text query."""
    found = _classify(text)
    return found[0] if found else None


def selector_terms(text: str) -> list[str]:
    """The normalised term(s) a selector query looks up in the selectors field ([] if not a selector)."""
    found = _classify(text)
    return found[1] if found else []


def selector_pattern(kind: str, terms: list[str]) -> str:
    """A regex (escaped, linear) that finds the selector as written in a posting, for snippets."""
    if kind == "phone":
        alternatives = {r"[\s().-]*".join(re.escape(d) for d in term) for term in terms}
        return "|".join(sorted(alternatives, key=len, reverse=True))
    if kind == "card":
        return "|".join(r"[ -]?".join(term) for term in terms)
    return "|".join(re.escape(term) for term in terms)


# --------------------------------------------------------------------------- index side


try:  # the native scan (core/search/_native/selectors.c; optional: without it the regexes scan)
    from core.search._selectors import scan as _native_scan
except ImportError:  # pragma: no cover - depends on the build
    _native_scan = None

#: ``LEAKSENTINEL_NATIVE_SCAN=0`` switches the native scan off, like every other native path (read at each
#: call, as tests switch it at run time).
_NATIVE_SWITCH = "LEAKSENTINEL_NATIVE_SCAN"


def extract_selectors(text: str) -> set[str]:
    """Every selector term found in a posting's text, normalised like `selector_terms`.

    The raw matches come from one native pass (`_selectors_native`) when the extension is built, else
    from the `_*_SCAN` regexes (`_selectors_regex`, the definition: the native scan returns exactly their
    ``findall``). Each distinct value is normalised once per posting, and recent values' terms are cached
    across postings (a crawl meets the same domains and numbers again and again)."""
    if _native_scan is not None and os.environ.get(_NATIVE_SWITCH, "1") != "0":
        return _selectors_native(text, _native_scan)
    return _selectors_regex(text)


def _selectors_native(text: str, scan: Callable[..., tuple[Any, ...]]) -> set[str]:
    """`_selectors_regex` on the native scan's matches: the same normalisation, without the presence
    tests (each only skips a scan whose matches would all yield no term). The scan is "cooked": emails
    come as {host: [ASCII local part lower-cased, ...]} (a non-ASCII local part is dropped, as `_email`
    refuses it) and cards as the digits of the Luhn-valid ASCII ones, what the regex path computes."""
    emails, domains, ipv4s, ipv6s, hashes, legacy, bech32, cards, intl, national, cn = scan(text, True)
    out: set[str] = set()
    for host, locals_ in emails.items():
        terms = _domain_terms(host)
        if terms:
            out.update(terms)
            at = "@" + terms[0]
            out.update([local + at for local in locals_])
    for found in set(domains):
        out.update(_domain_terms(found))
    for found in set(ipv4s):
        ip = _ipv4(found)
        if ip:
            out.add(ip)
    for candidate in set(ipv6s):
        # ipaddress accepts a candidate (at most 7 colons) only with "::" or 7 colons: times such as
        # 12:30:45 are not parsed.
        if candidate.strip(":") and ("::" in candidate or candidate.count(":") == 7):
            ip = _ip_cached(candidate)
            if ip and ":" in ip:
                out.add(ip)
    if hashes:
        out.update(h.lower() for h in hashes)
    for found in set(legacy):
        if _base58check(found):
            out.add(found)
    for found in set(bech32):
        if found.islower() or found.isupper():
            out.add(found.lower())
    out.update(cards)
    for found in set(intl):
        out.update(_intl_phone_terms(found))
    for found in set(national):
        out.update(_national_phone(found))
    out.update(cn)
    return out


def _selectors_regex(text: str) -> set[str]:
    """`extract_selectors` by the `_*_SCAN` regexes. A scan runs only when the posting holds what every
    match of it holds (`_HAS_*`, one RE2 pass each)."""
    out: set[str] = set()
    raw = text.encode("utf-8", "replace")  # lone surrogates become "?", which no presence test looks for
    ascii = text.isascii()
    if "@" in text:
        for found in set(_EMAIL_SCAN.findall(text)):
            # The scan's match is local@host, no space, one "@", a local part of 1-64 characters of
            # `_LOCAL_CS`: `_email` accepts it iff the local part is ASCII (not İ ı ſ K), and its domain
            # terms are the host's (`_domain_terms`, cached: a crawl meets few mail domains).
            local, _, host = found.rpartition("@")
            terms = _domain_terms(host)
            if terms and local.isascii():
                out.add(f"{local.lower()}@{terms[0]}")
                out.update(terms)
    if "." in text:
        if _HAS_DOMAIN(raw):
            for found in set((_DOMAIN_SCAN_ASCII if ascii else _DOMAIN_SCAN).findall(text)):
                out.update(_domain_terms(found))
        if _HAS_IPV4(raw):
            for found in set((_IPV4_SCAN_ASCII if ascii else _IPV4_SCAN).findall(text)):
                ip = _ipv4(found)
                if ip:
                    out.add(ip)
    if ("::" in text or text.count(":") >= 7) and _HAS_IPV6(raw):
        for candidate in set(_IPV6_SCAN.findall(text)):
            if candidate.strip(":"):
                ip = _ip_cached(candidate)
                if ip and ":" in ip:
                    out.add(ip)
    if _HAS_HASH(raw):
        out.update(h.lower() for h in _HASH_SCAN.findall(text))
    if "1" in text or "3" in text:  # every BTC address holds one ("bc1...", legacy "1..." / "3...")
        if _HAS_BTC_LEGACY(raw):
            for found in set(_BTC_LEGACY_SCAN.findall(text)):
                if _base58check(found):
                    out.add(found)
        if _HAS_BTC_BECH32(raw):
            for found in set(_BTC_BECH32_SCAN.findall(text)):
                if found.islower() or found.isupper():
                    out.add(found.lower())
    if _HAS_CARD(raw):
        for found in set((_CARD_SCAN_ASCII if ascii else _CARD_SCAN).findall(text)):
            # 13-19 digits (\d: any script) with single spaces or hyphens between: `_card` accepts the
            # ASCII ones that pass Luhn.
            digits = found.replace(" ", "").replace("-", "")
            if digits.isascii() and _luhn(digits):
                out.add(digits)
    if ("+" in text or "00" in text) and _HAS_PHONE_INTL(raw):
        for found in set(_PHONE_INTL_SCAN.findall(text)):
            out.update(_intl_phone_terms(found))
    if _HAS_PHONE_NATIONAL(raw):
        for found in set((_PHONE_NATIONAL_SCAN_ASCII if ascii else _PHONE_NATIONAL_SCAN).findall(text)):
            out.update(_national_phone(found))
    if _HAS_CN_MOBILE(raw):
        # 11 digits from "1": `_national_phone` gives the match itself (no separator, no leading zero).
        out.update(_CN_MOBILE_SCAN.findall(text))
    return out


def _ipv4(found: str) -> str | None:
    """`_ip` of an `_IPV4_SCAN` match (four dot-separated groups of 1-3 digits), without ipaddress for
    ASCII ones: valid iff every octet is at most 255 without a leading zero, and then written as it is."""
    if not found.isascii():
        return _ip_cached(found)
    for part in found.split("."):
        if (part[0] == "0" and len(part) > 1) or int(part) > 255:
            return None
    return found


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _domain_terms(found: str) -> tuple[str, ...]:
    domain = _domain(found)
    return tuple(_parents(domain)) if domain else ()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _ip_cached(found: str) -> str | None:
    return _ip(found)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _intl_phone_terms(found: str) -> tuple[str, ...]:
    """An international number as written after ``+``/``00``: the longest prefix of its digit groups
    (dropping at most 3 trailing groups: an extension, a stray number) that is a possible number."""
    groups = _DIGIT_GROUPS.findall(found)
    for cut in range(len(groups), max(len(groups) - 3, 0), -1):
        terms = _intl_phone("".join(groups[:cut]))
        if terms:
            return tuple(terms)
    return ()
