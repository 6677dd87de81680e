"""Evidence packages: one zip per alert that shows what was found, where, when, and that nothing changed since.

Why: a leak is only acted on (takedown, notification, prosecution) when its evidence holds up. The zip
holds, for the leak's posting and each of its reposts, the raw bytes exactly as fetched (the store keeps
them content-addressed under their SHA-256 in the evidence store, core.evidence_store: a directory or an
S3-compatible bucket), the fetch metadata, and a WARC file of the same bytes for
archive tools; then ``manifest.json`` (the SHA-256 and size of every file, the alert and posting
metadata, the chain of custody) signed with the deployment's Ed25519 evidence key (core.evidence_key)
in ``manifest.sig``.

The HTTP exchange of a crawled posting (status, final URL, request and response headers, credential
values removed) is kept by the crawl beside the evidence (core.fetch_record); with it the WARC holds a
``request`` and a ``response`` record, and ``fetch.json`` the headers as received; a rendered source's
full-page screenshot is ``posting-<id>/screenshot.png``. What was not kept (postings stored before, ``scan
--store``, a post cut out of a larger response) is said in ``fetch.json`` rather than invented, and the
WARC then holds a ``resource`` record of the bytes fetched.

Verification never extracts anything to disk: entries are read into memory with bounded sizes, and
names are checked (no absolute paths, no ``..``, no duplicates) before anything is compared.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import mimetypes
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.alert_view import alert_to_dict
from core.db import Database
from core.errors import BadInput, NotFound, OperationalError
from core.evidence_key import load_or_create_signing_key, parse_public_key, public_key_hex
from core.evidence_store import EvidenceStore, EvidenceStoreError, blob_key, open_evidence_store
from core.fetch_record import read_fetch_record
from core.models import Alert, Posting, Sighting, Source
from core.settings import Settings

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SIGNATURE",
    "VerifyResult",
    "build_evidence",
    "http_response_head",
    "verify_evidence",
    "warc_record",
    "warc_request_record",
]

FORMAT = "leaksentinel-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
WARC_FILE = "evidence.warc"
#: Postings (the leak's first one plus reposts) packaged per alert; the manifest says when more exist.
MAX_POSTINGS = 50

# Bounds for verifying a zip from anywhere (hostile input): sizes are read, never trusted.
MAX_ZIP_BYTES = 512 * 1024 * 1024
MAX_ENTRIES = 4 * MAX_POSTINGS + 16
MAX_ENTRY_BYTES = 128 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _target_uri(url: str) -> str:
    """A URI for the WARC: crawled URLs as they are, local paths (``scan --store``) as file: URIs."""
    if "://" in url or url.startswith(("file:", "tip:")):
        return url
    path = Path(url)
    return path.as_uri() if path.is_absolute() else "file:" + url


def warc_record(
    raw: bytes,
    uri: str,
    fetched: datetime,
    *,
    content_type: str = "application/octet-stream",
    http_head: bytes | None = None,
    record_id: str | None = None,
) -> bytes:
    """One WARC/1.1 record of ``raw``, dated at the fetch, with SHA-256 block and payload digests.

    With ``http_head`` (the response's status line and headers as received) it is a ``response`` record;
    without it a ``resource`` record, which holds exactly the bytes fetched and claims no protocol headers.
    """
    from warcio.statusandheaders import StatusAndHeadersParser
    from warcio.warcwriter import WARCWriter

    when = fetched if fetched.tzinfo else fetched.replace(tzinfo=UTC)
    payload_digest = "sha256:" + base64.b32encode(hashlib.sha256(raw).digest()).decode("ascii")
    headers = {
        "WARC-Date": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "WARC-Record-ID": record_id or f"<urn:uuid:{uuid.uuid4()}>",
        "WARC-Payload-Digest": payload_digest,
    }
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=False, warc_version="1.1")
    if http_head is not None:
        http_headers = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"]).parse(
            io.BytesIO(http_head.rstrip(b"\r\n") + b"\r\n\r\n")
        )
        # The block is the HTTP head plus the payload: digest what is written.
        http_headers.compute_headers_buffer()
        block = (http_headers.headers_buff or b"") + raw
        headers["WARC-Block-Digest"] = "sha256:" + base64.b32encode(hashlib.sha256(block).digest()).decode()
        record = writer.create_warc_record(
            uri,
            "response",
            payload=io.BytesIO(raw),
            length=len(raw),
            warc_headers_dict=headers,
            http_headers=http_headers,
        )
    else:
        headers["WARC-Block-Digest"] = payload_digest
        record = writer.create_warc_record(
            uri,
            "resource",
            payload=io.BytesIO(raw),
            length=len(raw),
            warc_content_type=content_type,
            warc_headers_dict=headers,
        )
    writer.write_record(record)
    return out.getvalue()


#: Headers that describe how the body travelled, not the body stored (decoded by the crawler): left out
#: of the WARC's HTTP head, whose Content-Length is the stored payload's. fetch.json keeps them as received.
_TRANSFER_HEADERS = frozenset({"transfer-encoding", "content-encoding", "content-length"})


def _header_pairs(value: Any) -> list[tuple[str, str]]:
    """``[[name, value], ...]`` from a sidecar as WARC-safe pairs (no CR/LF, no colon in names)."""
    pairs: list[tuple[str, str]] = []
    for pair in value if isinstance(value, list) else []:
        if isinstance(pair, list) and len(pair) == 2:
            name = " ".join(str(pair[0]).replace(":", " ").split())
            if name:
                pairs.append((name, " ".join(str(pair[1]).split())))
    return pairs


def http_response_head(status: int, headers: Any, protocol: str | None, size: int) -> bytes:
    """The status line and headers of a kept fetch, as the HTTP head of a WARC ``response`` record."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    proto = protocol if protocol in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"
    lines = [f"{proto} {status} {reason}".rstrip()]
    lines += [f"{n}: {v}" for n, v in _header_pairs(headers) if n.lower() not in _TRANSFER_HEADERS]
    lines.append(f"Content-Length: {size}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1", "replace")


def warc_request_record(
    uri: str, fetched: datetime, method: str, headers: Any, *, concurrent_to: str | None = None
) -> bytes:
    """A WARC/1.1 ``request`` record: the request line and headers the crawler sent (credentials removed)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    parts = urlsplit(uri)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pairs = _header_pairs(headers)
    if parts.netloc and not any(n.lower() == "host" for n, _ in pairs):
        pairs.insert(0, ("Host", parts.netloc))
    safe_method = method if method.isascii() and method.isalpha() else "GET"
    http = StatusAndHeaders(f"{safe_method} {target} HTTP/1.1", pairs, is_http_request=True)
    http.compute_headers_buffer()
    block = http.headers_buff or b""
    when = fetched if fetched.tzinfo else fetched.replace(tzinfo=UTC)
    warc_headers = {
        "WARC-Date": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
        "WARC-Block-Digest": "sha256:" + base64.b32encode(hashlib.sha256(block).digest()).decode(),
        "WARC-Payload-Digest": "sha256:" + base64.b32encode(hashlib.sha256(b"").digest()).decode(),
    }
    if concurrent_to:
        warc_headers["WARC-Concurrent-To"] = concurrent_to
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=False, warc_version="1.1")
    record = writer.create_warc_record(
        uri, "request", payload=io.BytesIO(b""), length=0, warc_headers_dict=warc_headers, http_headers=http
    )
    writer.write_record(record)
    return out.getvalue()


def _blob(store: EvidenceStore, digest: Any) -> bytes | None:
    """Content-addressed bytes from the evidence store (core.evidence_store: a directory or a bucket).
    None when the digest is not one or the bytes are gone; an unreachable store is an error (the package
    would otherwise claim the evidence was deleted)."""
    try:
        key = blob_key(digest)
    except ValueError:
        return None
    try:
        return store.get(key)
    except EvidenceStoreError as exc:
        raise OperationalError(f"evidence store {store.describe()} cannot be read: {exc}") from None


def _stored(store: EvidenceStore, digest: Any) -> bytes | None:
    """Content-addressed bytes from the evidence store, only if they still hash to their name."""
    data = _blob(store, digest)
    return data if data is not None and hashlib.sha256(data).hexdigest() == digest else None


def _raw_of(store: EvidenceStore, posting: Posting) -> bytes | None:
    return _blob(store, posting.evidence_sha256 or "")


def _load_alert(sess: Session, alert_id: int | str, tenant_id: int | None) -> Alert:
    text = str(alert_id)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise BadInput(f"alert id must be a number, got {text[:20]!r}")
    alert = sess.get(Alert, int(text))
    if alert is None or (tenant_id is not None and alert.tenant_id != tenant_id):
        raise NotFound(f"unknown alert: {text}")
    return alert


def build_evidence(
    db: Database,
    settings: Settings,
    alert_id: int | str,
    *,
    tenant_id: int | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> bytes:
    """The signed evidence zip of one alert (NotFound for a missing alert or another tenant's)."""
    created = now or datetime.now(UTC)
    files: dict[str, bytes] = {}
    postings_meta: list[dict[str, Any]] = []
    warc = io.BytesIO()
    store = open_evidence_store(settings)
    with db.session() as sess:
        alert = _load_alert(sess, alert_id, tenant_id)
        view = alert_to_dict(sess, alert, with_findings=True)
        posting_ids = [alert.posting_id] + [
            pid
            for pid in sess.scalars(
                select(Sighting.posting_id).where(Sighting.alert_id == alert.id).order_by(Sighting.id)
            )
            if pid != alert.posting_id
        ]
        more = max(0, len(posting_ids) - MAX_POSTINGS)
        for pid in posting_ids[:MAX_POSTINGS]:
            posting = sess.get(Posting, pid)
            if posting is None:
                continue
            source = sess.get(Source, posting.source_id)
            folder = f"posting-{posting.id}"
            raw = _raw_of(store, posting)
            rendered = bool(source.render) if source is not None else False
            fetch = {
                "posting": posting.id,
                "url": posting.url,
                "source": source.name if source else None,
                "source_kind": source.kind if source else None,
                "rendered": rendered,
                "title": posting.title,
                "author": posting.author,
                "published": _iso(posting.published),
                "fetched": _iso(posting.fetched),
                "size": posting.size,
                "raw_sha256": posting.evidence_sha256,
                "request_headers": None,
                "response_headers": None,
                "headers_note": (
                    "not kept: no HTTP exchange was recorded for this posting"
                    " (stored before headers were kept, or not crawled: scan --store, tips)"
                ),
                "screenshot": None,
                "screenshot_note": (
                    "not kept: no screenshot was recorded for this posting"
                    if rendered
                    else "not a rendered source"
                ),
            }
            row = posting.text_row  # the exchange is kept with the text, or (older postings) beside it
            record = read_fetch_record(store, posting.id, row.fetch_record if row is not None else None)
            if record is not None:
                _add_exchange(store, fetch, record, files, folder)
            if raw is None:
                fetch["raw_note"] = "the raw bytes are no longer in the store"
            else:
                files[f"{folder}/raw.bin"] = raw
                warc.write(_warc_of(raw, posting, record))
            files[f"{folder}/fetch.json"] = _json_bytes(fetch)
            postings_meta.append(fetch)
    if warc.tell():
        files[WARC_FILE] = warc.getvalue()
    key = load_or_create_signing_key(settings)
    manifest = {
        "format": FORMAT,
        "created": _iso(created),
        "created_by": actor,
        "alert": view,
        "postings": postings_meta,
        "postings_not_included": more,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        },
        "custody": [
            *(
                {"at": p["fetched"], "event": "fetched", "posting": p["posting"], "url": p["url"]}
                for p in postings_meta
            ),
            {"at": _iso(created), "event": "packaged and signed", "by": actor},
        ],
        "signature": {"algorithm": "Ed25519", "public_key": public_key_hex(key), "file": SIGNATURE},
        "verify": "leaksentinel evidence verify FILE.zip [--key PUBKEY_FILE]",
    }
    manifest_bytes = _json_bytes(manifest)
    signature = key.sign(manifest_bytes)
    out = io.BytesIO()
    stamp = created.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [*sorted(files.items()), (MANIFEST, manifest_bytes)]:
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), data, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(zipfile.ZipInfo(SIGNATURE, date_time=stamp), signature.hex() + "\n")
    return out.getvalue()


