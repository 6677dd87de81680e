"""The migrations build exactly the schema the models describe (SQLite and PostgreSQL): a column, index or
constraint added to a model without its migration (or the reverse) fails here, not on a user's upgrade."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import open_database
from core.models import Base
from core.settings import load_settings

#: Tables a backend owns outside the models (the PostgreSQL search index, migration 0009).
NOT_MODELS = frozenset({"search_entries"})


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
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    drift = [d for d in flat if _table_of(d) not in NOT_MODELS]
    assert drift == [], drift
