"""The domain model: tenants and what they watch, sources and what was crawled, alerts and deliveries.

Why these shapes: registered data is stored only as keyed hashes with the company's opaque record
key; an alert is one row per (tenant, leak) that later sightings join; deliveries are the outbox rows
written in the posting's transaction, so nothing is lost between "found" and "delivered".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    case,
    event,
    exists,
    func,
    select,
)
from sqlalchemy.ext.hybrid import Comparator, hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from core.secretbox import box_for

__all__ = [
    "SEVERITIES",
    "Alert",
    "ApiKey",
    "AuditLog",
    "Base",
    "CrawlJob",
    "Delivery",
    "Finding",
    "OperatorEvent",
    "Posting",
    "PostingBand",
    "PostingText",
    "RecordHash",
    "Sighting",
    "Source",
    "Subscription",
    "Suppression",
    "Tenant",
    "WatchItem",
    "month_of",
    "utcnow",
]

SEVERITIES = ("low", "medium", "high", "critical")
ALERT_STATUSES = ("new", "acked", "resolved", "false_positive")


def utcnow() -> datetime:
    return datetime.now(UTC)


def month_of(when: datetime) -> date:
    """The first day of ``when``'s month in UTC: a posting text's ``retain_month``."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return date(when.year, when.month, 1)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class EncryptedText(TypeDecorator[str]):
    """A secret stored sealed (core.secretbox) and read back in clear, transparently.

    Why a column type: every reader and writer (actions, API, notify task, crawler) keeps handling plain
    strings, and no code path can write a secret in clear by forgetting a call. The key is the one bound
    to the engine by ``open_database``. Sealing is randomised: never compare these columns in SQL.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return box_for(dialect).seal(value)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return box_for(dialect).open(str(value))


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    watch_items: Mapped[list[WatchItem]] = relationship(back_populates="tenant", cascade="all, delete-orphan")


class ApiKey(Base):
    """API keys are stored as SHA-256 digests; the clear key is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))  # operator, analyst, tenant_admin, tenant_viewer
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class WatchItem(Base):
    __tablename__ = "watch_items"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "value", name="uq_watch_tenant_kind_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # records, domain, keyword, regex, document
    #: The domain, keyword or regex; for records and documents a digest of what was registered.
    value: Mapped[str] = mapped_column(String(512))
    name: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tenant: Mapped[Tenant] = relationship(back_populates="watch_items")


