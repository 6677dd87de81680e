"""search_entries: PostgreSQL full-text search (tsvector + pg_trgm), the fleet's search index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

Why: in a fleet every machine must search every posting; the tantivy index lives in one home. On
PostgreSQL the entries live in the database every machine shares (core.search.pg_backend). On SQLite
nothing is created: the embedded default keeps its tantivy index. No foreign key to postings, so the
postings table may be partitioned; purge deletes the entries itself.

After upgrading a PostgreSQL deployment, run ``leaksentinel reindex`` once to fill the table.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Trusted since PostgreSQL 13 (the database owner may create it); Debian ships it with the server.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "search_entries",
        sa.Column("posting_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("source_kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("published", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, server_default=""),
        sa.Column("title_tokens", sa.Text(), nullable=False, server_default=" "),
        sa.Column("body_tokens", sa.Text(), nullable=False, server_default=" "),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False, server_default=sa.text("''::tsvector")),
        sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("selectors", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")),
        sa.PrimaryKeyConstraint("posting_id"),
    )
    op.create_index("ix_search_entries_tsv", "search_entries", ["tsv"], postgresql_using="gin")
    op.create_index("ix_search_entries_selectors", "search_entries", ["selectors"], postgresql_using="gin")
    for column in ("body_tokens", "title_tokens"):
        op.create_index(
            f"ix_search_entries_{column}_trgm",
            "search_entries",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
    # The rare posting whose tokens overflow the tsvector is found by its token string; this small index
    # keeps that fallback of a one-word query an index scan (without it the OR makes every query scan).
    op.create_index(
        "ix_search_entries_body_tokens_overflow",
        "search_entries",
        ["body_tokens"],
        postgresql_using="gin",
        postgresql_ops={"body_tokens": "gin_trgm_ops"},
        postgresql_where=sa.text("NOT complete"),
    )
    op.create_index("ix_search_entries_source", "search_entries", ["source"])
    op.create_index("ix_search_entries_seen", "search_entries", ["seen"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("search_entries")  # its indexes go with it; pg_trgm stays (others may use it)
