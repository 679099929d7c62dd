"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 06:19:54.466116
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Initial schema of runtime-core 0.1.0.
    op.create_table('workflow_action_invocations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('idempotency_key', sa.String(length=500), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('step_seq', sa.Integer(), nullable=False),
    sa.Column('step_path', sa.String(length=2000), nullable=False),
    sa.Column('action_id', sa.String(length=200), nullable=False),
    sa.Column('action_version', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('mocked', sa.Boolean(), nullable=False),
    sa.Column('input', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('output', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_action_invocations')),
    sa.UniqueConstraint('tenant', 'idempotency_key', name=op.f('uq_workflow_action_invocations_tenant_idempotency_key'))
    )
    with op.batch_alter_table('workflow_action_invocations', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_action_invocations_run', ['run_id'], unique=False)

    op.create_table('workflow_data_store',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_data_store')),
    sa.UniqueConstraint('tenant', 'key', name=op.f('uq_workflow_data_store_tenant_key'))
    )
    with op.batch_alter_table('workflow_data_store', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_data_store_expires_at', ['expires_at'], unique=False)

    op.create_table('workflow_definition_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition_hash', sa.String(length=64), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('semantics_version', sa.Integer(), nullable=False),
    sa.Column('trigger_type', sa.String(length=32), nullable=True),
    sa.Column('trigger_event_name', sa.String(length=200), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_definition_versions')),
    sa.UniqueConstraint('tenant', 'workflow_id', 'version', name=op.f('uq_workflow_definition_versions_tenant_workflow_id_version'))
    )
    with op.batch_alter_table('workflow_definition_versions', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_definition_versions_trigger', ['tenant', 'trigger_event_name'], unique=False)

    op.create_table('workflow_definitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_definitions')),
    sa.UniqueConstraint('tenant', 'workflow_id', name=op.f('uq_workflow_definitions_tenant_workflow_id'))
    )
    op.create_table('workflow_run_snapshots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('snapshot', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_run_snapshots'))
    )
    with op.batch_alter_table('workflow_run_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_run_snapshots_run', ['tenant', 'run_id'], unique=False)

    op.create_table('workflow_run_steps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.String(length=200), nullable=False),
    sa.Column('step_path', sa.String(length=2000), nullable=False),
    sa.Column('step_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('item_index', sa.Integer(), nullable=True),
    sa.Column('loop_indices', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_run_steps')),
    sa.UniqueConstraint('run_id', 'seq', name=op.f('uq_workflow_run_steps_run_id_seq'))
    )
    with op.batch_alter_table('workflow_run_steps', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_run_steps_tenant_run', ['tenant', 'run_id'], unique=False)

    op.create_table('workflow_run_waits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('step_seq', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.String(length=200), nullable=True),
    sa.Column('wait_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('event_name', sa.String(length=200), nullable=True),
    sa.Column('correlation_key', sa.String(length=500), nullable=True),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_run_waits')),
    sa.UniqueConstraint('run_id', 'seq', name=op.f('uq_workflow_run_waits_run_id_seq'))
    )
    with op.batch_alter_table('workflow_run_waits', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_run_waits_match', ['tenant', 'wait_type', 'event_name', 'correlation_key', 'status'], unique=False)

    op.create_table('workflow_runs',
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('workflow_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('engine', sa.String(length=16), nullable=False),
    sa.Column('temporal_workflow_id', sa.String(length=300), nullable=False),
    sa.Column('temporal_run_id', sa.String(length=64), nullable=True),
    sa.Column('definition_hash', sa.String(length=64), nullable=False),
    sa.Column('semantics_version', sa.Integer(), nullable=False),
    sa.Column('parent_run_id', sa.String(length=64), nullable=True),
    sa.Column('root_run_id', sa.String(length=64), nullable=True),
    sa.Column('input', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('trigger', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_workflow_runs'))
    )
    with op.batch_alter_table('workflow_runs', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_runs_parent', ['parent_run_id'], unique=False)
        batch_op.create_index('ix_workflow_runs_root', ['root_run_id'], unique=False)
        batch_op.create_index('ix_workflow_runs_tenant_status', ['tenant', 'status'], unique=False)

    op.create_table('workflow_runtime_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('event_name', sa.String(length=200), nullable=False),
    sa.Column('correlation_key', sa.String(length=500), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_runtime_events')),
    sa.UniqueConstraint('tenant', 'event_id', name=op.f('uq_workflow_runtime_events_tenant_event_id'))
    )
    with op.batch_alter_table('workflow_runtime_events', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_runtime_events_match', ['tenant', 'event_name', 'correlation_key', 'received_at'], unique=False)

    op.create_table('workflow_task_definitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('task_type', sa.String(length=200), nullable=False),
    sa.Column('form_schema', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_task_definitions')),
    sa.UniqueConstraint('tenant', 'task_type', name=op.f('uq_workflow_task_definitions_tenant_task_type'))
    )
    op.create_table('workflow_tasks',
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('wait_seq', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.String(length=200), nullable=True),
    sa.Column('task_type', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('context_data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('form_schema', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('completed_by', sa.String(length=200), nullable=True),
    sa.Column('admin_override', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('task_id', name=op.f('pk_workflow_tasks'))
    )
    with op.batch_alter_table('workflow_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_tasks_run', ['run_id'], unique=False)
        batch_op.create_index('ix_workflow_tasks_tenant_status', ['tenant', 'status'], unique=False)



def downgrade() -> None:
    # Initial schema of runtime-core 0.1.0.
    with op.batch_alter_table('workflow_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_tasks_tenant_status')
        batch_op.drop_index('ix_workflow_tasks_run')

    op.drop_table('workflow_tasks')
    op.drop_table('workflow_task_definitions')
    with op.batch_alter_table('workflow_runtime_events', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_runtime_events_match')

    op.drop_table('workflow_runtime_events')
    with op.batch_alter_table('workflow_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_runs_tenant_status')
        batch_op.drop_index('ix_workflow_runs_root')
        batch_op.drop_index('ix_workflow_runs_parent')

    op.drop_table('workflow_runs')
    with op.batch_alter_table('workflow_run_waits', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_run_waits_match')

    op.drop_table('workflow_run_waits')
    with op.batch_alter_table('workflow_run_steps', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_run_steps_tenant_run')

    op.drop_table('workflow_run_steps')
    with op.batch_alter_table('workflow_run_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_run_snapshots_run')

    op.drop_table('workflow_run_snapshots')
    op.drop_table('workflow_definitions')
    with op.batch_alter_table('workflow_definition_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_definition_versions_trigger')

    op.drop_table('workflow_definition_versions')
    with op.batch_alter_table('workflow_data_store', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_data_store_expires_at')

    op.drop_table('workflow_data_store')
    with op.batch_alter_table('workflow_action_invocations', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_action_invocations_run')

    op.drop_table('workflow_action_invocations')
