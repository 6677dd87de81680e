"""HTML to text, date parsing and request helpers shared by the spiders.

Why one helper: every HTML source must give the pipelines the same kind of text (no scripts, one line
per block, tidy whitespace) so that fingerprints and detectors behave alike whichever forum a posting
came from. The walk is iterative (deep nesting cannot hit Python's recursion limit) and never changes the
tree it reads (a Scrapy selector's tree is shared with other queries). `html_to_lines` is the older,
simpler form the JSON and feed spiders (Discourse, RSS) give: one line per block, blank lines dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import lxml.html
from lxml import etree
from parsel import Selector, SelectorList

from core.textcodec import decode_document, strip_xml_declaration

__all__ = [
    "html_to_lines",
    "html_to_text",
    "one_line",
    "parse_datetime",
    "parse_iso",
    "proxy_meta",
    "strip_query_params",
    "url_key",
]

_SKIP = frozenset({"script", "style", "noscript", "template", "head", "title", "iframe", "object", "svg"})
# Blocks start and end a line. ``cite`` is one too: forums use it for the "X wrote:" line of a quote.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "cite", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hgroup", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "tbody", "thead", "tfoot", "tr", "ul", "option", "legend", "body", "html",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\f\v\r\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Zero-width characters are dropped, not made spaces: pasted in, they would split an address in two.
_INVISIBLE = re.compile(r"[\u200b\u2060\ufeff]")
_ANY_SPACE = re.compile(r"\s+")
_BLANKS = re.compile(r"\n{3,}")
_NL = "\x00NL\x00"  # a hard line break (``<br>``, ``<pre>``), kept apart from source newlines
_BLK = "\x00BK\x00"  # a block boundary: consecutive ones make a single line break
_BLK_RUN = re.compile(r"(?:\x00BK\x00[ \t\n\r\f\v\u00a0]*)+")


def _roots(source: Any) -> Iterable[Any]:
    """The lxml elements to read from an HTML string, bytes, element, Selector or SelectorList."""
    if isinstance(source, SelectorList):
        for sel in source:
            yield from _roots(sel)
        return
    if isinstance(source, Selector):
        root = source.root
        if root is not None:  # an element, or the string of a text/attribute selector
            yield root
        return
    if isinstance(source, bytes):  # BOM, <meta charset>, then detection: never mojibake from UTF-8 only
        source = decode_document(source).text
    if isinstance(source, str):
        if not source.strip():
            return
        try:
            yield lxml.html.document_fromstring(source)
        except (etree.ParserError, ValueError):
            yield source
        return
    if source is not None:
        yield source


def html_to_text(source: Any) -> str:
    """Visible text of HTML: scripts and styles dropped, blocks and ``<br>`` as line breaks, spaces tidied.

    ``<pre>`` keeps its own line breaks; elsewhere source newlines are spaces, as a browser shows them.
    """
    parts: list[str] = []
    for root in _roots(source):
        if isinstance(root, str):
            parts.append(root)
        else:
            _walk(root, parts)
        parts.append(_BLK)
    return _tidy("".join(parts))


def one_line(source: Any) -> str:
    """`html_to_text` on a single line (titles, names): all whitespace runs become one space."""
    return " ".join(html_to_text(source).split())


# What starts and ends a line for `html_to_lines` (``br`` too; a cell is a line of its own).
_LINE_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt", "figcaption",
        "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
        "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip


def html_to_lines(markup: str | bytes) -> str:
    """Readable text of HTML (a page's body, or a fragment): no script or style, a line per block, no blank
    lines. Unlike `html_to_text` it edits the tree it parses, so it takes markup only."""
    if not markup or not markup.strip():
        return ""
    if isinstance(markup, bytes):  # decoded here (BOM, <meta charset>, detection), not by libxml2's guess
        markup = decode_document(markup).text
    try:
        root = lxml.html.fromstring(markup)
    except ValueError:  # a str with an XML encoding declaration: the text is decoded already, drop it
        try:
            root = lxml.html.fromstring(strip_xml_declaration(markup))
        except (etree.ParserError, ValueError):
            return ""
    except etree.ParserError:
        return ""
    for bad in root.xpath("//script|//style|//noscript|//template|//head"):
        bad.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in _LINE_BLOCK:
            el.text = "\n" + (el.text or "")
            el.tail = "\n" + (el.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


def _walk(root: Any, parts: list[str]) -> None:
    # Stack entries: ("open", element, in_pre) or ("close", element, in_pre) or ("tail", text, in_pre).
    stack: list[tuple[str, Any, bool]] = [("open", root, False)]
    while stack:
        action, node, in_pre = stack.pop()
        if action == "tail":
            parts.append(_flow(node, in_pre))
            continue
        tag = node.tag.lower() if isinstance(node.tag, str) else ""
        if action == "close":
            if tag in _BLOCK:
                parts.append(_BLK)
            elif tag in _CELL:
                parts.append(" ")
            continue
        # "open"
        if tag == "br":
            parts.append(_NL)
            continue
        if not tag or tag in _SKIP:  # comments, processing instructions, scripts: no text of their own
            continue
        if tag in _BLOCK:
            parts.append(_BLK)
        pre = in_pre or tag in {"pre", "textarea", "plaintext", "xmp", "listing"}
        if node.text:
            parts.append(_flow(node.text, pre))
        stack.append(("close", node, in_pre))
        for child in reversed(list(node)):
            if child.tail:
                stack.append(("tail", child.tail, pre))
            stack.append(("open", child, pre))


def _flow(text: str, in_pre: bool) -> str:
    if in_pre:
        return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", _NL)
    return _ANY_SPACE.sub(" ", text)


def _tidy(text: str) -> str:
    text = _INVISIBLE.sub("", _BLK_RUN.sub("\n", text).replace(_NL, "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time (``Z``, ``+00:00`` or XenForo's ``+0000``) or Unix seconds, as aware UTC.

    A time without a zone is taken as UTC: forums that omit it rarely say which zone they mean.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 string (``Z`` allowed) as an aware datetime in its own offset (naive: UTC), or None.

    Stricter than `parse_datetime`: anything but a non-empty string is None, and the offset is kept.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def strip_query_params(url: str, names: Iterable[str]) -> str:
    """The URL without the given query parameters (session ids would make every run's URLs differ)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    drop = {n.lower() for n in names}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in drop]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def proxy_meta(options: dict[str, Any]) -> dict[str, Any]:
    """Request meta for the source's proxy option (Scrapy's HttpProxyMiddleware reads ``meta["proxy"]``)."""
    proxy = options.get("proxy")
    return {"proxy": str(proxy)} if proxy else {}


def url_key(url: str) -> str:
    """A short stable hash of a URL, for bounded seen-sets kept in a cursor."""
    return hashlib.sha1(url.encode("utf-8", errors="replace")).hexdigest()[:16]
