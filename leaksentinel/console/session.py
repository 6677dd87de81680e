"""Console sessions: log in once with an API key, then a signed cookie; CSRF tokens for every form.

Why a signed cookie and not the key: the clear key must never sit in a browser cookie (it is a bearer
credential for the whole API). The cookie holds only the key's id, an expiry and a nonce, signed with
an HMAC whose secret lives in the home (``console.secret``, 0600), so nobody can forge a session for
another key. Each request reloads the key, so revoking the key ends its sessions at once.

Why the secret can live outside the home: behind a load balancer, each request may reach another front
machine; all must check cookies with one secret. ``console_secret_file`` (setting, or
``LEAKSENTINEL_CONSOLE_SECRET_FILE``) names that shared file; the home's file is the embedded default.
Logins and logouts are rows in the shared database, so a logout on one machine ends the session on all.

Why logout is recorded on the server: a signed cookie stays valid until it expires, so deleting it in
the browser alone would leave a copy (a shared machine, a proxy log) usable for the rest of the day.
Login writes a ``session.start`` row to the audit log, whose id the token carries; logout writes
``session.end`` for that session, and every request checks for one (a look at the rows since login).

Why HMAC CSRF tokens: every POST form carries ``HMAC(secret, "csrf:" + session token)``; a cross-site
page cannot read the cookie, so it cannot compute the token (and the cookie is SameSite=Strict as well).
The login form, before any session exists, is tied the same way to a random pre-login cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from core.db import Database
from core.errors import BadInput
from core.models import ApiKey, AuditLog, Tenant
from core.settings import Settings
from leaksentinel.api.auth import Principal

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "ConsoleSigner",
    "Session",
    "console_secret",
    "end_session",
    "load_or_create_secret",
    "principal_from_key_id",
    "session_ended",
    "start_session",
]

SESSION_COOKIE = "ls_session"
LOGIN_COOKIE = "ls_login"
#: A console session lasts a working day; after that the key is asked for again.
SESSION_SECONDS = 8 * 3600
SECRET_FILE = "console.secret"


#: Fewer bytes than this in a configured secret file is refused (a guessable secret forges sessions).
MIN_SECRET_BYTES = 32


def console_secret(settings: Settings) -> bytes:
    """The signing secret: the shared ``console_secret_file`` when configured (a fleet's front machines),
    else the home's ``console.secret``. A configured file that is missing is created (0600)."""
    if not settings.console_secret_file:
        return load_or_create_secret(settings.home)
    path = Path(settings.console_secret_file).expanduser()
    secret = load_or_create_secret(path.parent, path)
    if len(secret) < MIN_SECRET_BYTES:
        raise BadInput(
            f"console_secret_file {path} holds {len(secret)} bytes, at least {MIN_SECRET_BYTES} are needed: "
            "put the output of `openssl rand -hex 32` in it, on every front machine"
        )
    return secret


def load_or_create_secret(home: Path, path: Path | None = None) -> bytes:
    """The signing secret in ``path`` (default: the home's ``console.secret``), created 0600 on first use
    (atomic: two workers, or two machines on a shared directory, agree on one)."""
    path = path if path is not None else home / SECRET_FILE
    try:
        data = path.read_bytes().strip()
        if len(data) >= MIN_SECRET_BYTES:
            return data
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret, once it is written
        deadline = time.monotonic() + 2.0
        data = path.read_bytes().strip()
        while len(data) < MIN_SECRET_BYTES and time.monotonic() < deadline:
            time.sleep(0.02)
            data = path.read_bytes().strip()
        return data
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    return value


@dataclass(frozen=True)
class Session:
    """A verified session token: which key, until when."""

    token: str
    key_id: int
    expires: int
    #: The random part of the token, under which its end is recorded.
    nonce: str = ""
    #: The audit row of its login (0 for a token made without one): where to look for its end.
    start_id: int = 0


class ConsoleSigner:
    """Signs and checks session tokens and CSRF tokens with the home's secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, message: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{message}".encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: int, now: float | None = None, start_id: int = 0) -> str:
        """A new session token ``<key id>.<expiry>.<login row>-<nonce>.<mac>`` (no key material in it)."""
        expires = int(now if now is not None else time.time()) + SESSION_SECONDS
        body = f"{key_id}.{expires}.{int(start_id)}-{secrets.token_hex(12)}"
        return f"{body}.{self._mac('session', body)}"

    def verify(self, token: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds, or None when it is missing, forged, malformed or expired."""
        if not token or len(token) > 256:
            return None
        body, _, mac = token.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        parts = body.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        expires = int(parts[1])
        if expires < int(now if now is not None else time.time()):
            return None
        start, _, _ = parts[2].partition("-")
        return Session(token, int(parts[0]), expires, parts[2], int(start) if start.isdigit() else 0)

    def csrf_token(self, session_token: str) -> str:
        return self._mac("csrf", session_token)

    def check_csrf(self, session_token: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf_token(session_token))

    def login_csrf(self, login_nonce: str) -> str:
        return self._mac("login", login_nonce)

    def check_login_csrf(self, login_nonce: str | None, given: str | None) -> bool:
        return bool(login_nonce and given) and hmac.compare_digest(
            str(given), self.login_csrf(str(login_nonce))
        )


def principal_from_key_id(db: Database, key_id: int) -> Principal | None:
    """The principal of a live (not revoked) key, looked up by id as a session refers to it."""
    with db.session() as sess:
        key = sess.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked.is_(False)))
        if key is None:
            return None
        tenant = sess.get(Tenant, key.tenant_id) if key.tenant_id else None
        return Principal(key.id, key.role, key.tenant_id, tenant.name if tenant else None)


def start_session(db: Database, key_id: int, actor: str) -> int:
    """Record a console login; the row's id goes into the session token."""
    with db.session() as sess:
        row = AuditLog(actor=actor, action="session.start", object_type="session", object_id=None, detail={})
        sess.add(row)
        sess.flush()
        return int(row.id)


def end_session(db: Database, session: Session, actor: str) -> None:
    """Record a logout: from now on no request is served with this session's token."""
    with db.session() as sess:
        sess.add(
            AuditLog(
                actor=actor,
                action="session.end",
                object_type="session",
                object_id=session.nonce[:64],
                detail={"login": session.start_id},
            )
        )


def session_ended(db: Database, session: Session) -> bool:
    """Whether this session was logged out (only audit rows written since its login are looked at)."""
    with db.session() as sess:
        found = sess.scalar(
            select(AuditLog.id)
            .where(
                AuditLog.id > session.start_id,
                AuditLog.action == "session.end",
                AuditLog.object_type == "session",
                AuditLog.object_id == session.nonce[:64],
            )
            .limit(1)
        )
        return found is not None
