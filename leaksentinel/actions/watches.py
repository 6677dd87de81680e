"""Watch items: registered records (as keyed hashes), domains, and later keywords, regexes, documents.

Why streamed: a company registers millions of records; the JSON Lines file is read line by line and
inserted in batches, so memory stays flat, and re-registering the same records changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.canonical import FIELD_TYPES
from core.db import Database
from core.errors import BadInput, NotFound
from core.hashing import SCHEME_VERSION
from core.models import AuditLog, RecordHash, WatchItem
from core.settings import Settings
from leaksentinel.actions.naming import check_no_controls, get_by_id
from leaksentinel.actions.tenants import check_domain, check_region, tenant_by_id
from pipelines.detection.documents import read_document_fingerprint
from pipelines.detection.index import MatchIndex, prefixes_of
from pipelines.detection.keywords import normalize_keyword
from pipelines.detection.regexes import compile_watch_regex
from pipelines.detection.yara_watch import read_rules
from pipelines.retro import hunt_state, mark_hunt_queued, retro_match, yara_retro_hunt

__all__ = [
    "add_document_watch",
    "add_domain_watch",
    "add_keyword_watch",
    "add_records",
    "add_regex_watch",
    "add_yara_watch",
    "hunt_watch",
    "list_watches",
    "parse_record_lines",
    "remove_watch",
    "start_retro_hunt",
]

log = logging.getLogger(__name__)
#: The worker task that hunts (named, not imported: the command line does not load the worker's modules).
HUNT_TASK = "pipelines.yara_retro_hunt"
#: How long sending the hunt to a broker may take before it is run here instead.
BROKER_CONNECT_S = 3.0

_HEX = re.compile(r"^[0-9a-f]{16,128}$")
BATCH = 2000


def parse_record_lines(lines: Iterable[str], origin: str) -> Iterator[tuple[str, str, str, int, str | None]]:
    """Validate `leaksentinel hash` output; yields (record_key, field_type, hash, version, region)."""
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise BadInput(
                f"{origin}:{number}: not a JSON object (expected `leaksentinel hash` output)"
            ) from None
        except RecursionError:  # `hash` output is flat: deep nesting is hostile, not a record
            raise BadInput(
                f"{origin}:{number}: JSON nested too deeply (expected `leaksentinel hash` output)"
            ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("fields"), dict) or "record_key" not in obj:
            raise BadInput(f'{origin}:{number}: expected {{"record_key", "fields", "v"}}')
        version = obj.get("v", SCHEME_VERSION)
        if version != SCHEME_VERSION:
            raise BadInput(
                f"{origin}:{number}: hash scheme v{version} is not this deployment's v{SCHEME_VERSION}"
            )
        region = obj.get("region")
        if region is not None:
            region = check_region(str(region))
        key = str(obj["record_key"])
        if not key or len(key) > 256:
            raise BadInput(f"{origin}:{number}: record_key must be 1 to 256 characters")
        check_no_controls(key, f"{origin}:{number}: record_key")
        for field_type, value in obj["fields"].items():
            if field_type not in FIELD_TYPES:
                raise BadInput(f"{origin}:{number}: unknown field type {field_type!r}")
            for digest in value if isinstance(value, list) else [value]:
                if not isinstance(digest, str) or not _HEX.match(digest):
                    raise BadInput(f"{origin}:{number}: field {field_type} is not a hex hash")
                yield key, field_type, digest, int(version), region


def _insert_ignore(sess: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = sess.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(RecordHash).values(rows).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(RecordHash).values(rows).on_conflict_do_nothing()
    sess.execute(stmt)


def _watch(
    sess: Session, tenant_id: int, kind: str, value: str, name: str | None = None
) -> tuple[WatchItem, bool]:
    item = sess.scalar(
        select(WatchItem).where(
            WatchItem.tenant_id == tenant_id, WatchItem.kind == kind, WatchItem.value == value
        )
    )
    if item is not None:
        return item, False
    item = WatchItem(tenant_id=tenant_id, kind=kind, value=value, name=name, data={})
    sess.add(item)
    sess.flush()
    return item, True


def add_records(
    db: Database,
    tenant_id: int,
    path: Path | str,
    stream: IO[str] | None = None,
    actor: str = "cli",
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Register `leaksentinel hash` output. Validates the whole file first, so bad input changes nothing."""
    origin = str(path)
    if stream is None:
        try:
            with open(path, encoding="utf-8") as check:
                for _ in parse_record_lines(check, origin):
                    pass
        except FileNotFoundError:
            raise BadInput(f"no such file: {path}") from None
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not UTF-8 text") from None
    with db.session() as sess:
        tenant_id = tenant_by_id(sess, tenant_id).id
        item, _ = _watch(sess, tenant_id, "records", "records", "registered records")
        watch_id = item.id
    regions: set[str] = set()
    records: set[str] = set()
    prefixes: list[np.ndarray] = []
    hashes = 0
    fh: IO[str] = stream or open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        batch: list[dict[str, Any]] = []
        for key, field_type, digest, version, region in parse_record_lines(fh, origin):
            records.add(key)
            hashes += 1
            if region:
                regions.add(region)
            batch.append(
                {
                    "tenant_id": tenant_id,
                    "watch_id": watch_id,
                    "record_key": key,
                    "field_type": field_type,
                    "hash": digest,
                    "version": version,
                }
            )
            if len(batch) >= BATCH:
                with db.session() as sess:
                    _insert_ignore(sess, batch)
                prefixes.append(prefixes_of(row["hash"] for row in batch))
                batch = []
        prefixes.append(prefixes_of(row["hash"] for row in batch))
        with db.session() as sess:
            _insert_ignore(sess, batch)
            tenant = tenant_by_id(sess, tenant_id)
            tenant_name = tenant.name
            if regions - set(tenant.regions or []):
                tenant.regions = sorted(set(tenant.regions or []) | regions)
            total = sess.scalar(
                select(func.count()).select_from(RecordHash).where(RecordHash.watch_id == watch_id)
            )
            sess.add(
                AuditLog(
                    actor=actor,
                    action="watch.add",
                    object_type="watch",
                    object_id=str(watch_id),
                    detail={
                        "kind": "records",
                        "records": len(records),
                        "hashes": hashes,
                        "tenant_id": tenant_id,
                    },
                )
            )
    finally:
        if stream is None:
            fh.close()
    out: dict[str, Any] = {
        "id": watch_id,
        "tenant": tenant_name,
        "kind": "records",
        "records": len(records),
        "hashes": hashes,
        "total_hashes": int(total or 0),
        "regions": sorted(regions),
    }
    if settings is not None:
        MatchIndex(settings.index_dir).sync(db)
        new = np.concatenate(prefixes) if prefixes else np.zeros(0, dtype="<u8")
        retro = retro_match(db, settings, tenant_id, new)
        out["retro"] = {"postings": retro.postings, "findings": retro.findings, "alerts": retro.alerts}
    return out