def _add_exchange(
    store: EvidenceStore, fetch: dict[str, Any], record: dict[str, Any], files: dict[str, bytes], folder: str
) -> None:
    """Put a kept HTTP exchange (core.fetch_record) and the rendered page's screenshot into the package."""
    fetch.update(
        {
            "method": record.get("method"),
            "request_url": record.get("request_url"),
            "redirects": record.get("redirects") or [],
            "final_url": record.get("url"),
            "status": record.get("status"),
            "protocol": record.get("protocol"),
            "request_headers": record.get("request_headers") or [],
            "response_headers": record.get("response_headers") or [],
            "headers_truncated": bool(record.get("headers_truncated")),
            "response_body_sha256": record.get("body_sha256"),
            "headers_note": (
                "as received (request headers as the crawler set them); values of Authorization, Cookie,"
                " Set-Cookie and Proxy-Authorization removed"
            ),
        }
    )
    if fetch.get("raw_sha256") != record.get("body_sha256"):
        fetch["body_note"] = "the raw bytes are one post cut out of the response (a feed item, a thread post)"
    elif record.get("rendered"):
        fetch["body_note"] = "the raw bytes are the page as the browser rendered it (its DOM)"
    shot_digest = record.get("screenshot_sha256")
    shot = _stored(store, shot_digest)
    if shot is not None:
        name = f"{folder}/screenshot.png"
        files[name] = shot
        fetch["screenshot"] = {"file": name, "sha256": shot_digest, "size": len(shot)}
        fetch["screenshot_note"] = "the full page as the browser rendered it when fetched"
    elif shot_digest:
        fetch["screenshot_note"] = "not kept: the screenshot is no longer in the store"
    elif record.get("screenshot_note"):
        fetch["screenshot_note"] = str(record["screenshot_note"])[:300]


