"""The deployment's evidence signing key: Ed25519, kept as ``evidence.key`` beside ``hash.key``.

Why a key of its own: an evidence package must show that this deployment made it and that nothing in
it changed since. The hashing key is a shared secret (HMAC) that every fleet machine and every company
tool needs, so it cannot prove origin; an Ed25519 key can, and only its public half ever leaves the home.
The file holds the 32-byte private seed as one hex line, 0600, created atomically on first use exactly
like ``hash.key`` (core.hashing.load_or_create_key), so two processes starting together agree on it.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import BadInput
from core.hashing import load_or_create_key
from core.settings import Settings

__all__ = [
    "EVIDENCE_KEY_FILE",
    "evidence_key_path",
    "load_or_create_signing_key",
    "parse_public_key",
    "public_key_hex",
]

EVIDENCE_KEY_FILE = "evidence.key"
#: Upper bound on a public-key file given to ``evidence verify --key`` (a PEM is ~113 bytes).
_MAX_PUBKEY_FILE = 4096


def evidence_key_path(settings: Settings) -> Path:
    """``evidence.key`` in the directory of ``hash.key`` (the home)."""
    return settings.key_path.parent / EVIDENCE_KEY_FILE


def load_or_create_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The deployment's signing key, created (0600) on first use."""
    seed = load_or_create_key(evidence_key_path(settings))
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key as lower-case hex: what manifests carry and ``--key`` files hold."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def parse_public_key(data: bytes, origin: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from hex (64 characters), base64 of the 32 raw bytes, or a PEM block."""
    if len(data) > _MAX_PUBKEY_FILE:
        raise BadInput(f"{origin}: too large for an Ed25519 public key")
    text = data.decode("ascii", errors="replace").strip()
    if text.startswith("-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, TypeError) as exc:
            raise BadInput(f"{origin}: not a PEM public key ({exc})") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise BadInput(f"{origin}: not an Ed25519 public key")
        return loaded
    raw: bytes | None = None
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise BadInput(f"{origin}: not an Ed25519 public key (64 hex characters, base64 or PEM expected)")
    return Ed25519PublicKey.from_public_bytes(raw)