def add_domain_watch(db: Database, tenant_id: int, domain: str, actor: str = "cli") -> dict[str, Any]:
    value = check_domain(domain)
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        item, created = _watch(sess, tenant.id, "domain", value)
        if created:
            sess.add(
                AuditLog(
                    actor=actor,
                    action="watch.add",
                    object_type="watch",
                    object_id=str(item.id),
                    detail={"kind": "domain", "value": value, "tenant_id": tenant.id},
                )
            )
        return {"id": item.id, "tenant": tenant.name, "kind": "domain", "value": value, "created": created}


def _add_simple_watch(
    db: Database, tenant_id: int, kind: str, value: str, name: str | None, data: dict[str, Any], actor: str
) -> dict[str, Any]:
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        item, created = _watch(sess, tenant.id, kind, value, name)
        if created and data:
            item.data = data
        if created:
            sess.add(
                AuditLog(
                    actor=actor,
                    action="watch.add",
                    object_type="watch",
                    object_id=str(item.id),
                    detail={
                        "kind": kind,
                        "value": value if kind != "document" else name,
                        "tenant_id": tenant.id,
                    },
                )
            )
        out: dict[str, Any] = {"id": item.id, "tenant": tenant.name, "kind": kind, "created": created}
        out["value" if kind != "document" else "name"] = value if kind != "document" else name
        return out


