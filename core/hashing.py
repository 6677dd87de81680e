"""The keyed hashing scheme shared by `leaksentinel hash` and the matcher.

Why: the service must find a company's values in postings without ever holding them in clear. Both
sides canonicalise a value (core.canonical) and hash it with the deployment's secret key; only the
hashes travel. Keyed (HMAC) rather than plain hashes, so a stolen hash table cannot be brute-forced
over the small spaces phones, cards and ids live in without also stealing the key.

Scheme version 1: ``hex(HMAC-SHA256(key, f"{field_type}\\x00{canonical}")[:16])``. The field type is in
the message so an email and a username with the same text hash differently; the matcher hashes
delimited fields as usernames/names/... explicitly when it wants them compared as such.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import pathlib
import secrets

from core.canonical import canonicalize
from core.errors import BadInput

__all__ = [
    "DIGEST_BYTES",
    "KEY_BYTES",
    "SCHEME_VERSION",
    "hash_value",
    "keyed_digest",
    "keyed_hash",
    "load_or_create_key",
]

SCHEME_VERSION = 1
KEY_BYTES = 32
DIGEST_BYTES = 16


def keyed_hash(key: bytes, field_type: str, canonical: str, version: int = SCHEME_VERSION) -> str:
    """The scheme's hash of an already canonical value: 32 lower-case hex characters."""
    if version != 1:
        raise BadInput(f"unsupported hash scheme version {version} (this build knows 1)")
    return keyed_digest(key, field_type, canonical).hex()


def keyed_digest(key: bytes, field_type: str, canonical: str) -> bytes:
    """Scheme version 1 as the 16 raw bytes (what the matcher stores and compares)."""
    # lone surrogates (a hostile JSON escape) are hashed as written rather than raising
    message = f"{field_type}\x00{canonical}".encode("utf-8", "surrogatepass")
    return hmac.digest(key, message, "sha256")[:DIGEST_BYTES]


def hash_value(key: bytes, field_type: str, raw_value: str, region: str | None = None) -> str | None:
    """Canonicalise then hash; None when the value is not valid for the type."""
    canonical = canonicalize(field_type, raw_value, region)
    if canonical is None:
        return None
    return keyed_hash(key, field_type, canonical)


def load_or_create_key(path: pathlib.Path) -> bytes:
    """The deployment key in `path` (one hex line), created 0600 on first use.

    Creation is atomic and race-safe: the key is written to a private temporary file and linked into
    place, so two processes starting together end up with the same key (the loser reads the winner's).
    """
    path = pathlib.Path(path)
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return _read_key(path)


def _publish(tmp: pathlib.Path, path: pathlib.Path) -> None:
    """Put `tmp` at `path` unless a key got there first (link fails on an existing name)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return
    except OSError:  # a filesystem without hard links: last writer wins, everyone re-reads
        if not path.exists():
            os.replace(tmp, path)


def _read_key(path: pathlib.Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise BadInput(f"{path}: not a hashing key ({KEY_BYTES} bytes as one hex line expected)")
    return key
