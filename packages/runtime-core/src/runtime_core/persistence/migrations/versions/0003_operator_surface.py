"""operator surface: API tokens, redaction rules, operator actions, replay and launch keys on runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:02:28.483358
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The operator API (issue 11): tenant-scoped tokens stored as hashes, per-tenant redaction
    # rules, the history of operator actions on a run, and on each run the payload exactly as
    # launched (for replay; the existing input column stays the redacted display copy), the
    # launch's idempotency key with a fingerprint of its body, and the run it replays.
    # Additive: workers of the previous release keep running.
    op.create_table('workflow_api_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_api_tokens')),
    sa.UniqueConstraint('tenant', 'name', name=op.f('uq_workflow_api_tokens_tenant_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_workflow_api_tokens_token_hash'))
    )
    op.create_table('workflow_redaction_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('pattern', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_redaction_rules')),
    sa.UniqueConstraint('tenant', 'kind', 'pattern', name=op.f('uq_workflow_redaction_rules_tenant_kind_pattern'))
    )
    op.create_table('workflow_run_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_run_actions'))
    )
    with op.batch_alter_table('workflow_run_actions', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_run_actions_run', ['tenant', 'run_id'], unique=False)

    with op.batch_alter_table('workflow_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('launch_payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('launch_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('launch_fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('replay_of_run_id', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_workflow_runs_tenant_created', ['tenant', 'created_at', 'run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('workflow_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_runs_tenant_created')
        batch_op.drop_column('replay_of_run_id')
        batch_op.drop_column('launch_fingerprint')
        batch_op.drop_column('launch_key')
        batch_op.drop_column('launch_payload')

    with op.batch_alter_table('workflow_run_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_run_actions_run')

    op.drop_table('workflow_run_actions')
    op.drop_table('workflow_redaction_rules')
    op.drop_table('workflow_api_tokens')