class RecordHash(Base):
    """One keyed hash of one field of one registered record."""

    __tablename__ = "record_hashes"
    __table_args__ = (
        Index("ix_record_hashes_hash", "hash"),
        UniqueConstraint("tenant_id", "record_key", "field_type", "hash", name="uq_record_field_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watch_items.id", ondelete="CASCADE"), index=True)
    record_key: Mapped[str] = mapped_column(String(256))
    field_type: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    schedule: Mapped[str | None] = mapped_column(String(128))  # "every 5m" or "cron */5 * * * *"
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    render: Mapped[bool] = mapped_column(Boolean, default=False)
    #: May carry credentials (http://user:pass@proxy): sealed at rest.
    proxy: Mapped[str | None] = mapped_column(EncryptedText())
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_run: Mapped[datetime | None] = mapped_column()
    last_status: Mapped[str | None] = mapped_column(String(32))
    last_success: Mapped[datetime | None] = mapped_column()
    #: healthy, unhealthy (see crawlers.health), or unknown before the first run.
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_reason: Mapped[str | None] = mapped_column(String(256))
    failures_in_row: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlJob(Base):
    __tablename__ = "crawl_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, ok, failed
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (UniqueConstraint("source_id", "url", name="uq_posting_source_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(512))
    author: Mapped[str | None] = mapped_column(String(256))
    published: Mapped[datetime | None] = mapped_column()
    fetched: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: SHA-256 of the normalised text: the exact-duplicate fingerprint.
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: 64-bit SimHash of the text's shingles: the near-duplicate fingerprint.
    simhash: Mapped[int | None] = mapped_column(BigInteger)
    #: SHA-256 of the raw bytes; the evidence file is stored under that name.
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    #: Keyed hashes of every candidate found, so newly registered records are matched retroactively.
    candidate_hashes: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The text lives in ``posting_texts`` (see PostingText); loaded with the posting, one query per batch.
    text_row: Mapped[PostingText | None] = relationship(
        back_populates="posting", lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )

    @hybrid_property
    def text(self) -> str:
        """The posting's text; "" once ``purge`` deleted it (or for a posting stored without text)."""
        row = self.text_row
        return row.text if row is not None else ""

    @text.inplace.setter
    def _text_setter(self, value: str) -> None:
        if not value:
            self.text_row = None  # delete-orphan: no row is an empty text
        elif self.text_row is None:
            self.text_row = PostingText(text=value)
        else:
            self.text_row.text = value

    @text.inplace.comparator
    @classmethod
    def _text_comparator(cls) -> _TextComparator:
        stored = (
            select(PostingText.text)
            .where(PostingText.posting_id == cls.id)
            .correlate_except(PostingText)
            .scalar_subquery()
        )
        # The CASE names postings.id outside the subquery, so ``select(Posting.text)`` alone reads FROM
        # postings (a scalar subquery does not bring its correlated table into the enclosing FROM).
        return _TextComparator(case((cls.id.is_(None), ""), else_=func.coalesce(stored, "")).label("text"))


class _TextComparator(Comparator[str]):
    """``Posting.text`` in SQL: a correlated subquery on ``posting_texts``; ``Posting.text != ""`` (kept)
    and ``== ""`` (purged) become an EXISTS / NOT EXISTS, which databases run as a semi-join."""

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        if (
            op in (operators.eq, operators.ne)
            and len(other) == 1
            and isinstance(other[0], str)
            and not other[0]
        ):
            stored = exists().where(PostingText.posting_id == Posting.id).correlate_except(PostingText)
            # postings.id outside the EXISTS puts postings in the enclosing FROM (see Posting.text)
            return and_(Posting.id.is_not(None), stored if op is operators.ne else ~stored)
        return op(self.expression, *other, **kwargs)


#: ``retain_month`` of the text of a posting an alert holds: past every month, never dropped by month.
HELD_MONTH = date(9999, 1, 1)


class PostingText(Base):
    """A posting's text, apart from its row: what retention deletes (the row stays, see
    leaksentinel.actions.retention).

    Why a table of its own: on PostgreSQL it is range-partitioned by ``retain_month`` (the month the posting
    was fetched, or HELD_MONTH once an alert holds it), so a purge drops a whole month's partition instead of
    updating millions of rows and leaving the table to vacuum; the partitions are created and dropped by
    ``leaksentinel.actions.retention`` (migration 0011 creates the table). On SQLite it is a plain table.
    The partition key is part of the primary key (PostgreSQL requires it); a posting has one row at most.
    """

    __tablename__ = "posting_texts"
    __table_args__ = {"postgresql_partition_by": "RANGE (retain_month)"}

    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id", ondelete="CASCADE"), primary_key=True)
    retain_month: Mapped[date] = mapped_column(Date, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    #: The HTTP exchange the posting was read from (core.fetch_record), kept and purged with its text: a row
    #: in the transaction that stores the posting costs far less than a file of its own per posting.
    #: Deferred: loading a posting (reindex, the API, retro-match) does not read it; the evidence package and
    #: purge ask for it.
    fetch_record: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, deferred=True)
    posting: Mapped[Posting] = relationship(back_populates="text_row", lazy="select")


@event.listens_for(PostingText, "before_insert")
def _retain_month(_mapper: Any, _conn: Any, row: PostingText) -> None:
    """A new text is kept with its posting's month (the posting is inserted first, its fetched set)."""
    if row.retain_month is None:
        fetched = row.posting.fetched if row.posting is not None else None
        row.retain_month = month_of(fetched or utcnow())


class Finding(Base):
    __tablename__ = "findings"
    #: Which of an alert's records the tenant saw before (pipelines.store): without it, every finding of
    #: the tenant was read for each new alert.
    __table_args__ = (Index("ix_findings_tenant_record", "tenant_id", "record_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    record_key: Mapped[str | None] = mapped_column(String(256))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    watch: Mapped[str | None] = mapped_column(String(512))
    watch_id: Mapped[int | None] = mapped_column(Integer)
    overlap: Mapped[float | None] = mapped_column(Float)
    line: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    masked: Mapped[str | None] = mapped_column(String(256))
    #: For a look-alike finding: how the domain was twisted (typo, homoglyph, idn-homoglyph, bitsquatting...).
    technique: Mapped[str | None] = mapped_column(String(32))


class Alert(Base):
    """One alert per (tenant, leak); reposts join it as sightings."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("tenant_id", "posting_id", name="uq_alert_tenant_posting"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    #: The first posting of the leak.
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id", ondelete="CASCADE"), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="new")
    kinds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    records: Mapped[int] = mapped_column(Integer, default=0)
    new_records: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    #: Who on the security team owns the alert (free text: a name or an email).
    assignee: Mapped[str | None] = mapped_column(String(128))
    #: Why the last status change was made (required for false positive and resolved).
    status_reason: Mapped[str | None] = mapped_column(Text)

    tenant: Mapped[Tenant] = relationship()
    posting: Mapped[Posting] = relationship()
    sightings: Mapped[list[Sighting]] = relationship(
        back_populates="alert", order_by="Sighting.id", cascade="all, delete-orphan"
    )


class Sighting(Base):
    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("alert_id", "posting_id", name="uq_sighting_alert_posting"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    #: Indexed: a repost finds the tenant's alert through its earlier copies' sightings (pipelines.store).
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="sightings")


class AlertEvent(Base):
    """One entry of an alert's timeline: a status change, an assignment or a note, with actor and time."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    #: status, assign, note
    action: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(128))
    new_value: Mapped[str | None] = mapped_column(String(128))
    #: The reason of a status change, or a note's text.
    text: Mapped[str | None] = mapped_column(Text)


class SavedQuery(Base):
    """An analyst's named search (query text plus filters), listed on the search landing page."""

    __tablename__ = "saved_queries"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_saved_query_owner_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    query: Mapped[str] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # webhook, email, slack
    target: Mapped[str] = mapped_column(String(2048))
    #: The webhook signing secret, sealed at rest (a copied database must not let anyone forge alerts).
    secret: Mapped[str | None] = mapped_column(EncryptedText())
    min_severity: Mapped[str] = mapped_column(String(16), default="low")
    #: Finding kinds to deliver (None: all).
    kinds: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    #: None: one message per alert; "hourly" or "daily": a digest per period instead.
    digest: Mapped[str | None] = mapped_column(String(8), nullable=True)
    last_digest_to: Mapped[datetime | None] = mapped_column(nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """The outbox: one row per (alert event, subscription), written with the alert."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(  # None: a digest
        ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    #: The idempotency key, stable across retries (X-Leaksentinel-Event-Id).
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(32), default="alert.created")
    #: The event itself when it is not rebuilt from an alert (digests).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, queued, sent, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column()
    #: When the retry after a failed attempt is due (alerting.backoff); the relay waits for it.
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column()


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PostingBand(Base):
    """One 16-bit band of a posting's SimHash: near duplicates share a band, so finding them is an
    indexed lookup, not a scan of every posting."""

    __tablename__ = "posting_bands"
    __table_args__ = (Index("ix_posting_bands_band_value", "band", "value"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id", ondelete="CASCADE"), index=True)
    band: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(Integer)


class OperatorEvent(Base):
    """An event for the operators (a source turned unhealthy or recovered): an outbox of its own,
    delivered by the relay to the operator channels from the settings."""

    __tablename__ = "operator_events"
    __table_args__ = (Index("ix_operator_events_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))  # source.unhealthy, source.recovered
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: pending, queued, sent, dead, or unrouted (no operator channel configured)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The same outbox bookkeeping as deliveries (alerting.outbox): handed to the broker, next retry due.
    queued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Suppression(Base):
    """A finding marked false positive: the same watch item on the same content is not reported again."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_suppression_tenant_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(80))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentSetting(Base):
    """Facts every machine of a deployment must agree on, recorded by the first one to open the database.

    Why: a machine with its own ``hash.key`` matches nothing it crawls; the recorded key fingerprint lets
    every other machine (and ``/readyz``) see the mismatch instead of silently missing leaks."""

    __tablename__ = "deployment_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
