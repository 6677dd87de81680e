"""Prepared statements run on the transaction's DBAPI cursor, compiled once per dialect by SQLAlchemy.

Why: through ``Connection.execute`` a cached Core statement costs ~40-50 µs of CPU (execution context,
parameter construction, result wrapping, events); the sqlite3 cursor runs it in ~2 µs, and storing a
posting runs a dozen (pipelines.store). Nothing here is hand-written SQL or hand-formatted values: the
SQL text and the parameter order come from SQLAlchemy's compiler for the connection's dialect, and every
value goes through the column type's own bind processor (UTCDateTime as SQLite's DateTime text, JSON,
dates, bytes) and every result through its result processor, so the rows are the ones
``Connection.execute`` writes (tests/pipelines/test_pipelines_store_fast.py stores the same postings
both ways, on SQLite and PostgreSQL, and compares every column).

Python-side column defaults of an INSERT's other columns (``default=utcnow``, ``default="pending"``) are
filled in here per row, from the column's own default, as SQLAlchemy does for such an insert.

What it does not do, by design:
- expanding IN parameters: such statements stay on SQLAlchemy;
- other drivers than pysqlite and psycopg: the statement runs through SQLAlchemy (``Connection.execute``).

It runs in the connection's current transaction (the caller has begun it: ``Session.connection()``).
A DBAPI error is handed to SQLAlchemy's own error handling (the connection's ``_handle_dbapi_exception``),
so callers see SQLAlchemy's IntegrityError / OperationalError and a lost connection is invalidated, as
before (core.db.retry_transient relies on both).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import SelectBase

__all__ = ["FAST_DRIVERS", "Prepared", "set_enabled"]

#: (dialect, driver) pairs run on the DBAPI cursor; anything else goes through SQLAlchemy.
FAST_DRIVERS = frozenset({("sqlite", "pysqlite"), ("postgresql", "psycopg")})

_enabled = True


def set_enabled(on: bool) -> bool:
    """Tests only: run every Prepared through SQLAlchemy (False), the reference the fast path must equal.
    Returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, on
    return previous


Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Plan:
    """One statement compiled for one dialect."""

    sql: str
    #: (name in the SQL, parameter key, bind processor, None) for a parameter, or (name, None, None,
    #: processed value) for a bind that carries its value (a literal, a LIMIT)
    slots: tuple[tuple[str, str | None, Processor | None, Any], ...]
    positional: bool
    results: tuple[Processor | None, ...]
    #: PostgreSQL: the INSERT returns the new id (SQLite: the cursor's lastrowid).
    returns_id: bool
    #: an INSERT's columns with a Python-side default the caller does not give: (key, ColumnDefault)
    defaults: tuple[tuple[str, Any], ...]

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self.defaults:
            params = {**params, **{k: d.arg if d.is_scalar else d.arg(None) for k, d in self.defaults}}
        values = [
            const if key is None else (proc(params[key]) if proc is not None else params[key])
            for _, key, proc, const in self.slots
        ]
        if self.positional:
            return tuple(values)
        return {name: value for (name, _, _, _), value in zip(self.slots, values, strict=True)}

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self.results:  # a text() statement: no typed columns, the values as the driver gives them
            return tuple(raw)
        return tuple(v if p is None else p(v) for p, v in zip(self.results, raw, strict=True))


