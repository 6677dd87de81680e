"""seal subscription secrets and source proxies at rest

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:40:00

Why: the database held webhook signing secrets (and proxy credentials) in clear, so a copied database
let anyone forge signed alerts. The columns become unbounded text (a sealed value is longer than the
clear one) and every existing value is sealed with the engine's secrets key (core.secretbox). SQLite
does not enforce VARCHAR lengths, so its tables are left as they are (rebuilding ``sources`` would
cascade into every posting).
"""
from alembic import op
import sqlalchemy as sa

from core.secretbox import box_for, is_sealed


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_COLUMNS = (("subscriptions", "secret", 256), ("sources", "proxy", 2048))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table, column, length in _COLUMNS:
            op.alter_column(table, column, existing_type=sa.String(length=length), type_=sa.Text(),
                            existing_nullable=True)
    for table, column, _ in _COLUMNS:
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
        todo = [(row[0], row[1]) for row in rows if not is_sealed(str(row[1]))]
        if not todo:
            continue
        box = box_for(bind.dialect)
        for row_id, clear in todo:
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                         {"value": box.seal(str(clear)), "id": row_id})


def downgrade() -> None:
    bind = op.get_bind()
    for table, column, _ in _COLUMNS:
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
        sealed = [(row[0], row[1]) for row in rows if is_sealed(str(row[1]))]
        if sealed:
            box = box_for(bind.dialect)
            for row_id, value in sealed:
                bind.execute(sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                             {"value": box.open(str(value)), "id": row_id})
    if bind.dialect.name != "sqlite":
        for table, column, length in _COLUMNS:
            op.alter_column(table, column, existing_type=sa.Text(), type_=sa.String(length=length),
                            existing_nullable=True)
