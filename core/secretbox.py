"""Secrets at rest: webhook signing secrets and proxy credentials are stored encrypted in the database.

Why: the database is the thing most often copied (backups, a support dump, a stolen disk image). With
the signing secrets in clear, whoever holds a copy can forge signed alerts to every company. Each value
is sealed with AES-256-GCM under a key kept beside ``hash.key`` (``secrets.key``, 0600, same format and
same creation as the hashing key), so the database alone gives nothing away.

Distributed setup: every machine that reads the database needs the same ``secrets.key``, exactly as it
needs ``hash.key``: copy it into each home, or point ``LEAKSENTINEL_SECRETS_KEY_FILE`` at the shared file.
A value sealed under another key fails with a message that says which key it needs, never silently.

Usage (what the ``EncryptedText`` column type in core.models does)::

    box = SecretBox(settings.home / "secrets.key")
    stored = box.seal("s3cret")        # "enc:v1:<key id>:<base64 nonce+ciphertext>"
    box.open(stored) == "s3cret"
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import OperationalError
from core.hashing import load_or_create_key

__all__ = [
    "PREFIX",
    "SECRETS_KEY_ENV",
    "SECRETS_KEY_FILE",
    "SecretBox",
    "SecretKeyError",
    "bind_box",
    "box_for",
    "is_sealed",
    "mask_url_credentials",
    "secrets_key_path",
]

SECRETS_KEY_FILE = "secrets.key"
#: Overrides the key file's location (the distributed setup's shared key); default: beside hash.key.
SECRETS_KEY_ENV = "LEAKSENTINEL_SECRETS_KEY_FILE"
PREFIX = "enc:v1:"
_NONCE_BYTES = 12
#: Bound into every ciphertext: a value sealed for another purpose does not open here.
_AAD = b"leaksentinel secret v1"


class SecretKeyError(OperationalError):
    """A sealed value cannot be opened: missing key, another deployment's key, or tampered data."""


def secrets_key_path(home: Path, configured: str = "") -> Path:
    """Where this machine's secrets key lives: the ``secrets_key_file`` setting (``$LEAKSENTINEL_SECRETS_KEY_FILE``)
    or ``HOME/secrets.key``."""
    override = (configured or os.environ.get(SECRETS_KEY_ENV, "")).strip()
    return Path(override).expanduser() if override else Path(home) / SECRETS_KEY_FILE


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def mask_url_credentials(url: str | None) -> str | None:
    """``http://user:pass@host:3128`` as ``http://user:***@host:3128``: a proxy URL for people who may
    see that a proxy is used but not its password (every role but operator)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL we can take apart: show nothing of it
        return "***"
    if parts.password is None and "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    masked = f"{user}:***@{hostport}" if user else f"***@{hostport}"
    return urlunsplit((parts.scheme, masked, parts.path, parts.query, parts.fragment))


class SecretBox:
    """Seals and opens short secrets with the key in ``path`` (created 0600 on the first seal)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._aead: AESGCM | None = None
        self._key_id = ""

    def _load(self, *, create: bool) -> tuple[AESGCM, str]:
        with self._lock:
            if self._aead is None:
                if not create and not self.path.exists():
                    raise SecretKeyError(
                        f"{self.path} is missing, so the secrets stored in the database cannot be read: "
                        f"copy secrets.key from the machine that created them (or set {SECRETS_KEY_ENV})"
                    )
                key = load_or_create_key(self.path)
                self._aead = AESGCM(key)
                self._key_id = hashlib.sha256(b"leaksentinel secrets key id\0" + key).hexdigest()[:8]
            return self._aead, self._key_id

    @property
    def key_id(self) -> str:
        """A short public fingerprint of the key (stored with each value, to name the key it needs)."""
        return self._load(create=False)[1]

    def seal(self, clear: str) -> str:
        aead, key_id = self._load(create=True)
        nonce = os.urandom(_NONCE_BYTES)
        data = aead.encrypt(nonce, clear.encode("utf-8", "surrogatepass"), _AAD)
        return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + data).decode('ascii')}"

    def open(self, stored: str) -> str:
        """The clear value of ``stored``; a value that was never sealed (written before encryption) is
        returned as it is."""
        if not is_sealed(stored):
            return stored
        key_id, _, blob = stored[len(PREFIX) :].partition(":")
        aead, mine = self._load(create=False)
        if key_id != mine:
            raise SecretKeyError(
                f"a stored secret was sealed with key {key_id}, but {self.path} is key {mine}: "
                "use the secrets.key of the deployment that wrote the database"
            )
        try:
            raw = base64.urlsafe_b64decode(blob.encode("ascii"))
            clear = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD)
        except (InvalidTag, ValueError, binascii.Error, UnicodeEncodeError):
            raise SecretKeyError("a stored secret is damaged (it does not authenticate)") from None
        return clear.decode("utf-8", "surrogatepass")


# One box per database engine: a process may hold several databases (tests, tools), each with its home.
_boxes: weakref.WeakKeyDictionary[Any, SecretBox] = weakref.WeakKeyDictionary()


def bind_box(dialect: Any, box: SecretBox) -> None:
    """Let the ``EncryptedText`` columns of the engine owning ``dialect`` seal and open with ``box``."""
    _boxes[dialect] = box


def box_for(dialect: Any) -> SecretBox:
    box = _boxes.get(dialect)
    if box is None:
        raise SecretKeyError(
            "this database connection has no secrets key (open it with core.db.open_database)"
        )
    return box
