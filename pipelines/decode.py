"""Raw bytes of a posting to text: the decoder lives in `core.textcodec` (the crawlers use it too).

Re-exported here so the pipelines keep one import path::

    decode_bytes(b"\\xff\\xfej\\x00a\\x00")      # 'ja'
    sniff_encoding(b"j\\x00a\\x00n\\x00e\\x00")  # ('utf-16-le', 0)
"""

from __future__ import annotations

from core.textcodec import SNIFF_BYTES, decode_bytes, sniff_encoding

__all__ = ["SNIFF_BYTES", "decode_bytes", "sniff_encoding"]
