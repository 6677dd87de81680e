"""Raw bytes to text: byte-order marks and UTF-16/32 found before any charset is trusted.

Why sniff first: a dump saved by a Windows tool is often UTF-16 (with or without a BOM) or UTF-32.
UTF-16 of ASCII text is valid UTF-8 (each character followed by a NUL), so a UTF-8-first decoder turns
``jane@acme.example`` into ``j a n e @ ...`` once NULs become spaces, and nothing matches. A BOM
(as the WHATWG encoding standard does) or the zero-byte pattern of UTF-16/32 therefore wins over the
declared charset and over the UTF-8 / CJK / legacy fallbacks.

Usage::

    decode_bytes(b"\\xff\\xfej\\x00a\\x00")      # 'ja'
    decode_bytes(gbk_bytes, declared="gbk")    # declared charsets still decide for 8-bit text
    sniff_encoding(b"j\\x00a\\x00n\\x00e\\x00")  # 'utf-16-le'
"""

from __future__ import annotations

import codecs

__all__ = ["SNIFF_BYTES", "decode_bytes", "sniff_encoding"]

#: How much of the start is looked at to recognise UTF-16/32 without a BOM.
SNIFF_BYTES = 4096

_FALLBACKS = ("utf-8", "gb18030", "big5", "shift_jis", "cp1251", "latin-1")

# Longest first: the UTF-32LE mark starts with the UTF-16LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_UNIT = {"utf-8": 1, "utf-16-le": 2, "utf-16-be": 2, "utf-32-le": 4, "utf-32-be": 4}


def _decodes(sample: bytes, codec: str) -> bool:
    """True when `sample` is a valid start of `codec` text (a unit cut at the end is allowed)."""
    try:
        codecs.getincrementaldecoder(codec)("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _zero_pattern(sample: bytes) -> str | None:
    """UTF-32 or UTF-16 recognised by where the NUL bytes of mostly-Latin text fall, else None."""
    if len(sample) >= 8:
        quads = len(sample) // 4
        at = [sample[i : quads * 4 : 4].count(0) for i in range(4)]
        # BMP text in UTF-32: the top byte is always 0 and the next one almost always.
        if at[3] == quads and at[2] * 2 >= quads and at[0] * 4 < quads:
            return "utf-32-le"
        if at[0] == quads and at[1] * 2 >= quads and at[3] * 4 < quads:
            return "utf-32-be"
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0 : pairs * 2 : 2].count(0), sample[1 : pairs * 2 : 2].count(0)
    # Latin text in UTF-16 puts a NUL in one half of nearly every unit; 8-bit text has almost no NULs.
    # A fifth of the units is enough (a Chinese dump with ASCII addresses), on one side only.
    if odd * 5 >= pairs and even * 10 <= odd:
        return "utf-16-le"
    if even * 5 >= pairs and odd * 10 <= even:
        return "utf-16-be"
    return None


def sniff_encoding(raw: bytes) -> tuple[str, int] | None:
    """(codec, BOM length) from a byte-order mark or the UTF-16/32 zero-byte pattern, else None."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return codec, len(bom)
    sample = raw[:SNIFF_BYTES]
    guess = _zero_pattern(sample)
    if guess is not None and _decodes(sample, guess):
        return guess, 0
    return None


def _decode_units(raw: bytes, codec: str) -> str:
    """Decode whole code units, bad ones replaced (a body cut at the size limit may end mid-unit)."""
    unit = _UNIT[codec]
    return raw[: len(raw) - len(raw) % unit].decode(codec, errors="replace")


def decode_bytes(raw: bytes, declared: str | None = None) -> str:
    """Text of a posting's bytes: BOM or UTF-16/32 pattern, else the declared charset, else the first of
    strict UTF-8, GB18030, Big5, Shift-JIS, CP1251 that decodes, else Latin-1."""
    sniffed = sniff_encoding(raw)
    if sniffed is not None:
        codec, skip = sniffed
        return _decode_units(raw[skip:], codec)
    candidates = ([declared] if declared else []) + list(_FALLBACKS)
    for codec in candidates:
        name = "gb18030" if codec.lower() in {"gbk", "gb2312", "gb18030"} else codec
        try:
            return raw.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("utf-8", errors="replace")
