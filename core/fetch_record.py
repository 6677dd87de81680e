"""The HTTP exchange behind a posting (status, final URL, request and response headers, screenshot), kept
with the posting.

Why: the evidence package must show how a posting was fetched, not only its bytes. The crawl captures the
exchange when it builds the item (``from_response``); the store keeps it (``prepare_fetch_record``: values
sanitised again, the rendered page's screenshot content-addressed beside the raw bytes) in the posting's
text row (``posting_texts.fetch_record``), written in the transaction that stores the posting and purged with
the text. A posting without text, and every posting stored before that column existed, has it as a sidecar
``fetches/<posting_id>.json`` in the evidence store (core.evidence_store: the evidence directory or an
S3-compatible bucket; atomic either way) instead: ``read_fetch_record`` and ``forget_fetch_record`` take the
row's value when there is one and the sidecar otherwise. ``leaksentinel.evidence`` reads it back; postings
stored by ``scan --store`` or tips have none, and the package says so. Every function takes the store, the
settings, or (older callers) the evidence directory.

Secrets never reach disk: the values of credential headers are replaced by ``[removed]`` (names kept),
and headers are bounded in count and size.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.evidence_store import EvidenceStore, as_store, blob_key, put_blob
from core.settings import Settings

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_SCREENSHOT_BYTES",
    "REMOVED",
    "SCREENSHOT_KEY",
    "SECRET_HEADERS",
    "forget_fetch_record",
    "from_response",
    "prepare_fetch_record",
    "read_fetch_record",
    "sanitize_headers",
    "write_fetch_record",
]

#: Header values never kept: credentials of the crawler or session tokens of the site.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
REMOVED = "[removed]"
#: Request plus response headers kept per fetch (names and values, UTF-8); the rest is cut and said so.
MAX_HEADER_BYTES = 64 * 1024
#: Screenshots above this are not kept (the sidecar says why).
MAX_SCREENSHOT_BYTES = 10 * 1024 * 1024
#: The sidecar file itself is never read past this (hostile or corrupted disk contents).
MAX_SIDECAR_BYTES = 4 * MAX_HEADER_BYTES
FETCHES = "fetches"
#: The key of the screenshot page method in a rendered request's ``playwright_page_methods`` (a dict).
SCREENSHOT_KEY = "leaksentinel_screenshot"
_CACHE = "leaksentinel_fetch_record"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def sanitize_headers(headers: Any, budget: int) -> tuple[list[list[str]], int, bool]:
    """``[[name, value], ...]`` in order with credential values removed, within ``budget`` bytes.

    ``headers`` is a Scrapy ``Headers`` (name -> list of bytes values), a mapping or a list of pairs.
    Returns the pairs, the bytes used, and whether some were cut."""
    pairs: list[tuple[str, str]] = []
    items = headers.items() if hasattr(headers, "items") else headers or []
    for name, values in items:
        for value in values if isinstance(values, list | tuple) else [values]:
            pairs.append((_text(name), _text(value)))
    out: list[list[str]] = []
    used = 0
    for name, value in pairs:
        if name.lower() in SECRET_HEADERS:
            value = REMOVED
        size = len(name.encode()) + len(value.encode()) + 4
        if used + size > budget:
            return out, used, True
        out.append([name, value])
        used += size
    return out, used, False


def _screenshot_of(meta: dict[str, Any]) -> Any:
    """What the render path's screenshot page method gave: PNG bytes, a note (str) or None."""
    methods = meta.get("playwright_page_methods")
    method = methods.get(SCREENSHOT_KEY) if isinstance(methods, dict) else None
    return getattr(method, "result", None)