def _warc_of(raw: bytes, posting: Posting, record: dict[str, Any] | None) -> bytes:
    """The WARC records of one posting: request + response when the exchange was kept and the raw bytes are
    its body; otherwise a resource record of the bytes fetched."""
    uri = _target_uri(posting.url)
    if record is not None and record.get("body_sha256") == posting.evidence_sha256:
        status = record.get("status")
        uri = str(record.get("url") or uri)
        if isinstance(status, int) and 100 <= status <= 999:
            response_id = f"<urn:uuid:{uuid.uuid4()}>"
            head = http_response_head(
                status, record.get("response_headers"), record.get("protocol"), len(raw)
            )
            request = warc_request_record(
                uri,
                posting.fetched,
                str(record.get("method") or "GET"),
                record.get("request_headers"),
                concurrent_to=response_id,
            )
            return warc_record(raw, uri, posting.fetched, http_head=head, record_id=response_id) + request
    content_type = mimetypes.guess_type(posting.url)[0] or "application/octet-stream"
    return warc_record(raw, uri, posting.fetched, content_type=content_type)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class VerifyResult:
    """What ``evidence verify`` found: ``ok`` only when every hash and the signature hold."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    alert: Any = None
    public_key: str | None = None
    pinned: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "files": self.files,
            "alert": self.alert,
            "public_key": self.public_key,
            "key_pinned": self.pinned,
        }


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return (
        bool(name)
        and not name.startswith("/")
        and "\\" not in name
        and "\x00" not in name
        and ":" not in parts[0]
        and all(p not in ("", ".", "..") for p in parts)
    )


def _read_entries(data: bytes) -> tuple[dict[str, bytes], list[str]]:
    """Every entry's bytes, read in memory with bounds; problems with names or sizes."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise BadInput(f"not a zip file ({exc})") from None
    problems: list[str] = []
    entries: dict[str, bytes] = {}
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BadInput(f"not an evidence package: {len(infos)} entries (at most {MAX_ENTRIES})")
    total = 0
    for info in infos:
        name = info.filename
        shown = name[:200].encode("unicode_escape").decode("ascii")
        if info.is_dir():
            continue
        if not _safe_name(name):
            problems.append(f"unsafe file name in zip: {shown}")
            continue
        if name in entries:
            problems.append(f"file appears twice in zip: {shown}")
            continue
        limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_ENTRY_BYTES
        try:
            with zf.open(info) as handle:
                body = handle.read(limit + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError, EOFError) as exc:
            problems.append(f"{shown}: unreadable ({exc})")
            continue
        if len(body) > limit:
            problems.append(f"{shown}: larger than {limit} bytes")
            continue
        total += len(body)
        if total > MAX_TOTAL_BYTES:
            raise BadInput(f"not an evidence package: more than {MAX_TOTAL_BYTES} bytes uncompressed")
        entries[name] = body
    return entries, problems


