"""Decoding fetched bytes (`crawlers.spiders.decoding`, `core.textcodec`): BOM, then the HTTP charset, then
the document's declaration, then detection; any bytes under any label give text or a clear FeedError."""

from __future__ import annotations

import codecs

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse, Response

from core.textcodec import codec_name, declared_charset, decode_document, http_charset
from crawlers.spiders.decoding import response_text
from crawlers.spiders.html_text import html_to_lines
from crawlers.spiders.rss import FeedError, parse_feed

LABELS = [
    None,
    "utf-8",
    "UTF8",
    "iso-8859-1",
    "latin1",
    "windows-1252",
    "utf-16",
    "utf-16be",
    "utf-32",
    "koi8-r",
    "shift_jis",
    "gbk",
    "rot13",
    "hex",
    "x-unknown",
    "",
    '"utf-8"',
    "utf-8; q=1",
]
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_rules_in_order_bom_then_header_then_declaration_then_detection() -> None:
    body = '<?xml version="1.0" encoding="koi8-r"?><a>Привет</a>'
    assert decode_document(body.encode("utf-16"), "koi8-r").how == "bom"
    raw = body.encode("koi8-r")
    assert decode_document(raw, "koi8-r").text == decode_document(raw).text  # header and declaration agree
    assert decode_document(raw, "koi8-r").how == "http" and decode_document(raw).how == "declared"
    assert decode_document(raw).text == body
    # A header whose codec does not decode the bytes is skipped, not trusted into mojibake.
    assert decode_document("Zoë".encode("cp1252"), "utf-8") == decode_document("Zoë".encode("cp1252"))
    assert decode_document("Zoë “5 €”".encode("cp1252")).text == "Zoë “5 €”"
    assert decode_document("Grüße".encode()).text == "Grüße"
    meta = '<html><head><meta charset="windows-1251"></head><body>Привет</body></html>'
    assert decode_document(meta.encode("cp1251")).text == meta
    # A UTF-16 label on 8-bit bytes (the file was transcoded, not its label) is ignored.
    assert decode_document(b'<?xml version="1.0" encoding="UTF-16"?><a>x</a>', "utf-16").encoding == "utf-8"
    assert decode_document("wide".encode("utf-16-be"), "utf-16").text == "wide"
    # And an 8-bit label on UTF-16 without a BOM: the NULs would be "valid" UTF-8.
    assert decode_document("jane@acme.example".encode("utf-16-le"), "utf-8").text == "jane@acme.example"
    feed = "<rss><channel><title>Wide feed</title></channel></rss>".encode("utf-16-le")
    assert parse_feed(feed, "utf-8")[0] == "Wide feed"


def test_labels() -> None:
    assert http_charset("application/rss+xml; charset=ISO-8859-1") == "iso8859-1"
    assert http_charset(b'text/html; charset="Shift_JIS"') == "shift_jis"
    assert http_charset("text/xml") is None and http_charset(None) is None
    assert codec_name("rot13") is None and codec_name("hex") is None and codec_name("nope") is None
    assert codec_name("gb2312") == "gb18030"
    assert declared_charset(b"<?xml version='1.0' encoding='ISO-8859-15'?><a/>") == "iso8859-15"
    assert (
        declared_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">') == "koi8-r"
    )


def test_response_text_decodes_pages_served_as_bytes() -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><p>5 € – Zoë</p></body></html>'
    raw = Response(
        "http://example.test/p",
        body=page.encode("cp1252"),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response_text(raw) == page
    html = HtmlResponse("http://example.test/p", body=page.encode("cp1252"))
    assert response_text(html) == page
    assert html_to_lines(page.encode("cp1252")) == "5 € – Zoë"


@FAST
@given(raw=st.binary(max_size=2048), label=st.sampled_from(LABELS))
def test_any_bytes_under_any_label_decode_to_text(raw: bytes, label: str | None) -> None:
    decoded = decode_document(raw, label)
    assert isinstance(decoded.text, str) and decoded.how in {"bom", "http", "declared", "detected"}
    codecs.lookup(decoded.encoding)


@FAST
@given(
    raw=st.one_of(
        st.binary(max_size=2048),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from(
                [b"<rss><channel>", b"\xff\xfe<\x00", b"<?xml version='1.0' encoding='utf-16'?><feed>"]
            ),
            st.binary(max_size=512),
        ),
    ),
    label=st.sampled_from(LABELS),
)
def test_any_bytes_are_a_feed_or_a_clear_feed_error(raw: bytes, label: str | None) -> None:
    try:
        title, items = parse_feed(raw, label)
    except FeedError as exc:
        assert str(exc)
    else:
        assert isinstance(title, str) and isinstance(items, list)


_XML_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=0x20,
        max_codepoint=0x2FFF,
        blacklist_characters="<&>",
        blacklist_categories=("Cs", "Cc"),
    ),
    min_size=1,
    max_size=40,
).map(lambda s: "x" + s.strip() + "x")


@FAST
@given(
    title=_XML_TEXT,
    codec=st.sampled_from(["utf-8", "latin-1", "cp1252", "koi8-r", "utf-16", "utf-16-le", "shift_jis"]),
    declare=st.sampled_from([None, "utf-8", "self"]),
)
def test_a_feed_under_its_http_charset_keeps_its_text(title: str, codec: str, declare: str | None) -> None:
    """Whatever the declaration says (nothing, the truth, or UTF-8), the header's charset reads the feed."""
    try:
        title.encode(codec)
    except UnicodeEncodeError:
        return
    if codec == "shift_jis" and ("\\" in title or "~" in title):
        return  # 0x5C and 0x7E are yen/backslash and overline/tilde: decoders legitimately differ
    decl = (
        ""
        if declare is None
        else f'<?xml version="1.0" encoding="{codec if declare == "self" else declare}"?>'
    )
    body = f"{decl}<rss><channel><title>{title}</title></channel></rss>".encode(codec)
    label = "utf-16" if codec == "utf-16" else codec  # "utf-16" writes a BOM: the BOM decides
    assert parse_feed(body, label)[0] == title


@FAST
@given(title=_XML_TEXT, codec=st.sampled_from(["cp1252", "latin-1"]), declare=st.booleans())
def test_a_legacy_feed_without_a_header_is_never_dropped(title: str, codec: str, declare: bool) -> None:
    """No HTTP charset, and no declaration or a false UTF-8 one: the parser rejects the bytes, the text
    pass re-decodes them as windows-1252 and the feed is read, not dropped whole."""
    try:
        raw_title = title.encode(codec)
        raw_title.decode("utf-8")
    except UnicodeEncodeError:
        return  # not writable in this codec
    except UnicodeDecodeError:
        pass
    else:
        return  # bytes that are valid UTF-8 are read as UTF-8, as they should
    decl = '<?xml version="1.0" encoding="utf-8"?>' if declare else ""
    body = f"{decl}<rss><channel><title>{title}</title></channel></rss>".encode(codec)
    expected = (
        raw_title.decode("cp1252", errors="strict") if _cp1252_ok(raw_title) else raw_title.decode("latin-1")
    )
    assert parse_feed(body)[0] == expected


def _cp1252_ok(raw: bytes) -> bool:
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True
