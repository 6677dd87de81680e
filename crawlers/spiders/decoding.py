"""What the spiders read fetched bytes with: pages and feeds decoded by BOM, then the HTTP charset, then the
document's own declaration (XML ``encoding``, ``<meta charset>``), then detection (`core.textcodec`).

Why a feed is parsed twice at most: libxml2 decodes the bytes itself and rejects the whole document at the
first byte that its encoding cannot read ("Invalid bytes in character encoding"), which drops every item
of an ISO-8859-1 feed that declares nothing. The bytes are parsed first with the encoding the rules
choose (so a correct feed is read exactly as published); when the parser rejects them, the text is
decoded again (HTTP charset, declaration, UTF-8, windows-1252, Latin-1: the first that decodes strictly)
and parsed as text. Both passes use the caller's parser, so hostile-XML protections are unchanged.

    root = parse_xml(body, "iso-8859-1", make_parser)   # an lxml element, or etree.XMLSyntaxError
    text = response_text(response)                      # str of any response, never raises
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree
from scrapy.http import Response, TextResponse

from core.textcodec import (
    Decoded,
    codec_name,
    decode_document,
    http_charset,
    sniff_bom,
    sniff_encoding,
    strip_xml_declaration,
)

__all__ = ["Decoded", "decode_document", "parse_xml", "response_charset", "response_text"]

# libxml2's names for the codecs Python spells differently (it knows the IANA labels).
_LIBXML_NAMES = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32-le": "UTF-32LE",
    "utf-32-be": "UTF-32BE",
    "iso8859-1": "windows-1252",  # as browsers read a Latin-1 label
    "latin-1": "windows-1252",
    "ascii": "windows-1252",
    "cp1252": "windows-1252",
}


def response_charset(response: Response) -> str | None:
    """The codec the response's Content-Type header names, or None."""
    return http_charset(response.headers.get(b"Content-Type"))


def response_text(response: Response) -> str:
    """A response's body as text: Scrapy's own decoding for text responses (the same order of rules),
    `decode_document` for the rest (a page served as ``application/octet-stream`` or without a type)."""
    if isinstance(response, TextResponse):
        try:
            return response.text
        except (UnicodeDecodeError, LookupError):  # an unusable label reached the codec
            pass
    return decode_document(response.body, response_charset(response)).text


def _first_pass_encoding(body: bytes, http: str | None) -> tuple[bytes, str | None]:
    """(bytes to parse, encoding to force or None to let libxml2 read the declaration)."""
    bom = sniff_bom(body)
    if bom is not None:
        codec, skip = bom
        return body[skip:], _LIBXML_NAMES.get(codec, codec)
    wide = sniff_encoding(body)
    if wide is not None:  # UTF-16/32 without a BOM: its zero bytes outweigh an 8-bit label
        return body, _LIBXML_NAMES.get(wide[0], wide[0])
    if http is not None and not http.startswith(("utf-16", "utf-32")):
        return body, _LIBXML_NAMES.get(http, http)
    return body, None  # libxml2 reads the declaration; without one, XML's default (UTF-8)


def parse_xml(body: bytes, http: str | bytes | None, make_parser: Callable[[str | None], Any]) -> Any:
    """The root element of an XML document whose HTTP charset label is `http`.

    `make_parser(encoding)` builds the (hardened) parser, forcing `encoding` when it is not None. Raises
    `etree.XMLSyntaxError` (the first pass's) when neither the bytes nor the re-decoded text parse.
    """
    label = http.decode("latin-1") if isinstance(http, bytes) else http
    codec = codec_name(label)
    data, forced = _first_pass_encoding(body, codec)
    try:
        return etree.fromstring(data, make_parser(forced))
    except LookupError:  # libxml2 does not know the label: the text pass decides
        first: etree.XMLSyntaxError | None = None
    except etree.XMLSyntaxError as exc:
        first = exc
    text = strip_xml_declaration(decode_document(body, codec).text)
    try:
        return etree.fromstring(text, make_parser(None))
    except (etree.XMLSyntaxError, ValueError) as exc:
        if first is not None:
            raise first from exc
        raise etree.XMLSyntaxError(str(exc), 0, 0, 0) from exc
