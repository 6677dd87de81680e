"""CJK-aware analysis shared by every search backend: text to a list of index tokens.

Why bigrams: Chinese and Japanese are written without spaces, so a word tokenizer sees a whole
sentence as one token and a query for ``客户数据`` would never match ``泄露的客户数据库``. Indexing every
run of CJK characters as overlapping character bigrams (``客户 户数 数据``) and searching a query the
same way, as a phrase of bigrams, finds the string wherever it occurs, without a dictionary. Other
text becomes lower-cased (NFKC case-folded) words. Mixed ``acme客户`` splits into ``acme`` + ``客户``.

Usage::

    tokenize("ACME 客户数据库")     # ['acme', '客户', '户数', '数据', '据库']
    token_string("ACME 客户数据库")  # 'acme 客户 户数 数据 据库' (for a whitespace-tokenised field)
    runs("acme客户")               # [('word', 'acme'), ('cjk', '客户')]
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from types import ModuleType

__all__ = [
    "CJK_RANGES",
    "MAX_TOKEN_CHARS",
    "is_cjk_char",
    "runs",
    "token_string",
    "token_string_py",
    "tokenize",
    "tokenize_py",
]

#: Longer words (base64 blobs, minified code) are dropped: nobody searches them by word and they
#: bloat the term dictionary. Hashes (64 hex chars) stay below this.
MAX_TOKEN_CHARS = 80

CJK_RANGES = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # extensions B..G
)
# A word is a run of letters/digits that are not CJK; underscores split words (snake_case finds parts).
_RUN = re.compile(rf"(?P<cjk>[{CJK_RANGES}]+)|(?P<word>[^\W_{CJK_RANGES}]+)")
_CJK_CHAR = re.compile(rf"[{CJK_RANGES}]")
# The same split, faster (tokenize): words of text holding no CJK, and CJK runs as split() separators.
_WORD = re.compile(r"[^\W_]+")
_CJK_SPLIT = re.compile(rf"([{CJK_RANGES}]+)")


def is_cjk_char(char: str) -> bool:
    return bool(_CJK_CHAR.fullmatch(char))


def _fold(text: str) -> str:
    """NFKC + case-fold (ASCII fast path): full-width ``ＡＣＭＥ`` and ``acme`` index alike."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


# ASCII fast path of the word split: in ASCII text a word ([^\W_]+) is a run of letters and digits, so
# mapping every other character to a space (and A-Z to a-z, the fold) and splitting on spaces gives the
# same words as `_WORD.findall` of the folded text, several times faster (no regex step per character).
_ASCII_WORD_CHARS = {
    c: (chr(c + 32) if 65 <= c <= 90 else chr(c) if chr(c).isalnum() else " ") for c in range(128)
}
_ASCII_WORD_BYTES = bytes(ord(_ASCII_WORD_CHARS[c]) if c < 128 else 32 for c in range(256))


def _ascii_words(text: str) -> list[str]:
    """`_WORD.findall(text.lower())` of ASCII `text`."""
    return text.translate(_ASCII_WORD_CHARS).split()


def runs(text: str) -> list[tuple[str, str]]:
    """The folded text as ``(kind, run)`` pairs, kind ``"cjk"`` or ``"word"``, in order."""
    out: list[tuple[str, str]] = []
    for m in _RUN.finditer(_fold(text)):
        cjk = m.group("cjk")
        if cjk is not None:
            out.append(("cjk", cjk))
        else:
            out.append(("word", m.group("word")))
    return out


def tokenize(text: str) -> list[str]:
    """Index/query tokens: words as they are, CJK runs as overlapping bigrams (a lone character alone)."""
    if _native is not None:  # tokens hold no white space: the token string split is the list
        return _native.token_string(text).split()
    return tokenize_py(text)


def tokenize_py(text: str) -> list[str]:
    """`tokenize` in Python: the reference for ``core.search._tokens``."""
    folded = _fold(text)
    if folded.isascii():
        return _short(_ascii_words(folded))
    if not _CJK_CHAR.search(folded):  # no CJK: the words, found in one C call
        return _short(_WORD.findall(folded))
    tokens: list[str] = []
    # Alternating non-CJK text and CJK runs: split() keeps the runs (its group), in order.
    for i, part in enumerate(_CJK_SPLIT.split(folded)):
        if not i % 2:
            if part:
                tokens.extend(_ascii_words(part) if part.isascii() else _WORD.findall(part))
        elif len(part) == 1:
            tokens.append(part)
        else:
            tokens.extend([part[j : j + 2] for j in range(len(part) - 1)])
    return _short(tokens)  # bigrams are never long: only words are dropped


def _short(tokens: list[str]) -> list[str]:
    """Without the words longer than `MAX_TOKEN_CHARS` (usually none: the list itself)."""
    if not tokens or max(map(len, tokens)) <= MAX_TOKEN_CHARS:
        return tokens
    return [w for w in tokens if len(w) <= MAX_TOKEN_CHARS]


def token_string(text: str) -> str:
    """`tokenize` joined by spaces, for a field whose tokenizer splits on whitespace."""
    if _native is not None:
        return _native.token_string(text)
    return token_string_py(text)


def token_string_py(text: str) -> str:
    """`token_string` in Python: the reference for ``core.search._tokens``."""
    if text.isascii():  # the common case, without a str object per word
        words = text.encode("ascii").translate(_ASCII_WORD_BYTES).split()
        if words and max(map(len, words)) > MAX_TOKEN_CHARS:
            words = [w for w in words if len(w) <= MAX_TOKEN_CHARS]
        return b" ".join(words).decode("ascii")
    return " ".join(tokenize_py(text))


# The same in C (core/search/_native/tokens.c): one pass over the text, ~17x cheaper on non-ASCII postings
# and ~5x on ASCII ones, output identical (tests/core/test_core_search_native_tokens.py). Without a C
# compiler at install (the extension is optional), or a MAX_TOKEN_CHARS it was not built for: the above.
_native: ModuleType | None
try:
    _native = importlib.import_module("core.search._tokens")
except ImportError:
    _native = None
if _native is not None and _native.MAX_TOKEN_CHARS != MAX_TOKEN_CHARS:
    _native = None
