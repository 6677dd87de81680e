"""The database on SQLite and PostgreSQL: migrations to head, aware datetimes, constraints."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from core.db import open_database
from core.models import Base, Posting, Source, Tenant
from core.settings import load_settings


@pytest.mark.empty_database  # the migrations themselves build the schema, on PostgreSQL too
def test_migrations_create_every_model_table(database_url: str) -> None:
    db = open_database(load_settings())
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    db.migrate()  # idempotent


def test_datetimes_come_back_timezone_aware(database_url: str) -> None:
    db = open_database(load_settings())
    with db.session() as sess:
        sess.add(Tenant(name="t1", regions=["CN"]))
    with db.session() as sess:
        tenant = sess.scalar(select(Tenant).where(Tenant.name == "t1"))
        assert tenant is not None and tenant.created_at.tzinfo is not None and tenant.regions == ["CN"]


def test_a_posting_url_is_unique_per_source_and_a_failed_unit_changes_nothing(database_url: str) -> None:
    db = open_database(load_settings())
    with db.session() as sess:
        src = Source(name="s", kind="pastebin", url="http://x.example")
        sess.add(src)
        sess.flush()
        sess.add(Posting(source_id=src.id, url="http://x.example/1", content_hash="a" * 64))
    with pytest.raises(IntegrityError), db.session() as sess:
        sess.add(Tenant(name="will-roll-back"))
        sess.add(Posting(source_id=src.id, url="http://x.example/1", content_hash="b" * 64))
    with db.session() as sess:
        assert sess.scalar(select(Tenant).where(Tenant.name == "will-roll-back")) is None
