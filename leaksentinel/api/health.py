"""``/healthz`` (the process serves) and ``/readyz`` (it can do its work: database, broker, schema, key).

Why two: an orchestrator restarts a process that is not alive but only takes one out of rotation while it
is not ready; a PostgreSQL outage must not restart every front machine, yet must stop traffic to them.
Each check runs on its own thread with a deadline, so a hung database cannot hang the probe.
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at runtime.
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import core.db
from core.celery_app import RUNNING_REDIS_FILE
from core.db import Database
from core.hashing import load_or_create_key
from core.models import DeploymentSetting
from core.settings import Settings
from leaksentinel.actions.deployment import KEY_SETTING, check_hash_key, key_fingerprint, mismatch_message

__all__ = ["CHECK_TIMEOUT_S", "readiness", "router"]

#: Each check's deadline; the probe answers within about this long whatever hangs.
CHECK_TIMEOUT_S = 3.0

log = logging.getLogger(__name__)
router = APIRouter()
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


def _head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(core.db.__file__).with_name("migrations")))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _read_state(db: Database) -> tuple[str | None, str | None]:
    """The schema revision and the recorded key fingerprint, read outside any transaction.

    Why a raw connection: on SQLite every session begins with the write lock; a probe must not queue
    behind a long write (nor make writers queue behind it)."""
    conn = db.engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute("SELECT version_num FROM alembic_version")
        row = cur.fetchone()
        revision = str(row[0]) if row else None
        recorded: str | None = None
        if revision == _head_revision():
            table = DeploymentSetting.__tablename__
            marker = "?" if db.is_sqlite else "%s"
            cur.execute(f"SELECT value FROM {table} WHERE name = {marker}", (KEY_SETTING,))
            found = cur.fetchone()
            recorded = str(found[0]) if found else None
        cur.close()
        return revision, recorded
    finally:
        conn.close()


def _broker_url(request: Request, settings: Settings) -> str | None:
    """The broker this process uses: its Celery app's, the configured one, or the announced embedded one."""
    celery = getattr(request.app.state, "celery", None)
    if celery is not None and getattr(celery.conf, "broker_url", None):
        return str(celery.conf.broker_url)
    if settings.redis_url:
        return settings.redis_url
    announced = settings.run_dir / RUNNING_REDIS_FILE
    if announced.is_file():
        return announced.read_text(encoding="utf-8").strip() or None
    return None


def _ping(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _describe(what: str, exc: BaseException) -> str:
    """The failure's kind only: the driver's message names hosts and ports (and may hold a URL) and the
    probe answers without a key; the full message goes to the log."""
    log.warning("readyz: %s: %s", what, exc)
    return f"unreachable ({type(exc).__name__})"


def readiness(request: Request) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Every check's result; ready only when all hold (a broker that is not configured is no failure)."""
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    checks: dict[str, dict[str, Any]] = {}
    broker = _broker_url(request, settings)
    state_f = _pool.submit(_read_state, db)
    broker_f = _pool.submit(_ping, broker) if broker else None
    evidence_f = _pool.submit(_evidence_check, settings)
    try:
        revision, recorded = state_f.result(timeout=CHECK_TIMEOUT_S)
    except FutureTimeout:
        checks["database"] = {"ok": False, "detail": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:
        checks["database"] = {"ok": False, "detail": _describe("database", exc)}
    else:
        checks["database"] = {"ok": True, "detail": "reachable"}
        head = _head_revision()
        checks["migrations"] = {
            "ok": revision == head,
            "detail": f"at {revision}"
            if revision == head
            else f"at {revision}, latest is {head}: run a migration",
        }
        if revision == head:
            checks["hash_key"] = _key_check(db, settings, recorded)
    checks.setdefault("migrations", {"ok": False, "detail": "unknown: the database is unreachable"})
    checks.setdefault("hash_key", {"ok": False, "detail": "unknown: the database cannot say"})
    if broker_f is None:
        checks["broker"] = {"ok": True, "detail": "not configured"}
    else:
        checks["broker"] = _outcome(broker_f, "broker", "reachable")
    checks["evidence"] = _outcome(evidence_f, "evidence store", "writable")
    return all(c["ok"] for c in checks.values()), checks


def _outcome(probe: Future[None], what: str, ok_detail: str) -> dict[str, Any]:
    """A probe's check entry: ok, no answer in time, or the failure's kind (``_describe``)."""
    try:
        probe.result(timeout=CHECK_TIMEOUT_S)
    except FutureTimeout:
        return {"ok": False, "detail": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:
        return {"ok": False, "detail": _describe(what, exc)}
    return {"ok": True, "detail": ok_detail}


def _evidence_check(settings: Settings) -> None:
    """The evidence store (directory or bucket) takes a write: without it no crawl can store a posting."""
    from core.evidence_store import open_evidence_store

    open_evidence_store(settings).check()


def _key_check(db: Database, settings: Settings, recorded: str | None) -> dict[str, Any]:
    try:
        if recorded is None:  # nothing recorded yet (an API started before the first run): record ours
            return check_hash_key(db, settings).to_json()
        path = settings.key_path
        mine = key_fingerprint(load_or_create_key(path)) if path.exists() else None
        if mine != recorded:
            return {"ok": False, "detail": mismatch_message(settings, mine, recorded)}
        return {"ok": True, "detail": "matches the deployment's"}
    except Exception as exc:
        return {"ok": False, "detail": _describe("hash key", exc)}


@router.get("/healthz", summary="Alive: 200 while the process serves")
@router.get("/health", summary="Alive (the older name of /healthz)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready: database, broker, schema and hashing key checked",
    responses={503: {"description": "Not ready: a check failed (the body names it)"}},
)
def readyz(request: Request) -> JSONResponse:
    ready, checks = readiness(request)
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
