"""posting_texts.fetch_record: the HTTP exchange of a crawled posting, kept with its text

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 17:40:00

Why: the exchange (status, final URL, sanitised headers, screenshot digest) was a file of its own per posting
(``fetches/<id>.json`` in the evidence store): one more file created per posting (a tenth of a crawl's CPU
beside the text) or one more S3 PUT. As a column of the text's row it is written in the transaction that
stores the posting and purged with the text (a month partition dropped on PostgreSQL). Sidecars written
before stay where they are and are still read and purged (core.fetch_record).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On PostgreSQL the column is added to the partitioned table and so to every partition.
    op.add_column("posting_texts", sa.Column("fetch_record", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("posting_texts", "fetch_record")