def from_response(response: Any) -> dict[str, Any]:
    """The fetch record of a Scrapy response: what was asked, what came back, where it ended (and the
    page's screenshot when it was rendered). Computed once per response: every posting read from one
    feed or thread shares it."""
    request = response.request  # None for a response built by hand (tests, tools)
    meta: dict[str, Any] = request.meta if request is not None else {}
    cached = meta.get(_CACHE)
    if isinstance(cached, tuple) and cached[0] is response:
        return dict(cached[1])
    sent = request.headers if request is not None else []
    request_headers, used, cut_req = sanitize_headers(sent, MAX_HEADER_BYTES)
    response_headers, _, cut_resp = sanitize_headers(response.headers, MAX_HEADER_BYTES - used)
    redirects = [str(u) for u in meta.get("redirect_urls", [])][:20]
    record: dict[str, Any] = {
        "method": request.method if request is not None else None,
        "request_url": redirects[0] if redirects else (request.url if request is not None else response.url),
        "redirects": redirects,
        "url": response.url,
        "status": int(response.status),
        "protocol": getattr(response, "protocol", None),
        "request_headers": request_headers,
        "response_headers": response_headers,
        "headers_truncated": cut_req or cut_resp,
        "body_sha256": hashlib.sha256(response.body).hexdigest(),
        "rendered": bool(meta.get("playwright")),
    }
    shot = _screenshot_of(meta)
    if isinstance(shot, bytes):
        record["screenshot_png"] = shot
    elif isinstance(shot, str):
        record["screenshot_note"] = shot
    if request is not None:
        meta[_CACHE] = (response, record)
    return dict(record)


#: Where callers keep evidence: a store, the settings naming one, or an evidence directory.
Target = EvidenceStore | Settings | Path


def _sidecar(posting_id: int) -> str:
    return f"{FETCHES}/{int(posting_id)}.json"


def prepare_fetch_record(target: Target, record: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a fetch record: values sanitised again (whatever built the record, no credential is
    kept), and a screenshot stored content-addressed beside the raw bytes with only its SHA-256 kept."""
    store = as_store(target)
    data = {k: v for k, v in record.items() if k != "screenshot_png"}
    req, used, cut_req = sanitize_headers(record.get("request_headers") or [], MAX_HEADER_BYTES)
    resp, _, cut_resp = sanitize_headers(record.get("response_headers") or [], MAX_HEADER_BYTES - used)
    data["request_headers"], data["response_headers"] = req, resp
    data["headers_truncated"] = bool(record.get("headers_truncated")) or cut_req or cut_resp
    shot = record.get("screenshot_png")
    data["screenshot_sha256"] = None
    if isinstance(shot, bytes):
        if len(shot) > MAX_SCREENSHOT_BYTES:
            data["screenshot_note"] = (
                f"not kept: the screenshot was {len(shot)} bytes (more than {MAX_SCREENSHOT_BYTES})"
            )
        else:
            data["screenshot_sha256"] = put_blob(store, shot)
            data["screenshot_size"] = len(shot)
    elif record.get("screenshot_note"):
        data["screenshot_note"] = str(record["screenshot_note"])
    return data


def write_fetch_record(target: Target, posting_id: int, record: dict[str, Any]) -> str:
    """Write the sidecar of a stored posting that has no text row to hold it (atomically); returns its key
    in the store."""
    store = as_store(target)
    data = prepare_fetch_record(store, record)
    key = _sidecar(posting_id)
    # Not flushed to disk on its own (a crash may lose the newest sidecars: their packages say no exchange
    # was recorded); the screenshot above is, like all content-addressed evidence.
    store.put(key, json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8"), durable=False)
    return key


def read_fetch_record(
    target: Target, posting_id: int, stored: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The exchange of a posting: ``stored`` (its text row's ``fetch``) when there is one, else its sidecar,
    or None when none was kept (``scan --store``, tips) or the sidecar is not one (too large, not JSON). A
    store that cannot be read raises EvidenceStoreError: a package must not say "no exchange was recorded"
    because a bucket was briefly out of reach."""
    if isinstance(stored, dict):
        return stored
    body = as_store(target).get(_sidecar(posting_id), limit=MAX_SIDECAR_BYTES + 1)
    if body is None or len(body) > MAX_SIDECAR_BYTES:
        return None
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def forget_fetch_record(
    target: Target, posting_id: int, raw_deleted: bool, stored: dict[str, Any] | None = None
) -> None:
    """Retention: delete a purged posting's sidecar (if it has one; ``stored``, its text row's record, goes
    with the row), and its screenshot when the raw bytes it was taken with were deleted too (postings read
    from one page share both; a page still kept keeps its picture)."""
    store = as_store(target)
    record = read_fetch_record(store, posting_id, stored)
    digest = record.get("screenshot_sha256") if record is not None else None
    if raw_deleted and isinstance(digest, str):
        try:
            key = blob_key(digest)
        except ValueError:
            key = None
        if key is not None:
            store.delete(key)
    if not isinstance(stored, dict):  # the store keeps a record in the row or in a sidecar, never both
        store.delete(_sidecar(posting_id))
