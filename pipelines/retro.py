"""Retroactive matching: records registered today are found in postings stored before; a YARA watch
added today is run over the stored postings (the retro-hunt).

Why through the candidate index: only postings that held one of the new hashes are looked at again
(their stored text is re-detected for that tenant), so the cost follows the hits, not the archive.
YARA rules have no such index, so the hunt reads the archive itself: newest first, bounded by postings,
bytes and time (settings ``yara_retro_*``), and idempotent (a finding already stored for the posting,
watch and rule is not stored again), so a hunt run twice, or handed out twice by the broker, raises
no second alert.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.hashing import load_or_create_key
from core.models import (
    SEVERITIES,
    Alert,
    AuditLog,
    Finding,
    Posting,
    Sighting,
    Suppression,
    Tenant,
    WatchItem,
    utcnow,
)
from core.policy import suppression_key, tenant_severity
from core.settings import Settings
from pipelines.detection.candidates import CandidateIndex
from pipelines.detection.engine import Detector, time_budget
from pipelines.detection.engine import Finding as DetectedFinding
from pipelines.detection.lines import Deadline
from pipelines.detection.yara_watch import YaraMatcher
from pipelines.neardup import near_duplicates
from pipelines.store import add_findings, raise_alerts

__all__ = [
    "HuntResult",
    "RetroResult",
    "hunt_state",
    "mark_hunt_queued",
    "retro_match",
    "yara_retro_hunt",
]

log = logging.getLogger(__name__)

MAX_POSTINGS = 50_000


@dataclass(frozen=True)
class RetroResult:
    postings: int
    findings: int
    alerts: int


def retro_match(db: Database, settings: Settings, tenant_id: int, prefixes: np.ndarray) -> RetroResult:
    index = CandidateIndex(settings.index_dir / "candidates")
    index.sync(db)  # what the fleet's other machines stored since this home last looked
    posting_ids = sorted(index.postings_with(prefixes))[:MAX_POSTINGS]
    if not posting_ids:
        return RetroResult(0, 0, 0)
    detector = Detector.from_database(db, load_or_create_key(settings.key_path), settings.index_dir)
    findings_added = alerts_added = 0
    for posting_id in posting_ids:
        with db.session() as sess:
            text = sess.scalar(select(Posting.text).where(Posting.id == posting_id))
        if text is None:
            continue
        # Detect outside the write transaction: the lookup opens its own (SQLite allows one writer).
        found = [f for f in detector.detect(text).findings if f.tenant_id == tenant_id]
        if not found:
            continue
        with db.session() as sess:
            posting = sess.get(Posting, posting_id)
            if posting is None:
                continue
            known = set(
                sess.scalars(
                    select(Finding.record_key).where(
                        Finding.posting_id == posting_id,
                        Finding.tenant_id == tenant_id,
                        Finding.kind == "record",
                    )
                )
            )
            new = [f for f in found if f.kind == "record" and f.record_key not in known]
            if not new:
                continue
            findings_added += len(new)
            alert = sess.scalar(
                select(Alert)
                .join(Sighting, Sighting.alert_id == Alert.id)
                .where(Alert.tenant_id == tenant_id, Sighting.posting_id == posting_id)
                .limit(1)
            )
            if alert is not None:
                add_findings(sess, posting_id, tenant_id, alert.id, new)
                keys = set(
                    sess.scalars(
                        select(Finding.record_key).where(
                            Finding.alert_id == alert.id, Finding.kind == "record"
                        )
                    )
                )
                alert.records = len(keys | {f.record_key for f in new if f.record_key})
                continue
            reposted = near_duplicates(sess, posting.simhash, posting.content_hash, exclude=posting_id)
            alerts_added += raise_alerts(sess, posting, new, reposted)
    return RetroResult(len(posting_ids), findings_added, alerts_added)


# --- YARA retro-hunt -------------------------------------------------------------------------------

#: Postings whose ids are read per query, and whose texts are read per query (bounded in bytes).
HUNT_BATCH = 500
HUNT_CHUNK = 200
HUNT_CHUNK_BYTES = 8_000_000
#: A hunt marked running longer than its time limit plus this is taken to have died with its process.
HUNT_STALE_MARGIN_S = 120.0


@dataclass(frozen=True)
class HuntResult:
    """What one retro-hunt did (kept on the watch as ``data["retro"]`` and in the audit log).

    ``status``: done (every stored posting was searched), limited (a bound was reached: ``limited`` says
    which, the newest postings were searched first), interrupted (its worker stopped), failed, busy
    (another hunt of this watch is running) or removed (the watch is gone)."""

    status: str
    postings: int = 0
    bytes: int = 0
    matches: int = 0
    findings: int = 0
    alerts: int = 0
    limited: str | None = None
    seconds: float = 0.0
    error: str | None = None


def _result(
    status: str,
    counts: dict[str, int],
    *,
    limited: str | None = None,
    seconds: float = 0.0,
    error: str | None = None,
) -> HuntResult:
    return HuntResult(
        status,
        postings=counts["postings"],
        bytes=counts["bytes"],
        matches=counts["matches"],
        findings=counts["findings"],
        alerts=counts["alerts"],
        limited=limited,
        seconds=seconds,
        error=error,
    )


def _now_iso() -> str:
    return utcnow().isoformat(timespec="seconds")


def hunt_state(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The hunt state as users see it (the claim token left out)."""
    state = (data or {}).get("retro")
    if not isinstance(state, dict):
        return None
    return {k: v for k, v in state.items() if k != "token"}


