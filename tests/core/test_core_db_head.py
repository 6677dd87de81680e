"""A database at the newest migration is opened without Alembic; any other is migrated by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

import core.db as core_db
from core.db import HEAD_REVISION, Database


def test_head_revision_is_the_newest_migration() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(core_db.__file__).with_name("migrations")))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION]


def test_a_database_at_head_is_not_handed_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alembic.command

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = Database(url)
    assert not first.at_head()  # a new file: no alembic_version
    first.migrate()
    assert first.at_head()
    first.dispose()

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Alembic ran on a database already at head")

    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    again = Database(url)
    again.migrate()  # would raise if Alembic were asked
    again.dispose()


def test_a_database_behind_head_is_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alembic.command

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = Database(url)
    db.migrate()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0010'")
    assert not db.at_head()
    db.dispose()
    asked: list[str] = []
    monkeypatch.setattr(alembic.command, "upgrade", lambda _cfg, revision: asked.append(revision))
    Database(url).migrate()
    assert asked == ["head"]
