"""Migrations: an empty database upgrades to head on SQLite and PostgreSQL, and matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from runtime_core.persistence import Base, current_revision, head_revision, upgrade

from .conftest import BACKENDS, new_database

EXPECTED_TABLES = {
    "workflow_definitions",
    "workflow_definition_versions",
    "workflow_runs",
    "workflow_run_steps",
    "workflow_run_waits",
    "workflow_action_invocations",
    "workflow_runtime_events",
    "workflow_tasks",
    "workflow_task_definitions",
    "workflow_data_store",
    "workflow_run_snapshots",
}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_empty_database_to_head(backend: str, tmp_path: Path) -> None:
    """Every table exists, every row carries its tenant, the schema equals the models, reruns are no-ops."""
    database = await new_database(backend, tmp_path)
    try:
        assert await current_revision(database) is None
        await upgrade(database)
        assert await current_revision(database) == head_revision()
        await upgrade(database)  # idempotent
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert tables >= EXPECTED_TABLES
            for table in EXPECTED_TABLES:
                columns = await conn.run_sync(lambda c, t=table: {col["name"] for col in inspect(c).get_columns(t)})
                assert "tenant" in columns, table
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        await database.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_idempotency_ledger_is_unique_per_tenant_and_key(backend: str, tmp_path: Path) -> None:
    """The ledger refuses a second row for the same tenant and key, but not for another tenant."""
    from sqlalchemy.exc import IntegrityError

    from runtime_core.persistence import ActionInvocation, utcnow

    database = await new_database(backend, tmp_path)
    await upgrade(database)

    def row(tenant: str) -> ActionInvocation:
        return ActionInvocation(tenant=tenant, idempotency_key="k", run_id="r", step_seq=1, step_path="root.steps[0]", action_id="core.echo", action_version=1, attempt=1, created_at=utcnow())

    try:
        async with database.sessions.begin() as session:
            session.add_all([row("a"), row("b")])
        with pytest.raises(IntegrityError):
            async with database.sessions.begin() as session:
                session.add(row("a"))
    finally:
        await database.dispose()
