"""Pipeline stage 1: raw bytes to clean text.

Why: every later stage (fingerprints, extraction, the index) must see the same text whatever the
page's encoding; hostile input is cut to the size limit and stripped of NULs and control characters.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from typing import Any

from core.posting import PostingDraft
from core.settings import Settings, load_settings
from pipelines.decode import decode_bytes
from pipelines.detection.lines import native_switched_on

__all__ = ["NormalizePipeline", "decode_bytes", "normalize_text", "normalize_text_py"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_native: Any
try:  # the C extension: line ends and control characters in one pass (three passes below)
    _native = importlib.import_module("pipelines.detection._fingerprint")
    if not hasattr(_native, "nfc_stable"):  # an extension built before clean_text and nfc_stable
        _native = None
except ImportError:  # no C compiler at install
    _native = None


def normalize_text(text: str, max_chars: int) -> str:
    """NFC, unified newlines, no control characters, at most ``max_chars`` (see :func:`normalize_text_py`;
    the line ends and control characters natively when the extension is built)."""
    if _native is None or not native_switched_on():
        return normalize_text_py(text, max_chars)
    if len(text) > max_chars:
        text = text[:max_chars]
    cleaned: str = _native.clean_text(text)
    if _native.nfc_stable(cleaned):  # characters NFC keeps and never composes: its own NFC, unchecked
        return cleaned
    return unicodedata.normalize("NFC", cleaned)


def normalize_text_py(text: str, max_chars: int) -> str:
    """The reference: NFC, unified newlines, no control characters, at most ``max_chars``."""
    if len(text) > max_chars:
        text = text[:max_chars]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    return unicodedata.normalize("NFC", text)


class NormalizePipeline:
    def __init__(self, settings: Settings) -> None:
        self.max_chars = settings.max_posting_bytes

    @classmethod
    def from_crawler(cls, crawler: Any) -> NormalizePipeline:
        return cls(load_settings())

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, PostingDraft):
            self.apply(item)
        return item

    def apply(self, draft: PostingDraft) -> PostingDraft:
        raw = draft.raw[: self.max_chars]
        text = draft.text or decode_bytes(raw, draft.encoding)
        draft.text = normalize_text(text, self.max_chars)
        if draft.title:
            draft.title = normalize_text(draft.title, 512).strip()
        return draft