def add_keyword_watch(db: Database, tenant_id: int, keyword: str, actor: str = "cli") -> dict[str, Any]:
    """Keywords are stored normalised (NFKC, case-folded), so matching ignores case and CJK width."""
    return _add_simple_watch(db, tenant_id, "keyword", normalize_keyword(keyword), None, {}, actor)


def add_regex_watch(db: Database, tenant_id: int, pattern: str, actor: str = "cli") -> dict[str, Any]:
    """Only RE2 syntax is accepted: matching time stays linear on hostile postings."""
    compile_watch_regex(pattern)
    return _add_simple_watch(db, tenant_id, "regex", pattern, None, {}, actor)


def add_document_watch(
    db: Database, tenant_id: int, path: Path, name: str, actor: str = "cli"
) -> dict[str, Any]:
    """Register a `leaksentinel hash --document` fingerprint (no text of the document is stored)."""
    if not name or len(name) > 128:
        raise BadInput("a document watch needs --name (at most 128 characters)")
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    if len(lines) != 1:
        raise BadInput(f"{path}: expected one JSON line from `leaksentinel hash --document`")
    try:
        obj = json.loads(lines[0])
    except ValueError:
        raise BadInput(f"{path}: not JSON (expected `leaksentinel hash --document` output)") from None
    if not isinstance(obj, dict):
        raise BadInput(f"{path}: expected a JSON object")
    fps = read_document_fingerprint(obj)
    if not obj.get("keyed"):
        raise BadInput(f"{path}: the fingerprint was not made with this deployment's key")
    hexes = sorted(f"{fp:016x}" for fp in fps)
    digest = hashlib.sha256("".join(hexes).encode()).hexdigest()
    out = _add_simple_watch(db, tenant_id, "document", digest, name, {"fingerprints": hexes}, actor)
    out["fingerprints"] = len(hexes)
    return out