def _compile(stmt: Any, columns: Sequence[str], returning_id: bool, dialect: Dialect) -> _Plan:
    returns_id = returning_id and dialect.name == "postgresql"
    if returns_id:
        assert isinstance(stmt, Insert)
        stmt = stmt.returning(*stmt.table.primary_key)
    defaults: list[tuple[str, Any]] = []
    if isinstance(stmt, Insert):
        for column in stmt.table.columns:
            default = column.default
            if column.key in columns or default is None:
                continue
            if not (default.is_scalar or default.is_callable):
                raise ValueError(f"column {column.key}: only scalar and callable defaults are filled in")
            defaults.append((column.key, default))
    keys = [*columns, *(k for k, _ in defaults)]
    compiled: Any = stmt.compile(dialect=dialect, column_keys=keys or None)
    if compiled.insert_prefetch or compiled.update_prefetch:
        names = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise ValueError(f"give every column with a Python-side default explicitly: {names}")
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("expanding / literal_execute parameters: run this statement through SQLAlchemy")
    by_name = {name: bp for bp, name in compiled.bind_names.items()}
    order = compiled.positiontup if compiled.positional else list(by_name)
    escaped = compiled.escaped_bind_names or {}
    slots = []
    for name in order:
        bp = by_name[name]
        proc = bp.type.dialect_impl(dialect).bind_processor(dialect)
        if bp.required:
            slots.append((escaped.get(name, name), bp.key, proc, None))
        else:
            value = bp.effective_value
            slots.append((escaped.get(name, name), None, None, proc(value) if proc is not None else value))
    results: tuple[Processor | None, ...] = ()
    if isinstance(stmt, SelectBase) or returns_id:
        columns_out = stmt.selected_columns if isinstance(stmt, SelectBase) else list(stmt.table.primary_key)
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns_out)
    return _Plan(
        compiled.string, tuple(slots), bool(compiled.positional), results, returns_id, tuple(defaults)
    )


class Prepared:
    """A Core statement run on the DBAPI cursor of the connection's transaction (see the module)."""

    def __init__(self, stmt: Executable, columns: Sequence[str] = (), *, returning_id: bool = False):
        """``columns``: the columns an INSERT is given (the others' Python-side defaults are filled in);
        ``returning_id``: ``insert`` returns the new row's id."""
        self.stmt: Any = stmt  # an Executable (typed Any: Connection.execute's overloads want more)
        self.columns = tuple(columns)
        self.returning_id = returning_id
        self._plans: weakref.WeakKeyDictionary[Dialect, _Plan | None] = weakref.WeakKeyDictionary()

    def _plan(self, conn: Connection) -> _Plan | None:
        if not _enabled:
            return None
        dialect = conn.dialect
        try:
            return self._plans[dialect]
        except KeyError:
            fast = (dialect.name, dialect.driver) in FAST_DRIVERS
            plan = _compile(self.stmt, self.columns, self.returning_id, dialect) if fast else None
            self._plans[dialect] = plan
            return plan

    def _run(self, conn: Connection, plan: _Plan, params: Any, many: bool = False) -> Any:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(plan.sql, params)
            else:
                cursor.execute(plan.sql, params)
        except Exception as exc:
            cursor.close()
            conn._handle_dbapi_exception(exc, plan.sql, params, cursor, None)
        return cursor

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        plan = self._plan(conn)
        if plan is None:
            conn.execute(self.stmt, dict(params))
            return
        self._run(conn, plan, plan.bind(params)).close()

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        plan = self._plan(conn)
        if plan is None:
            conn.execute(self.stmt, [dict(r) for r in rows])
            return
        self._run(conn, plan, [plan.bind(r) for r in rows], many=True).close()

    def insert(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Insert one row; its new id."""
        plan = self._plan(conn)
        if plan is None:
            key = conn.execute(self.stmt, dict(params)).inserted_primary_key
            assert key is not None  # a single-row insert always reports its key
            return int(key[0])
        cursor = self._run(conn, plan, plan.bind(params))
        try:
            new_id = plan.row(cursor.fetchone())[0] if plan.returns_id else cursor.lastrowid
        finally:
            cursor.close()
        return int(new_id)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        plan = self._plan(conn)
        if plan is None:
            return [tuple(r) for r in conn.execute(self.stmt, dict(params))]
        cursor = self._run(conn, plan, plan.bind(params))
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        return [plan.row(r) for r in fetched]

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        plan = self._plan(conn)
        if plan is None:
            return conn.scalar(self.stmt, dict(params))
        cursor = self._run(conn, plan, plan.bind(params))
        try:
            first = cursor.fetchone()
        finally:
            cursor.close()
        return None if first is None else plan.row(first)[0]
