"""deployment_settings: the hashing key's fingerprint, recorded by the first machine

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:30:00

Why: a machine whose hash.key differs from the deployment's matches nothing it crawls. The first process
to open the database records the key's fingerprint; others compare against it (``/readyz``, ``run``).
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'deployment_settings',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('deployment_settings')
