"""The deployment's hashing key fingerprint: recorded in the database by the first machine, compared by all.

Why: a machine that silently made its own ``hash.key`` matches nothing it crawls and retro-match can never
repair it (its stored candidate hashes use the wrong key). Recording a fingerprint (never the key) lets
``run`` refuse to start and ``/readyz`` report not ready, with a message saying what to copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.hashing import load_or_create_key
from core.models import DeploymentSetting
from core.settings import Settings

__all__ = ["KEY_SETTING", "KeyCheck", "check_hash_key", "key_fingerprint", "mismatch_message"]

#: The deployment_settings row holding the hashing key's fingerprint.
KEY_SETTING = "hash_key_fingerprint"


def key_fingerprint(key: bytes) -> str:
    """A public, one-way name for the key (domain-separated, so it is no hash the matcher ever makes)."""
    return hashlib.sha256(b"leaksentinel hashing key fingerprint\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class KeyCheck:
    ok: bool
    mine: str | None
    recorded: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.message}


def mismatch_message(settings: Settings, mine: str | None, recorded: str) -> str:
    have = f"fingerprint {mine}" if mine else "no key file"
    return (
        f"the hashing key {settings.key_path} ({have}) differs from the one this deployment's database "
        f"records (fingerprint {recorded}): copy hash.key from a machine of this deployment to {settings.key_path}"
    )


def recorded_fingerprint(db: Database) -> str | None:
    with db.session() as sess:
        row = sess.get(DeploymentSetting, KEY_SETTING)
        return row.value if row is not None else None


def check_hash_key(db: Database, settings: Settings, *, record: bool = True) -> KeyCheck:
    """Compare this machine's key with the recorded one; the first machine (nothing recorded) records its own.

    A machine without a key file does not create one when the database already names another key: it
    would only be wrong. With nothing recorded and ``record``, the key is created as ``hash`` would."""
    recorded = recorded_fingerprint(db)
    path = settings.key_path
    mine: str | None = None
    if path.exists() or (recorded is None and record):
        mine = key_fingerprint(load_or_create_key(path))
    if recorded is None:
        if not record or mine is None:
            return KeyCheck(True, mine, None, "no key fingerprint recorded yet")
        try:
            with db.session() as sess:
                sess.add(DeploymentSetting(name=KEY_SETTING, value=mine))
        except IntegrityError:  # another machine recorded first: compare with its key
            return check_hash_key(db, settings, record=False)
        return KeyCheck(True, mine, mine, "recorded this machine's key as the deployment's")
    if mine != recorded:
        return KeyCheck(False, mine, recorded, mismatch_message(settings, mine, recorded))
    return KeyCheck(True, mine, recorded, "matches the deployment's")