def _update(db: Database, watch_id: int, **fields: Any) -> bool:
    """Merge ``fields`` into the watch's hunt state; False when the watch is gone."""
    with db.session() as sess:
        item = sess.get(WatchItem, watch_id)
        if item is None:
            return False
        data = dict(item.data or {})
        data["retro"] = {**(data.get("retro") or {}), **fields}
        item.data = data  # a new dict: the JSON column sees the change
        return True


def mark_hunt_queued(db: Database, watch_id: int) -> str:
    """Record that a hunt is handed to a worker; returns the token the worker claims it with."""
    token = uuid.uuid4().hex
    with db.session() as sess:
        item = sess.get(WatchItem, watch_id)
        if item is not None:
            data = dict(item.data or {})
            data["retro"] = {"status": "queued", "queued_at": _now_iso(), "token": token}
            item.data = data
    return token


def _claim(db: Database, watch_id: int, token: str | None, seconds: float) -> tuple[str, int] | None:
    """Mark the hunt running unless another one is; returns (status, newest posting id at the start)."""
    with db.session() as sess:
        item = sess.get(WatchItem, watch_id, with_for_update=True)
        if item is None or item.kind != "yara":
            return ("removed", 0)
        state = dict((item.data or {}).get("retro") or {})
        if state.get("status") == "running" and (token is None or state.get("token") != token):
            started = state.get("started_at")
            limit_s = float(state.get("limit_s") or seconds) + HUNT_STALE_MARGIN_S
            try:
                fresh = utcnow() - datetime.fromisoformat(str(started)) < timedelta(seconds=limit_s)
            except ValueError:
                fresh = False
            if fresh:
                return None
        upto = int(sess.scalar(select(func.max(Posting.id))) or 0)
        data = dict(item.data or {})
        data["retro"] = {
            "status": "running",
            **({"queued_at": state["queued_at"]} if state.get("queued_at") else {}),
            "started_at": _now_iso(),
            "limit_s": seconds,
            # a hunt started here gets its own token: a queued message arriving meanwhile finds it busy
            "token": token or uuid.uuid4().hex,
        }
        item.data = data
        return ("running", upto)


