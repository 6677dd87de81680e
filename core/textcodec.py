"""Raw bytes to text: byte-order marks and UTF-16/32 found before any charset is trusted.

Shared by the crawlers (feeds and pages, `decode_document`) and the pipelines (postings, `decode_bytes`),
which never import each other; `pipelines.decode` re-exports this module's posting decoder.

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
import re
from dataclasses import dataclass

__all__ = [
    "SNIFF_BYTES",
    "Decoded",
    "codec_name",
    "declared_charset",
    "decode_bytes",
    "decode_document",
    "http_charset",
    "sniff_bom",
    "sniff_encoding",
    "strip_xml_declaration",
]

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


# -- documents (feeds, pages): BOM, then the HTTP charset, then the document's own declaration ----------

#: How much of a document's start is searched for its XML declaration or ``<meta charset>``.
DECLARATION_BYTES = 4096

_XML_DECL = re.compile(rb"""^\s*<\?xml\s[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:+-]{1,40})["']""")
_XML_DECL_TEXT = re.compile(r"""^\ufeff?\s*<\?xml\s[^>]{0,500}?\?>""")
_META = re.compile(
    rb"""<meta\s[^>]{0,500}?charset\s*=\s*["']?\s*([A-Za-z0-9._:+-]{1,40})""",
    re.IGNORECASE,
)
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:+-]{1,40})""", re.IGNORECASE)
_CJK_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "gb18030": "gb18030"}
# What browsers do (WHATWG): a page labelled Latin-1 or ASCII is read as windows-1252.
_AS_CP1252 = {"latin-1", "ascii", "iso8859-1"}


@dataclass(frozen=True)
class Decoded:
    """A document's text, the codec that gave it, and which rule chose it (bom, http, declared, detected)."""

    text: str
    encoding: str
    how: str


def codec_name(label: str | bytes | None) -> str | None:
    """Python's codec for a charset label (``ISO-8859-1``, ``utf8``, ``x-sjis``...), or None if unknown.

    Text codecs only: ``rot13``, ``hex`` and other bytes-to-bytes codecs are not charsets.
    """
    if isinstance(label, bytes):
        label = label.decode("latin-1")
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _CJK_SUPERSETS:
        return "gb18030"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def http_charset(content_type: str | bytes | None) -> str | None:
    """The codec named by a Content-Type header's ``charset`` parameter, or None."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    if not content_type:
        return None
    found = _CHARSET_PARAM.search(content_type)
    return codec_name(found.group(1)) if found else None


def declared_charset(raw: bytes) -> str | None:
    """The codec a document declares in its first bytes: the XML declaration's ``encoding``, else an HTML
    ``<meta charset>`` / ``<meta http-equiv=Content-Type content="...; charset=X">``; None if neither."""
    head = raw[:DECLARATION_BYTES]
    found = _XML_DECL.match(head) or _META.search(head)
    return codec_name(found.group(1)) if found else None


def sniff_bom(raw: bytes) -> tuple[str, int] | None:
    """(codec, BOM length) when `raw` starts with a byte-order mark, else None."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return codec, len(bom)
    return None


def strip_xml_declaration(text: str) -> str:
    """`text` without a leading BOM and XML declaration (lxml refuses a str that declares an encoding)."""
    return _XML_DECL_TEXT.sub("", text, count=1).lstrip("\ufeff")


def _strict(raw: bytes, codec: str) -> str | None:
    """`raw` decoded strictly with `codec`, None when it does not decode; Latin-1 labels read as cp1252."""
    if codec in _AS_CP1252:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")  # the five bytes cp1252 leaves undefined
    if codec in _UNIT and _UNIT[codec] > 1 and len(raw) % _UNIT[codec]:
        return None
    try:
        return raw.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_document(raw: bytes, http: str | None = None) -> Decoded:
    """Text of a fetched feed or page: a BOM, then the HTTP charset (`http`, a label), then the document's
    own declaration, then detection (UTF-16/32 by zero bytes, strict UTF-8, windows-1252, Latin-1).

    A rule whose codec does not decode the bytes strictly is skipped, so a wrong header or declaration
    falls through to the next rule. Never raises for any bytes and any label: Latin-1 decodes everything.
    """
    bom = sniff_bom(raw)
    if bom is not None:
        codec, skip = bom
        return Decoded(_decode_units(raw[skip:], codec), codec, "bom")
    sniffed = sniff_encoding(raw)
    for how, label in (("http", codec_name(http)), ("declared", declared_charset(raw))):
        if label is None:
            continue
        codec = label
        if codec.startswith(("utf-16", "utf-32")):
            if sniffed is None or not sniffed[0].startswith(codec[:6]):
                continue  # a UTF-16/32 label on 8-bit bytes: the bytes were transcoded, the label was not
            codec = sniffed[0]  # the byte order the zero bytes show
        elif sniffed is not None:
            continue  # an 8-bit label on UTF-16/32 bytes: NULs would decode as "valid" text
        text = _strict(raw, codec)
        if text is not None:
            return Decoded(text, codec, how)
    if sniffed is not None:
        return Decoded(_decode_units(raw, sniffed[0]), sniffed[0], "detected")
    for codec in ("utf-8", "cp1252"):
        text = _strict(raw, codec)
        if text is not None:
            return Decoded(text, codec, "detected")
    return Decoded(raw.decode("latin-1"), "latin-1", "detected")
