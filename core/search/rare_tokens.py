"""Rare tokens: the long tokens with digits that the tantivy backend keeps out of its term dictionary.

Why: a dump's passwords, card and phone numbers, ids and user names are nearly all seen in one posting
only. Tantivy pays for every distinct term at every commit (a term-dictionary entry, a postings list):
~0.4 ms of CPU per 10 KB posting, 7% of a crawl. So the backend indexes each such token as a placeholder
("#" and two hex digits, the low byte of the token's FNV-1a), which keeps its position for phrases, and
keeps the token itself as a keyed 64-bit hash in the selector index (``"\\0"`` + the token, so it never
meets a selector's key), which turns it back into the postings holding it.

The rule (`is_rare`): at least `RARE_MIN_CHARS` characters, every one an ASCII lower-case letter or digit
(token strings are lower-cased), at least one digit. ``utf8mb4``, ``sha256`` or a year stay ordinary terms.

`split_rare` is core/search/_native/selectors.c's ``rare_split`` when the extension is built, else
`split_rare_py`, its reference (tests/core/test_core_search_rare_tokens.py compares the two).
"""

from __future__ import annotations

import numpy as np

from core.search.selector_index import selector_keys

try:
    from core.search._selectors import rare_split as _native_split
except ImportError:  # pragma: no cover - no C compiler at install
    _native_split = None

__all__ = ["RARE_MIN_CHARS", "is_rare", "placeholder", "rare_term", "split_rare", "split_rare_py"]

#: The shortest rare token (8: the passwords, numbers and ids of dumps; not "utf8mb4" nor "sha256").
RARE_MIN_CHARS = 8
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_DIGITS = frozenset("0123456789")


def is_rare(token: str) -> bool:
    """Whether the backend indexes `token` (one token of a token string) as a placeholder."""
    return RARE_MIN_CHARS <= len(token) <= 256 and _PLAIN.issuperset(token) and not _DIGITS.isdisjoint(token)


def placeholder(token: str) -> str:
    """The term a rare token stands as in the index: "#" and the low byte of its FNV-1a, in hex."""
    h = 2166136261
    for b in token.encode("ascii"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"#{h & 0xFF:02x}"


def rare_term(token: str) -> str:
    """The selector-index term of a rare token (the NUL keeps it apart from every selector)."""
    return "\0" + token


def split_rare_py(tokens: str, key: bytes) -> tuple[str, np.ndarray]:
    """`split_rare` in Python: the reference of the native one."""
    out: list[str] = []
    rare: dict[str, None] = {}
    start = 0
    n = len(tokens)
    i = 0
    while i < n:
        if tokens[i] <= " ":
            out.append(tokens[i])
            i += 1
            continue
        start = i
        while i < n and tokens[i] > " ":
            i += 1
        token = tokens[start:i]
        if is_rare(token):
            rare[token] = None
            out.append(placeholder(token))
        else:
            out.append(token)
    keys = selector_keys([rare_term(t) for t in rare], key) if rare else np.empty(0, dtype="<u8")
    return "".join(out), keys


def split_rare(tokens: str, key: bytes) -> tuple[str, np.ndarray]:
    """(the token string with each rare token as its placeholder, the distinct rare tokens' keys)."""
    if _native_split is None:
        return split_rare_py(tokens, key)
    indexed, keys = _native_split(tokens, key, RARE_MIN_CHARS)
    return indexed, np.frombuffer(keys, dtype="<u8")
