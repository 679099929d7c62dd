"""tenant settings: per-tenant retention of ended runs and of the idempotency ledger

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-25 22:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
# Written in parallel with 0004 (schedules): at merge only this line changes, to '0004'.
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Issue 13: the housekeeping workflow's retention. One row per tenant that set one; no row (or
    # a null run_retention_days) keeps runs forever. Additive: workers of the previous release
    # keep running (they never read it).
    op.create_table('workflow_tenant_settings',
    sa.Column('tenant', sa.String(length=128), nullable=False),
    sa.Column('run_retention_days', sa.Integer(), nullable=True),
    sa.Column('ledger_retention_days', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('tenant', name=op.f('pk_workflow_tenant_settings'))
    )


def downgrade() -> None:
    op.drop_table('workflow_tenant_settings')
