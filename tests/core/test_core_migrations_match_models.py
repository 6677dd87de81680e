"""The migrations build exactly the schema the models describe (SQLite and PostgreSQL): a column, index or
constraint added to a model without its migration (or the reverse) fails here, not on a user's upgrade."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from core.db import open_database
from core.models import Base
from core.settings import load_settings

#: Tables a backend owns outside the models (the PostgreSQL search index, migration 0009).
NOT_MODELS = frozenset({"search_entries"})

#: Partitioned tables of the models (PostgreSQL): their partitions are not models, the parent is compared.
PARTITIONED = frozenset({"posting_texts"})


def _table_of(diff: tuple) -> str | None:  # type: ignore[type-arg]
    for part in diff[1:]:
        table = getattr(part, "table", None)
        if table is not None and hasattr(table, "name"):
            return str(table.name)
        if hasattr(part, "name") and hasattr(part, "columns") and not hasattr(part, "table"):
            return str(part.name)
    return None


@pytest.mark.empty_database
def test_migrated_schema_equals_the_models(database_url: str) -> None:
    db = open_database(load_settings())
    with db.engine.connect() as conn:
        # SQLite cannot change a column's type in place (migration 0005 sealed secrets in the same columns),
        # so types are compared on PostgreSQL only; names, nullability, indexes and constraints on both.
        opts = {"compare_type": conn.dialect.name != "sqlite"}
        diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        partitions = _partitions(conn)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    drift = [d for d in flat if _table_of(d) not in NOT_MODELS | partitions]
    assert drift == [], drift
    if conn.dialect.name == "postgresql":  # the partitions hang off the parent the model describes
        assert partitions, "posting_texts has no partitions"
        with db.engine.connect() as conn:
            kinds = dict(
                conn.execute(
                    text("SELECT relname, relkind FROM pg_class WHERE relname IN ('posting_texts')")
                ).all()
            )
        assert kinds == {"posting_texts": "p"}  # partitioned, not a plain table


def _partitions(conn: object) -> frozenset[str]:
    """The partitions of the models' partitioned tables (none on SQLite)."""
    if conn.dialect.name != "postgresql":  # type: ignore[attr-defined]
        return frozenset()
    rows = conn.execute(  # type: ignore[attr-defined]
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(:parents)"
        ),
        {"parents": sorted(PARTITIONED)},
    ).scalars()
    return frozenset(rows)
