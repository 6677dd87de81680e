"""indexes on findings (tenant_id, record_key) and sightings (posting_id): deciding an alert read tables whole

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 00:15:00

Why: every new alert with record findings asks which of its records the tenant has been alerted on
before (pipelines.store, ``new_records``). With only the tenant's index, that read every finding of the
tenant: 61 ms per alert at 300k findings on SQLite, growing with the database, so crawls slowed as a
deployment aged. With this index it is ~0.1 ms. Likewise a repost looks for the tenant's alert on the
earlier copies through their sightings (54 ms at 100k alerts when the copies had none: ~0.1 ms); the index
also serves the cascade when purge deletes postings. On a large PostgreSQL database the upgrade builds the
indexes before the new version's processes start (CREATE INDEX holds writes to those tables meanwhile).
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_findings_tenant_record", "findings", ["tenant_id", "record_key"])
    op.create_index("ix_sightings_posting_id", "sightings", ["posting_id"])


def downgrade() -> None:
    op.drop_index("ix_sightings_posting_id", table_name="sightings")
    op.drop_index("ix_findings_tenant_record", table_name="findings")