def add_yara_watch(
    db: Database,
    tenant_id: int,
    path: Path | str,
    actor: str = "cli",
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Register a YARA rules file: compiled now (errors are bad input); its source is kept in the watch's
    data (the value column holds its SHA-256: rules outgrow it) and compiled again per watch snapshot.

    With ``settings``, a new watch (or one whose last hunt did not finish) is hunted over the stored
    postings (``start_retro_hunt``); its state is ``retro`` in the answer and in ``list_watches``."""
    rules = read_rules(path)
    name = Path(path).name[:128] or "rules.yar"
    check_no_controls(name, "rules file name")
    out = _add_simple_watch(
        db, tenant_id, "yara", rules.digest, name, {"source": rules.source, "rules": list(rules.names)}, actor
    )
    out["name"] = name
    out["rules"] = list(rules.names)
    if settings is not None:
        with db.session() as sess:
            item = sess.get(WatchItem, out["id"])
            state = hunt_state(item.data if item is not None else None)
        if out["created"] or state is None or state.get("status") in ("failed", "interrupted"):
            out["retro"] = start_retro_hunt(db, settings, out["id"], actor=actor)
        else:
            out["retro"] = state
    return out


def _broker_for_hunt(settings: Settings) -> str | None:
    """The broker a worker listens on: the configured Redis, or the embedded one a running ``run`` on
    this home announced; None when there is none (the command line then hunts itself)."""
    from core.celery_app import RUNNING_REDIS_FILE  # lazily: it builds the worker's app on import

    if settings.redis_url:
        return settings.redis_url
    announced = settings.run_dir / RUNNING_REDIS_FILE
    try:
        url = announced.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return url or None


def _send_hunt(settings: Settings, url: str, watch_id: int, token: str) -> bool:
    """Hand the hunt to the broker; False (never an exception) when it cannot be reached in time."""
    from core.celery_app import make_celery

    celery = make_celery(settings, url)
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_CONNECT_S)
            celery.send_task(
                HUNT_TASK,
                args=[watch_id],
                kwargs={"token": token},
                queue="crawl",
                connection=conn,
                retry=False,
            )
        return True
    except Exception as exc:  # broker gone (a stale announcement, a network fault): hunt here instead
        log.warning("retro-hunt not queued (%s): running it here", " ".join(str(exc).split())[:200])
        return False
    finally:
        celery.close()


def start_retro_hunt(
    db: Database, settings: Settings, watch_id: int, *, actor: str = "cli", inline: bool | None = None
) -> dict[str, Any]:
    """Search the stored postings with a YARA watch: on a worker when one can be reached (the answer says
    ``queued``; the watch's state says when it is done), else here, bounded by
    ``yara_retro_inline_seconds`` (the answer is the result). ``inline=True`` always hunts here."""
    url = None if inline else _broker_for_hunt(settings)
    if url is not None:
        token = mark_hunt_queued(db, watch_id)
        if _send_hunt(settings, url, watch_id, token):
            return {"status": "queued", "where": "worker"}
    seconds = min(settings.yara_retro_inline_seconds, settings.yara_retro_seconds)
    result = yara_retro_hunt(db, settings, watch_id, seconds=seconds, actor=actor)
    out = {k: v for k, v in asdict(result).items() if v is not None}
    out["where"] = "here"
    return out


def hunt_watch(
    db: Database, settings: Settings, tenant_id: int, watch_id: str, actor: str = "cli"
) -> dict[str, Any]:
    """Run a YARA watch's retro-hunt again (``watch hunt``): findings stored before are not stored again."""
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        item = get_by_id(sess, WatchItem, watch_id, "watch")
        if item is None or item.tenant_id != tenant.id:
            raise NotFound(f"tenant {tenant.name} has no watch {watch_id}")
        if item.kind != "yara":
            raise BadInput(f"watch {watch_id} is a {item.kind} watch: only YARA watches are hunted")
        wid, tenant_name = item.id, tenant.name
    out = start_retro_hunt(db, settings, wid, actor=actor)
    return {"id": wid, "tenant": tenant_name, "kind": "yara", "retro": out}


def list_watches(db: Database, tenant_id: int) -> list[dict[str, Any]]:
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        out = []
        for item in sess.scalars(
            select(WatchItem).where(WatchItem.tenant_id == tenant.id).order_by(WatchItem.id)
        ):
            row: dict[str, Any] = {
                "id": item.id,
                "tenant": tenant.name,
                "kind": item.kind,
                "value": item.value,
                "name": item.name,
                "created_at": item.created_at.isoformat(),
            }
            if item.kind == "yara":
                row["rules"] = list((item.data or {}).get("rules", []))
                row["retro"] = hunt_state(item.data)
            if item.kind == "records":
                row["hashes"] = int(
                    sess.scalar(
                        select(func.count()).select_from(RecordHash).where(RecordHash.watch_id == item.id)
                    )
                    or 0
                )
                row["records"] = int(
                    sess.scalar(
                        select(func.count(func.distinct(RecordHash.record_key))).where(
                            RecordHash.watch_id == item.id
                        )
                    )
                    or 0
                )
            out.append(row)
        return out


def remove_watch(db: Database, tenant_id: int, watch_id: str, actor: str = "cli") -> dict[str, Any]:
    with db.session() as sess:
        tenant = tenant_by_id(sess, tenant_id)
        item = get_by_id(sess, WatchItem, watch_id, "watch")
        if item is None or item.tenant_id != tenant.id:
            raise NotFound(f"tenant {tenant.name} has no watch {watch_id}")
        sess.execute(delete(RecordHash).where(RecordHash.watch_id == item.id))
        sess.delete(item)
        sess.add(
            AuditLog(
                actor=actor,
                action="watch.remove",
                object_type="watch",
                object_id=str(watch_id),
                detail={"kind": item.kind, "tenant_id": tenant.id},
            )
        )
        return {"id": int(watch_id), "tenant": tenant.name, "removed": True}
