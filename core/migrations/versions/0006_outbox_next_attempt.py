"""one outbox path for deliveries and operator events: queued_at and next_attempt_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 20:00:00

Why: operator events were re-sent on every relay tick (no backoff, dead in seconds) and judged stale by
their creation time. Both outboxes now record when a row was handed to the broker and when its next
retry is due, so the relay republishes only what is really overdue.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('operator_events', sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('operator_events', sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    # Events queued by the previous version: count their wait from when they were raised.
    op.execute("UPDATE operator_events SET queued_at = at WHERE status = 'queued'")


def downgrade() -> None:
    with op.batch_alter_table('operator_events', schema=None) as batch_op:
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('queued_at')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('next_attempt_at')
