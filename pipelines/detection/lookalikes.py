"""Look-alike domains of watched domains: generated once per snapshot, found in one pass per posting.

Why this shape: a phishing kit harvesting logins on ``acme-bank-secure.com`` or ``acrne-bank.com`` is a
leak that concerns the owner of ``acme-bank.com`` although the exact domain never appears. The variants
(typos, homoglyphs, IDN homoglyphs as punycode, bit flips, added words, TLD swaps) come from dnstwist's
fuzzer, which runs offline; they are bounded per domain, computed when the watch snapshot loads (and
remembered per process), and searched in one pass, so the cost per posting follows the text and the
occurrences, never the number of variants.

The pass: the C extension ``_fingerprint.host_spans`` walks the text once and hands back only the whole
hosts whose hash is a variant's (a few per posting, checked here against the variants themselves); the
Aho-Corasick automaton is the reference it is tested against (``find_reference``), and the path used when
the extension is missing, switched off (``LEAKSENTINEL_NATIVE_SCAN=0``), or a variant holds a character
a host cannot.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import secrets
import shutil
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick

from pipelines.detection.lines import Deadline, LineIndex, lower_text, native_switched_on

_native: Any
try:  # the C extension: one pass over the text for the whole hosts that may be variants
    _native = importlib.import_module("pipelines.detection._fingerprint")
    if not hasattr(_native, "host_spans"):  # an extension built before host_spans
        _native = None
except ImportError:  # no C compiler at install
    _native = None

__all__ = ["CACHE_VERSION", "MAX_VARIANTS", "LookalikeHit", "LookalikeMatcher", "domain_needles", "variants"]

#: At most this many look-alikes per watched domain (the likeliest techniques first).
MAX_VARIANTS = 2000

#: Words phishing domains add to a brand ("acme-bank-secure.com", "login-acme-bank.com").
WORDS = (
    "secure",
    "login",
    "signin",
    "verify",
    "account",
    "support",
    "online",
    "portal",
    "auth",
    "update",
    "service",
    "help",
    "my",
    "web",
    "mail",
    "pay",
    "app",
)

#: TLDs a squatter swaps in.
TLDS = (
    "com",
    "net",
    "org",
    "co",
    "io",
    "info",
    "biz",
    "us",
    "uk",
    "de",
    "ru",
    "cn",
    "xyz",
    "online",
    "site",
    "top",
    "app",
    "shop",
    "live",
    "club",
    "cc",
    "me",
    "eu",
)

#: dnstwist's fuzzer names -> the technique reported, in the order variants are kept under the bound.
_TECHNIQUES = {
    "omission": "omission",
    "transposition": "transposition",
    "repetition": "repetition",
    "replacement": "replacement",
    "insertion": "insertion",
    "hyphenation": "hyphenation",
    "dictionary": "word-addition",
    "tld-swap": "tld-swap",
    "bitsquatting": "bit-flip",
    "vowel-swap": "vowel-swap",
    "addition": "addition",
    "homoglyph": "homoglyph",
    "cyrillic": "homoglyph",
    "subdomain": "subdomain",
    "plural": "plural",
    "various": "various",
}
_ORDER = {name: rank for rank, name in enumerate(_TECHNIQUES)}


@functools.lru_cache(maxsize=4096)
def variants(domain: str, limit: int = MAX_VARIANTS) -> tuple[tuple[str, str], ...]:
    """(variant in ASCII/punycode form, technique) for a domain, at most ``limit``, the exact domain excluded.

    Homoglyphs are many (two rounds of substitutions): single ASCII confusables and IDN forms with few
    foreign letters are kept first. An IDN homoglyph's technique is ``idn-homoglyph``."""
    domain = domain.lower().rstrip(".")
    perms: list[tuple[str, str]] = []
    try:
        fuzzer = _fuzzer_class()(domain, dictionary=WORDS, tld_dictionary=TLDS)
        # one fuzzer at a time: dnstwist keeps one technique per name, we want the likeliest one
        for fuzz in _TECHNIQUES:
            fuzzer.generate([fuzz])
            perms.extend((str(p.get("domain") or ""), fuzz) for p in fuzzer.domains)
    except Exception:  # a domain dnstwist cannot parse simply has no look-alikes
        return ()
    ranked: list[tuple[tuple[int, int, int, str], str, str]] = []
    for name, fuzz in perms:
        if not name or name == domain:
            continue
        technique = _TECHNIQUES[fuzz]
        idn = "xn--" in name
        if technique == "homoglyph" and idn:
            technique = "idn-homoglyph"
        ranked.append(((_ORDER[fuzz], int(idn), _foreign_letters(name), name), name, technique))
    ranked.sort()
    out: dict[str, str] = {}
    for _, name, technique in ranked:
        if len(out) >= limit:
            break
        out.setdefault(name, technique)
    return tuple(out.items())


