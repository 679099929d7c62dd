"""durable event delivery: the delivery intent on each event, and one row per delivery

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:15:15.106834
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Events used to be delivered inline by the sender, and a failed or interrupted delivery was
    # lost. Each event now carries its delivery intent (dispatch_status, written with the event)
    # and each delivery (a signal to a waiting run, a triggered start) gets a row that a
    # dispatcher retries until it is done. Events stored before this revision were delivered by
    # the sender, so they start DISPATCHED (the server default). Additive: workers of the
    # previous release keep running while a deployment rolls.
    op.create_table('workflow_event_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_event_deliveries')),
    sa.UniqueConstraint('tenant', 'event_id', 'kind', 'target', name=op.f('uq_workflow_event_deliveries_tenant_event_id_kind_target'))
    )
    with op.batch_alter_table('workflow_event_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_event_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_workflow_event_deliveries_run', ['run_id'], unique=False)

    with op.batch_alter_table('workflow_runtime_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatch_status', sa.String(length=16), server_default='DISPATCHED', nullable=False))
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_workflow_runtime_events_dispatch', ['dispatch_status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('workflow_runtime_events', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_runtime_events_dispatch')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('dispatch_status')

    with op.batch_alter_table('workflow_event_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_event_deliveries_run')
        batch_op.drop_index('ix_workflow_event_deliveries_due')

    op.drop_table('workflow_event_deliveries')