def _posting_ids(db: Database, upto: int) -> Iterator[tuple[int, int]]:
    """(id, size) of the stored postings newest first up to ``upto``, then of those stored while the hunt
    ran (oldest first): a crawl that began before the watch existed may store matching postings meanwhile."""
    for newer in (False, True):
        cursor = upto if newer else upto + 1
        while True:
            query = select(Posting.id, Posting.size)
            if newer:
                query = query.where(Posting.id > cursor).order_by(Posting.id)
            else:
                query = query.where(Posting.id < cursor).order_by(Posting.id.desc())
            with db.session() as sess:
                rows = [(int(i), int(size or 0)) for i, size in sess.execute(query.limit(HUNT_BATCH))]
            if not rows:
                break
            yield from rows
            cursor = rows[-1][0]


def _chunks(rows: Iterator[tuple[int, int]]) -> Iterator[list[int]]:
    """Ids grouped so that one query reads their texts: at most HUNT_CHUNK postings or about
    HUNT_CHUNK_BYTES of text (a bigger posting is a chunk alone)."""
    chunk: list[int] = []
    size = 0
    for posting_id, posting_size in rows:
        if chunk and (len(chunk) >= HUNT_CHUNK or size + posting_size > HUNT_CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(posting_id)
        size += posting_size
    if chunk:
        yield chunk


def _store_hits(db: Database, posting_id: int, found: list[DetectedFinding]) -> tuple[int, int]:
    """Store the findings not stored before and raise or join the alert as a crawl would: (findings,
    new alerts)."""
    tenant_id = found[0].tenant_id
    with db.session() as sess:
        posting = sess.get(Posting, posting_id)
        if posting is None:
            return 0, 0
        known = set(
            sess.execute(
                select(Finding.watch_id, Finding.watch).where(
                    Finding.posting_id == posting_id, Finding.tenant_id == tenant_id, Finding.kind == "yara"
                )
            ).tuples()
        )
        new = [f for f in found if (f.watch_id, f.watch) not in known]
        if not new:
            return 0, 0
        alert = sess.scalar(
            select(Alert)
            .join(Sighting, Sighting.alert_id == Alert.id)
            .where(Alert.tenant_id == tenant_id, Sighting.posting_id == posting_id)
            .order_by(Alert.id)
            .limit(1)
        )
        if alert is not None:  # the posting already alerted this tenant (records, keywords...): one alert
            new = _unsilenced(sess, tenant_id, new, posting.content_hash)
            if not new:
                return 0, 0
            add_findings(sess, posting_id, tenant_id, alert.id, new)
            _refresh(sess, alert)
            return len(new), 0
        reposted = near_duplicates(sess, posting.simhash, posting.content_hash, exclude=posting_id)
        created = raise_alerts(sess, posting, new, reposted)
        if not created:
            # joined an earlier sighting's alert (a repost, hunted newest first): keep its last_seen the latest
            joined = sess.scalar(
                select(Alert)
                .join(Sighting, Sighting.alert_id == Alert.id)
                .where(Alert.tenant_id == tenant_id, Sighting.posting_id == posting_id)
                .limit(1)
            )
            if joined is not None:
                sess.flush()
                latest = sess.scalar(select(func.max(Sighting.seen_at)).where(Sighting.alert_id == joined.id))
                if latest is not None:
                    joined.last_seen = latest
                _refresh(sess, joined)
        return len(new), created


def _unsilenced(
    sess: Session, tenant_id: int, found: list[DetectedFinding], content_hash: str
) -> list[DetectedFinding]:
    """Drop findings the tenant marked false positive on this content (as the store does for a crawl)."""
    keys = {suppression_key(f.kind, f.watch_id, f.record_key, content_hash): f for f in found}
    silenced = set(
        sess.scalars(
            select(Suppression.key).where(Suppression.tenant_id == tenant_id, Suppression.key.in_(list(keys)))
        )
    )
    return [f for k, f in keys.items() if k not in silenced]


def _refresh(sess: Session, alert: Alert) -> None:
    """An alert that gained YARA findings: its kinds include ``yara`` and its severity is what the store
    would have given it with them (never lowered)."""
    sess.flush()
    alert.kinds = sorted({*(alert.kinds or []), "yara"})
    severities = list(sess.scalars(select(Finding.severity).where(Finding.alert_id == alert.id)))
    tenant = sess.get(Tenant, alert.tenant_id)
    thresholds = (tenant.settings or {}).get("severity_thresholds") if tenant is not None else None
    computed = tenant_severity(alert.records, alert.new_records, alert.kinds, severities, thresholds)
    if SEVERITIES.index(computed) > SEVERITIES.index(alert.severity):
        alert.severity = computed


class _StopFlag:
    """Set by SIGTERM (a worker stopping) while a hunt runs in the main thread of its process."""

    def __init__(self) -> None:
        self.stopped = False
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():

            def on_term(signum: int, frame: Any) -> None:
                self.stopped = True

            self._previous = signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class _Hunt:
    """One hunt's bounds and counts: ``scan`` reads a posting (or sets ``limited`` and reads nothing),
    ``store`` keeps its findings."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        matcher: YaraMatcher,
        tenant_id: int,
        tenant_name: str,
        watch_id: int,
        overall: Deadline,
        counts: dict[str, int],
        clock: Callable[[], float],
    ) -> None:
        self.db, self.settings, self.matcher = db, settings, matcher
        self.tenant_id, self.tenant_name, self.watch_id = tenant_id, tenant_name, watch_id
        self.overall, self.counts, self.clock = overall, counts, clock
        self.visited: set[int] = set()
        self.limited: str | None = None
        self.texts: dict[int, str | None] = {}

    def prefetch(self, ids: list[int]) -> None:
        """Read the texts of a chunk in one query (a query per posting costs more than YARA does)."""
        todo = [i for i in ids if i not in self.visited]
        self.texts = dict.fromkeys(todo)
        if todo:
            with self.db.session() as sess:
                rows = sess.execute(select(Posting.id, Posting.text).where(Posting.id.in_(todo))).all()
            self.texts.update((int(pid), text) for pid, text in rows)

    def ordered(self, chunks: Iterator[list[int]]) -> Iterator[int]:
        """The postings in hunt order, each chunk's texts read before its first posting is scanned."""
        for chunk in chunks:
            self.prefetch(chunk)
            yield from chunk

    def scan(self, posting_id: int) -> list[DetectedFinding]:
        if self.limited:
            return []
        if self.counts["postings"] >= self.settings.yara_retro_max_postings:
            self.limited = "postings"
            return []
        if self.overall.remaining() < 1.0:
            self.limited = "time"
            return []
        self.visited.add(posting_id)
        if posting_id in self.texts:
            text = self.texts.pop(posting_id)
        else:
            with self.db.session() as sess:
                text = sess.scalar(select(Posting.text).where(Posting.id == posting_id))
        if not text:  # purged: only its hashes are left
            return []
        size = len(text.encode("utf-8", "surrogatepass"))
        if self.counts["bytes"] + size > self.settings.yara_retro_max_bytes:
            self.visited.discard(posting_id)
            self.limited = "bytes"
            return []
        self.counts["postings"] += 1
        self.counts["bytes"] += size
        deadline = Deadline(min(self.overall.at, self.clock() + time_budget(len(text))), self.clock)
        hits = [h for h in self.matcher.find(text, deadline) if h.watch_id == self.watch_id]
        if deadline.exceeded and self.overall.expired():
            self.limited = "time"  # this posting was read only in part: what was found is kept
        if hits:
            self.counts["matches"] += 1
        first: dict[str, int] = {}
        for h in hits:
            first[h.rule] = min(h.line, first.get(h.rule, h.line))
        return [
            DetectedFinding(
                tenant_id=self.tenant_id,
                tenant=self.tenant_name,
                kind="yara",
                watch=rule,
                watch_id=self.watch_id,
                line=line,
                severity="medium",  # as a crawl's YARA finding
            )
            for rule, line in first.items()
        ]

    def store(self, posting_id: int, found: list[DetectedFinding]) -> None:
        if found:
            added, alerts = _store_hits(self.db, posting_id, found)
            self.counts["findings"] += added
            self.counts["alerts"] += alerts


def yara_retro_hunt(
    db: Database,
    settings: Settings,
    watch_id: int,
    *,
    seconds: float | None = None,
    token: str | None = None,
    actor: str = "retro-hunt",
    clock: Callable[[], float] = time.monotonic,
) -> HuntResult:
    """Run one YARA watch over the stored postings, bounded; its state is kept on the watch as it goes,
    and its end is written to the audit log."""
    limit_s = float(settings.yara_retro_seconds if seconds is None else seconds)
    claimed = _claim(db, watch_id, token, limit_s)
    if claimed is None:
        return HuntResult("busy")
    if claimed[0] == "removed":
        return HuntResult("removed")
    upto = claimed[1]
    with db.session() as sess:
        item = sess.get(WatchItem, watch_id)
        if item is None:
            return HuntResult("removed")
        tenant_id, source = item.tenant_id, str((item.data or {}).get("source") or "")
        tenant = sess.get(Tenant, tenant_id)
        tenant_name = tenant.name if tenant is not None else str(tenant_id)
    started = clock()
    overall = Deadline(started + limit_s, clock)
    counts = {"postings": 0, "bytes": 0, "matches": 0, "findings": 0, "alerts": 0}
    limited: str | None = None
    status = "done"
    error: str | None = None
    try:
        matcher = YaraMatcher([(tenant_id, watch_id, source)])
        if not matcher.rules:
            raise ValueError("the stored rules no longer compile")
        hunt = _Hunt(db, settings, matcher, tenant_id, tenant_name, watch_id, overall, counts, clock)
        with _StopFlag() as stop:
            number = 0
            for posting_id in hunt.ordered(_chunks(_posting_ids(db, upto))):
                if stop.stopped:
                    status = "interrupted"
                    break
                number += 1
                if number % HUNT_BATCH == 0 and not _update(db, watch_id, **counts):
                    return _result("removed", counts)
                if posting_id in hunt.visited:
                    continue
                found = hunt.scan(posting_id)
                if found:
                    # A crawl saw the leak's first posting first: the older near-duplicates of this
                    # posting are hunted before it, so the alert stands on the first and the rest join it.
                    with db.session() as sess:
                        posting = sess.get(Posting, posting_id)
                        older = (
                            [
                                i
                                for i in near_duplicates(sess, posting.simhash, posting.content_hash)
                                if i < posting_id and i not in hunt.visited
                            ]
                            if posting is not None
                            else []
                        )
                    for earlier in older:
                        if hunt.limited:
                            break
                        hunt.store(earlier, hunt.scan(earlier))
                    hunt.store(posting_id, found)
                if hunt.limited:
                    break
        limited = hunt.limited
    except Exception as exc:  # recorded on the watch and in the audit log; the service goes on
        status, error = "failed", " ".join(str(exc).split())[:300] or type(exc).__name__
        log.warning("YARA retro-hunt of watch %s failed: %s", watch_id, error)
    if status == "done" and limited:
        status = "limited"
    result = _result(status, counts, limited=limited, seconds=round(clock() - started, 3), error=error)
    state = {k: v for k, v in asdict(result).items() if v is not None}
    if not _update(db, watch_id, **state, finished_at=_now_iso()):
        return _result("removed", counts)
    with db.session() as sess:
        sess.add(
            AuditLog(
                actor=actor,
                action="watch.retro_hunt",
                object_type="watch",
                object_id=str(watch_id),
                detail={"kind": "yara", "tenant_id": tenant_id, **state},
            )
        )
    log.info(
        "YARA retro-hunt of watch %s (%s): %s, %d postings searched, %d matched, %d new alerts",
        watch_id,
        tenant_name,
        result.status,
        result.postings,
        result.matches,
        result.alerts,
    )
    return result