@functools.cache
def _fuzzer_class() -> type:
    """dnstwist's fuzzer with cheaper homoglyphs: every single substitution (ASCII or IDN), and a second
    round of ASCII confusables only (``rn``/``m`` with ``0``/``o``): two IDN letters at once multiply the
    variants (and the IDNA encodings, the slow part) for little gain."""
    import dnstwist  # imported here: only snapshots with domain watches pay for it

    class Fuzzer(dnstwist.Fuzzer):
        def _homoglyph(self) -> set[str]:
            unicode = self.glyphs_idn_by_tld.get(self.tld, self.glyphs_unicode)
            every = {
                k: set(self.glyphs_ascii.get(k, ())) | set(unicode.get(k, ()))
                for k in {*self.glyphs_ascii, *unicode}
            }
            ascii_only = {k: set(v) for k, v in self.glyphs_ascii.items()}

            def mix(name: str, glyphs: dict[str, set[str]]) -> set[str]:
                out: set[str] = set()
                for i, c in enumerate(name):
                    out.update(name[:i] + g + name[i + 1 :] for g in glyphs.get(c, ()))
                for i in range(len(name) - 1):
                    win = name[i : i + 2]
                    for c in {win[0], win[1], win}:
                        out.update(name[:i] + win.replace(c, g) + name[i + 2 :] for g in glyphs.get(c, ()))
                return out

            first = mix(self.domain, every)
            second = {v for r in first if r.isascii() for v in mix(r, ascii_only)}
            return first | second

    return Fuzzer


#: Bumped whenever `variants` or `_written_forms` would make something else: a disk cache written by
#: another version is not read (its directory is named after this and dnstwist's version).
CACHE_VERSION = 1

#: A domain's look-alikes as the matcher takes them: (variant, technique, the forms a posting may write).
DomainNeedles = tuple[tuple[str, str, tuple[str, ...]], ...]


@functools.cache
def _cache_tag() -> str:
    try:
        dnstwist = importlib.metadata.version("dnstwist")
    except importlib.metadata.PackageNotFoundError:
        dnstwist = "unknown"
    return f"v{CACHE_VERSION}-dnstwist-{dnstwist}"


def domain_needles(domain: str, limit: int = MAX_VARIANTS, cache_dir: Path | None = None) -> DomainNeedles:
    """`variants` of the domain with their written forms, kept in ``cache_dir`` across processes.

    Why: generating them (dnstwist, then an IDNA decoding of each punycode variant) takes 20-50 ms per
    domain, and every crawl and scan process builds the matcher of every watched domain: a tenant
    watching 300 domains paid seconds of CPU at each crawl's start. The cache is content the process
    computes itself: a file that cannot be read or does not hold this domain's entries is computed
    again and written over (atomically); a cache that cannot be written is only slower."""
    path = None
    if cache_dir is not None:
        name = hashlib.sha256(f"{domain}\0{limit}".encode()).hexdigest()[:40]
        path = cache_dir / _cache_tag() / f"{name}.json"
        cached = _read_cache(path, domain, limit)
        if cached is not None:
            return cached
    made = tuple(
        (variant, technique, tuple(sorted(_written_forms(variant))))
        for variant, technique in variants(domain, limit)
    )
    if path is not None:
        _write_cache(path, domain, limit, made)
    return made


def _read_cache(path: Path, domain: str, limit: int) -> DomainNeedles | None:
    try:
        data = json.loads(path.read_bytes())
        if data.get("domain") != domain or data.get("limit") != limit:
            return None
        out = tuple(
            (str(variant), str(technique), tuple(str(f) for f in forms))
            for variant, technique, forms in data["variants"]
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return out


def _write_cache(path: Path, domain: str, limit: int, made: DomainNeedles) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    if not path.parent.is_dir():  # this version's first write: the other versions' caches go
        _purge_other_versions(path.parent)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"domain": domain, "limit": limit, "variants": made}
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


#: The directories `_cache_tag` names (no other directory of the cache is ever deleted).
_CACHE_TAG = re.compile(r"v\d+-dnstwist-[\w.+-]+")


