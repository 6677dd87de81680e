"""triage (assignee, reason, timeline), saved search queries, and the look-alike technique of a finding

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:00:00

Why: a security team triages with a history (who did what, when, why), an analyst keeps the queries
they run every morning, and a look-alike finding says how the domain was twisted (typo, homoglyph...).
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alerts', sa.Column('assignee', sa.String(length=128), nullable=True))
    op.add_column('alerts', sa.Column('status_reason', sa.Text(), nullable=True))
    op.add_column('findings', sa.Column('technique', sa.String(length=32), nullable=True))
    op.create_table(
        'alert_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('old_value', sa.String(length=128), nullable=True),
        sa.Column('new_value', sa.String(length=128), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_events_alert_id', 'alert_events', ['alert_id'])
    op.create_index('ix_alert_events_tenant_id', 'alert_events', ['tenant_id'])
    op.create_table(
        'saved_queries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=128), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('query', sa.Text(), nullable=False),
        sa.Column('filters', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('owner', 'name', name='uq_saved_query_owner_name'),
    )


def downgrade() -> None:
    op.drop_table('saved_queries')
    op.drop_index('ix_alert_events_tenant_id', table_name='alert_events')
    op.drop_index('ix_alert_events_alert_id', table_name='alert_events')
    op.drop_table('alert_events')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_column('technique')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('status_reason')
        batch_op.drop_column('assignee')
