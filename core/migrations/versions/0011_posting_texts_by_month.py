"""posting_texts: the text of each posting moves out of postings, partitioned by month on PostgreSQL

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:45:00

Why: retention (leaksentinel purge) deletes posting text after ``retention_days`` but keeps the rows (ids,
URLs, hashes, candidate hashes serve alerts, reposts and retro-match). Emptying a text column is an UPDATE
of every purged row, which on PostgreSQL leaves as many dead tuples to vacuum. In a table of its own,
range-partitioned by ``retain_month``, a purge drops a month's partition instead (see
leaksentinel.actions.retention for the partitions' upkeep, and why native partitioning, not pg_partman).
On SQLite the table is a plain one and purge deletes rows.

Existing text moves over with its posting's fetch month; on PostgreSQL a partition is made for every such
month, for this month and the next two, a DEFAULT partition catches any other month until purge's upkeep
gives it its own, and a "held" partition (9999-01-01 and after) keeps the texts alerts hold.
"""

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HELD = date(9999, 1, 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _name(month: date) -> str:
    return f"posting_texts_p{month:%Y%m}"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE posting_texts ("
            " posting_id INTEGER NOT NULL,"
            " retain_month DATE NOT NULL,"
            " text TEXT NOT NULL,"
            " CONSTRAINT posting_texts_pkey PRIMARY KEY (posting_id, retain_month),"
            " CONSTRAINT posting_texts_posting_id_fkey FOREIGN KEY (posting_id)"
            " REFERENCES postings (id) ON DELETE CASCADE"
            ") PARTITION BY RANGE (retain_month)"
        )
        op.execute("CREATE TABLE posting_texts_default PARTITION OF posting_texts DEFAULT")
        op.execute(
            f"CREATE TABLE posting_texts_held PARTITION OF posting_texts FOR VALUES FROM ('{HELD}') TO (MAXVALUE)"
        )
        month_sql = "date_trunc('month', fetched AT TIME ZONE 'UTC')::date"
        months = set(
            bind.execute(
                sa.text(f"SELECT DISTINCT {month_sql} FROM postings WHERE coalesce(text, '') <> ''")
            ).scalars()
        )
        now = datetime.now(UTC)
        month = date(now.year, now.month, 1)
        for _ in range(3):
            months.add(month)
            month = _next(month)
        for month in sorted(m for m in months if m < HELD):
            op.execute(
                f"CREATE TABLE {_name(month)} PARTITION OF posting_texts "
                f"FOR VALUES FROM ('{month}') TO ('{_next(month)}')"
            )
        op.execute(
            f"INSERT INTO posting_texts (posting_id, retain_month, text) "
            f"SELECT id, {month_sql}, text FROM postings WHERE coalesce(text, '') <> ''"
        )
        op.execute("ALTER TABLE postings DROP COLUMN text")
        return
    op.create_table(
        "posting_texts",
        sa.Column("posting_id", sa.Integer(), nullable=False),
        sa.Column("retain_month", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["posting_id"], ["postings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("posting_id", "retain_month"),
    )
    op.execute(
        "INSERT INTO posting_texts (posting_id, retain_month, text) "
        "SELECT id, strftime('%Y-%m-01', fetched), text FROM postings WHERE coalesce(text, '') <> ''"
    )
    # Not batch mode: rebuilding postings would drop the old table, and with foreign keys on that cascades
    # into every table referring to it. SQLite drops a column in place since 3.35.
    op.execute("ALTER TABLE postings DROP COLUMN text")


def downgrade() -> None:
    op.execute("ALTER TABLE postings ADD COLUMN text TEXT NOT NULL DEFAULT ''")
    op.execute(
        "UPDATE postings SET text = coalesce("
        "(SELECT t.text FROM posting_texts t WHERE t.posting_id = postings.id LIMIT 1), '')"
    )
    op.drop_table("posting_texts")  # on PostgreSQL its partitions go with it