def _purge_other_versions(current: Path) -> None:
    """Delete the cache directories of other versions beside ``current`` (~30 KB per watched domain each,
    never read again after an upgrade). A process of the old version still running only loses its cache:
    it computes again, and its writes fail quietly."""
    try:
        others = [
            d for d in current.parent.iterdir() if d.name != current.name and _CACHE_TAG.fullmatch(d.name)
        ]
    except OSError:
        return
    for other in others:
        shutil.rmtree(other, ignore_errors=True)


def _foreign_letters(name: str) -> int:
    """How many non-ASCII letters a punycode name stands for (fewer: a closer look-alike)."""
    if "xn--" not in name:
        return 0
    try:
        return sum(not c.isascii() for c in name.encode("ascii").decode("idna"))
    except (UnicodeError, ValueError):
        return 99


@dataclass(frozen=True)
class LookalikeHit:
    tenant_id: int
    watch_id: int
    domain: str  # the watched domain
    variant: str  # the look-alike, ASCII (punycode) form
    technique: str
    line: int
    email: str | None  # the address on the look-alike, when the posting wrote one


@dataclass(frozen=True)
class _Entry:
    tenant_id: int
    watch_id: int
    domain: str
    variant: str
    technique: str


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-'")


class LookalikeMatcher:
    """Every tenant's look-alike domains, searched in one pass over a posting."""

    def __init__(
        self,
        domains: Sequence[tuple[int, str, int]],
        limit: int = MAX_VARIANTS,
        cache_dir: Path | None = None,
    ) -> None:
        """``domains``: (tenant_id, watched domain, watch_id), as the watch snapshot holds them;
        ``cache_dir``: where the domains' variants are kept across processes (`domain_needles`)."""
        self.owned: dict[int, set[str]] = {}
        for tenant_id, domain, _ in domains:
            self.owned.setdefault(tenant_id, set()).add(domain)
        entries: dict[str, dict[tuple[int, str], _Entry]] = {}
        for tenant_id, domain, watch_id in domains:
            own = self.owned[tenant_id]
            for variant, technique, forms in domain_needles(domain, limit, cache_dir):
                if _within(variant, own):
                    continue  # another domain the tenant watches exactly: kind `domain`, not a look-alike
                entry = _Entry(tenant_id, watch_id, domain, variant, technique)
                for needle in forms:
                    entries.setdefault(needle, {}).setdefault((tenant_id, variant), entry)
        self.count = len(entries)
        self._needles: dict[str, tuple[int, tuple[_Entry, ...]]] = {
            needle: (len(needle), tuple(by_tenant.values())) for needle, by_tenant in entries.items()
        }
        #: The reference path's Aho-Corasick automaton, built on its first use: the native pass needs none,
        #: and building it was ~10% of a matcher's start-up from the cache.
        self._automaton: ahocorasick.Automaton | None = None
        # the native pass takes needles made of host characters and dots (every dnstwist variant is)
        self._hashes = b""
        self._maxlen = max((len(n) for n in self._needles), default=0)
        self._need_dot = all("." in n for n in self._needles)
        if _native is not None and entries and all(_needle_chars(n) for n in self._needles):
            self._hashes = array("Q", sorted({_native.host_hash(n) for n in self._needles})).tobytes()

    def native(self) -> bool:
        """True when `find` takes the native pass."""
        return bool(self._hashes) and native_switched_on()

    def find(
        self, text: str, deadline: Deadline | None = None, *, lowered: str | None = None
    ) -> list[LookalikeHit]:
        """One hit per (tenant, variant): the first line naming it as a whole host (in an address, a URL
        or bare); a host that is, or is under, a domain the tenant watches is never a look-alike.

        ``lowered``: ``text.lower()`` when the caller has it already."""
        if not self._needles or not text:
            return []
        lowered = lower_text(text) if lowered is None else lowered
        if not self.native():
            return self._hits(lowered, self._reference_matches(lowered), deadline)
        return self._hits(lowered, self._native_matches(lowered), deadline)

    def find_reference(self, text: str, deadline: Deadline | None = None) -> list[LookalikeHit]:
        """`find` through the Aho-Corasick automaton alone (the reference of the native pass)."""
        if not self._needles or not text:
            return []
        lowered = text.lower()
        return self._hits(lowered, self._reference_matches(lowered), deadline)

    def _reference_matches(self, lowered: str) -> Iterator[tuple[int, int, tuple[_Entry, ...]]]:
        """(start, end, owners) of every needle occurrence, in the automaton's order."""
        if self._automaton is None:
            automaton = ahocorasick.Automaton()
            for needle, value in self._needles.items():
                automaton.add_word(needle, value)
            automaton.make_automaton()
            self._automaton = automaton
        for end, (length, owners) in self._automaton.iter(lowered):
            yield end + 1 - length, end + 1, owners

    def _native_matches(self, lowered: str) -> Iterator[tuple[int, int, tuple[_Entry, ...]]]:
        """The same occurrences, as far as `_hits` keeps them (whole hosts), in the same order."""
        for start, end in _native.host_spans(lowered, self._hashes, self._maxlen, self._need_dot):
            found = self._needles.get(lowered[start:end])
            if found is not None:  # else a hash collision
                yield start, end, found[1]

    def _hits(
        self,
        lowered: str,
        matches: Iterator[tuple[int, int, tuple[_Entry, ...]]],
        deadline: Deadline | None,
    ) -> list[LookalikeHit]:
        index: LineIndex[str] | None = None
        seen: dict[tuple[int, str], LookalikeHit] = {}
        for count, (start, end_excl, owners) in enumerate(matches):
            if deadline is not None and count % 4096 == 4095 and deadline.expired():
                break
            end = end_excl - 1
            if not _whole_host(lowered, start, end + 1):
                continue
            host = _host_around(lowered, start, end + 1)
            email = _email_before(lowered, start, end + 1)
            for entry in owners:
                key = (entry.tenant_id, entry.variant)
                if key in seen or _within(host, self.owned.get(entry.tenant_id, set())):
                    continue
                if index is None:
                    index = LineIndex(lowered)
                seen[key] = LookalikeHit(
                    entry.tenant_id,
                    entry.watch_id,
                    entry.domain,
                    entry.variant,
                    entry.technique,
                    index.line_of(start),
                    email,
                )
        return sorted(seen.values(), key=lambda h: (h.tenant_id, h.line, h.variant))