def verify_evidence(data: bytes, pinned_key: bytes | None = None) -> VerifyResult:
    """Check an evidence zip: the signature over the manifest, then every file's hash and size.

    Raises BadInput when ``data`` is not a zip (or far too large); every other failure is a named problem.
    Without ``pinned_key`` the result proves integrity (the zip is as signed by the key inside it), not
    origin: anyone can sign with a key of their own. Pinning the deployment's public key proves both.
    """
    if len(data) > MAX_ZIP_BYTES:
        raise BadInput(f"not an evidence package: larger than {MAX_ZIP_BYTES} bytes")
    pinned = parse_public_key(pinned_key, "--key") if pinned_key is not None else None
    entries, problems = _read_entries(data)
    result = VerifyResult(problems=problems, pinned=pinned is not None)
    manifest_bytes = entries.get(MANIFEST)
    if manifest_bytes is None:
        result.problems.append(f"{MANIFEST} missing")
        return result
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (UnicodeDecodeError, ValueError) as exc:
        result.problems.append(f"{MANIFEST}: not valid JSON ({exc})")
        return result
    signature_info = manifest.get("signature") if isinstance(manifest.get("signature"), dict) else {}
    public_hex = signature_info.get("public_key") if isinstance(signature_info, dict) else None
    alert = manifest.get("alert")
    result.alert = alert.get("id") if isinstance(alert, dict) else None
    result.public_key = public_hex if isinstance(public_hex, str) else None
    _check_signature(entries, manifest_bytes, result, pinned)
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        result.problems.append(f"{MANIFEST}: no file list")
        return result
    for name, meta in sorted(listed.items()):
        shown = str(name)[:200]
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
            result.problems.append(f"{shown}: manifest entry malformed")
            continue
        body = entries.get(name)
        if body is None:
            result.problems.append(f"{shown}: listed in the manifest but missing from the zip")
            continue
        if hashlib.sha256(body).hexdigest() != meta["sha256"].lower():
            result.problems.append(f"{shown}: SHA-256 differs from the manifest (content changed)")
        elif meta.get("size") is not None and meta.get("size") != len(body):
            result.problems.append(f"{shown}: size differs from the manifest")
    for name in sorted(set(entries) - set(listed) - {MANIFEST, SIGNATURE}):
        result.problems.append(f"{name[:200]}: in the zip but not in the manifest (added)")
    result.files = len(listed)
    return result


def _check_signature(
    entries: dict[str, bytes], manifest_bytes: bytes, result: VerifyResult, pinned: Ed25519PublicKey | None
) -> None:
    sig_text = entries.get(SIGNATURE)
    if sig_text is None:
        result.problems.append(f"{SIGNATURE} missing: the manifest is not signed")
        return
    try:
        signature = bytes.fromhex(sig_text[:MAX_SIGNATURE_BYTES].decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        result.problems.append(f"{SIGNATURE}: not a hex signature")
        return
    try:
        embedded = parse_public_key((result.public_key or "").encode("ascii", "replace"), "manifest key")
    except BadInput:
        result.problems.append(f"{MANIFEST}: no valid Ed25519 public key in the manifest")
        return
    key = embedded
    if pinned is not None:
        if public_key_hex(pinned) != public_key_hex(embedded):
            result.problems.append(
                "signature: the manifest names another key than the pinned one (--key): not this deployment's"
            )
        key = pinned
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        result.problems.append(f"signature: {SIGNATURE} does not match {MANIFEST} (bad signature)")