def _needle_chars(needle: str) -> bool:
    """Every character of the needle is one the native pass walks over: a host character or a dot
    (`_is_host_char` for each, in one C call: ``str.isalnum`` is every character's)."""
    rest = needle.translate(_HOST_PUNCTUATION)
    return not rest or rest.isalnum()


_HOST_PUNCTUATION = str.maketrans("", "", ".-_")


def _within(host: str, domains: set[str]) -> bool:
    """Whether the host is one of the domains or under one: its parents looked up in the set, one per dot
    (a loop over the domains made a tenant's matcher quadratic in its domain watches: 80 took 2.5 s)."""
    if host in domains:
        return True
    dot = host.find(".")
    while dot >= 0:
        if host[dot + 1 :] in domains:
            return True
        dot = host.find(".", dot + 1)
    return False


def _written_forms(variant: str) -> set[str]:
    """The punycode form and, for IDN, the Unicode form a posting may show."""
    forms = {variant}
    if "xn--" in variant:
        with contextlib.suppress(UnicodeError, ValueError):
            forms.add(variant.encode("ascii").decode("idna").lower())
    return forms


def _is_host_char(c: str) -> bool:
    return c.isalnum() or c in "-_"


def _whole_host(text: str, start: int, end: int) -> bool:
    """The match is a host's whole tail: no letter before it, and the host does not go on after it."""
    if start > 0 and _is_host_char(text[start - 1]):
        return False
    if end < len(text):
        after = text[end]
        if _is_host_char(after):
            return False
        if after == "." and end + 1 < len(text) and _is_host_char(text[end + 1]):
            return False  # acmebank.com.evil.net: the host is evil.net
    return True


def _host_around(text: str, start: int, end: int) -> str:
    """The full host the match ends (subdomains included), bounded to 253 characters."""
    i = start
    while i > 0 and end - i < 253 and (text[i - 1] in _HOST_CHARS or text[i - 1].isalnum()):
        i -= 1
    return text[i:end].lstrip(".-")


def _email_before(text: str, start: int, end: int) -> str | None:
    """``local@host`` when the posting writes an address on the host (bounded look back)."""
    host_start = start
    while host_start > 0 and start - host_start < 253 and text[host_start - 1] in _HOST_CHARS:
        host_start -= 1
    if host_start == 0 or text[host_start - 1] != "@":
        return None
    at = host_start - 1
    i = at
    while i > 0 and at - i < 64 and text[i - 1] in _LOCAL_CHARS:
        i -= 1
    local = text[i:at].strip(".")
    return f"{local}@{text[host_start:end]}" if local else None
