"""Housekeeping: retention per tenant, recorded diagnoses, the workflow end to end on a real worker, its schedule.

Real Temporal dev server, real SQLite and PostgreSQL: each test gets a fresh database of the
stack's backend (so counts are exact) and uses the stack's Temporal client. Rows are written
directly, with their end set back in time, as retention measures age from ``ended_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.worker import Worker

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.config import SETTINGS_DOC, ConfigError, RuntimeSettings
from runtime_core.contract import HOUSEKEEPING_SCHEDULE_ID, HOUSEKEEPING_WORKFLOW
from runtime_core.housekeeping import HousekeepingActivities, HousekeepingWorkflow, ensure_housekeeping_schedule
from runtime_core.operations import Invalid, Operations
from runtime_core.persistence import (
    ActionInvocation,
    Database,
    DataStoreEntry,
    EventDelivery,
    RunAction,
    RunRow,
    RunSnapshot,
    StepRow,
    TaskRow,
    WaitRow,
    upgrade,
    utcnow,
)

from .conftest import ROOT, new_database

DAY = timedelta(days=1)


def _backend(stack: Stack) -> str:
    return "postgres" if stack.database.engine.dialect.name == "postgresql" else "sqlite"


@pytest.fixture
async def fresh(stack: Stack, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database of the stack's backend."""
    database = await new_database(_backend(stack), tmp_path)
    await upgrade(database)
    yield database
    await database.dispose()


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def _run(database: Database, tenant: str, status: str, *, ended_ago: timedelta | None, parent: str | None = None,
               root: str | None = None, started_ago: timedelta = 3 * DAY, projections: bool = False) -> str:
    """A run row (and, with ``projections``, one row of each projection) as the activities would have left it."""
    run_id = uuid.uuid4().hex
    now = utcnow()
    async with database.sessions.begin() as session:
        session.add(RunRow(run_id=run_id, tenant=tenant, workflow_id="wf", workflow_version=1, status=status, temporal_workflow_id=f"gone:{run_id}",
                           definition_hash="h" * 64, semantics_version=1, parent_run_id=parent, root_run_id=root or run_id,
                           created_at=now - started_ago, started_at=now - started_ago,
                           ended_at=None if ended_ago is None else now - ended_ago, updated_at=now - (ended_ago or started_ago)))
        if projections:
            session.add(StepRow(tenant=tenant, run_id=run_id, seq=1, step_id="s", step_path="s", step_type="action.call", status="SUCCEEDED", attempts=1))
            session.add(WaitRow(tenant=tenant, run_id=run_id, seq=1, wait_type="event", status="RESOLVED", event_name="go", created_at=now))
            session.add(TaskRow(task_id=uuid.uuid4().hex, tenant=tenant, run_id=run_id, task_type="approve", title="t", status="COMPLETED", created_at=now))
            session.add(RunSnapshot(tenant=tenant, run_id=run_id, kind="continueAsNew", snapshot={}, taken_at=now))
            session.add(RunAction(tenant=tenant, run_id=run_id, action="cancel", actor="x", reason=None, at=now))
            for status_, kind in (("DELIVERED", "signal"), ("PENDING", "trigger")):
                session.add(EventDelivery(tenant=tenant, event_id=f"e-{run_id}", kind=kind, target=run_id, run_id=run_id, status=status_,
                                          next_attempt_at=now, created_at=now, updated_at=now))
    return run_id


async def _ledger(database: Database, tenant: str, run_id: str, age: timedelta) -> int:
    async with database.sessions.begin() as session:
        row = ActionInvocation(tenant=tenant, idempotency_key=uuid.uuid4().hex, run_id=run_id, step_seq=1, step_path="s", action_id="core.echo",
                               action_version=1, attempt=1, input={}, output={}, created_at=utcnow() - age)
        session.add(row)
        await session.flush()
        return row.id


async def _runs(database: Database, tenant: str) -> set[str]:
    async with database.sessions() as session:
        return set((await session.execute(select(RunRow.run_id).where(RunRow.tenant == tenant))).scalars())


async def _count(database: Database, model: Any, **where: Any) -> int:
    async with database.sessions() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            column = getattr(model, name)
            query = query.where(column.in_(value) if isinstance(value, (list, set)) else column == value)
        return int((await session.execute(query)).scalar_one())


# -------------------------------------------------------------------------------- retention


async def test_retention_deletes_only_ended_runs_past_the_tenants_retention(stack: Stack, fresh: Database) -> None:
    """Tenant A keeps 1 day, B forever: A's old ended trees and their projections go; everything else stays."""
    ops = Operations(fresh, stack.client)
    a, b = _tenant(), _tenant()
    assert (await ops.get_tenant_settings(a)).runRetentionDays is None  # forever by default
    settings = await ops.set_retention(a, 1, None, actor="test")
    assert (settings.runRetentionDays, settings.ledgerRetentionDays, settings.updatedBy) == (1, 365, "test")
    await ops.set_retention(b, None, actor="test")

    old_root = await _run(fresh, a, "SUCCEEDED", ended_ago=2 * DAY, projections=True)
    old_child = await _run(fresh, a, "FAILED", ended_ago=2 * DAY, parent=old_root, root=old_root, projections=True)
    old_canceled = await _run(fresh, a, "CANCELED", ended_ago=30 * DAY)
    recent = await _run(fresh, a, "SUCCEEDED", ended_ago=timedelta(hours=20))
    still_running = await _run(fresh, a, "RUNNING", ended_ago=None, started_ago=90 * DAY)
    still_waiting = await _run(fresh, a, "WAITING", ended_ago=None, started_ago=90 * DAY)
    open_tree = await _run(fresh, a, "FAILED", ended_ago=5 * DAY)  # ended, but a child still runs: kept whole
    open_child = await _run(fresh, a, "RUNNING", ended_ago=None, parent=open_tree, root=open_tree)
    b_old = await _run(fresh, b, "SUCCEEDED", ended_ago=400 * DAY, projections=True)

    young_ledger = await _ledger(fresh, a, old_root, timedelta(days=10))  # its run goes, the ledger row stays
    old_ledger_gone_run = await _ledger(fresh, a, old_canceled, timedelta(days=400))  # past 365 days and its run goes: deleted
    old_ledger_live_run = await _ledger(fresh, a, recent, timedelta(days=400))  # past 365 days but its run is kept: stays
    b_ledger = await _ledger(fresh, b, "never-existed", timedelta(days=400))  # B's ledger: past 365, no run: deleted too

    counts = await ops.apply_retention()
    assert counts["runsDeleted"] == 3 and counts["treesKept"] == 1 and counts["ledgerRowsDeleted"] == 2, counts
    assert await _runs(fresh, a) == {recent, still_running, still_waiting, open_tree, open_child}
    assert await _runs(fresh, b) == {b_old}
    gone = [old_root, old_child]
    for model in (StepRow, WaitRow, TaskRow, RunSnapshot, RunAction):
        assert await _count(fresh, model, run_id=gone) == 0, model
        assert await _count(fresh, model, run_id=b_old) == 1, model
    # the signal delivered to the run goes with it; a PENDING delivery is the dispatcher's
    assert await _count(fresh, EventDelivery, run_id=gone, status="DELIVERED") == 0
    assert await _count(fresh, EventDelivery, run_id=gone, status="PENDING") == 2
    async with fresh.sessions() as session:
        ledger = set((await session.execute(select(ActionInvocation.id))).scalars())
    assert ledger == {young_ledger, old_ledger_live_run}
    assert old_ledger_gone_run not in ledger and b_ledger not in ledger

    again = await ops.apply_retention()  # nothing more to do
    assert again["runsDeleted"] == 0 and again["ledgerRowsDeleted"] == 0


async def test_retention_goes_in_batches(stack: Stack, fresh: Database) -> None:
    """More trees than one batch: each batch is its own transaction, and every old tree goes."""
    ops = Operations(fresh, stack.client)
    tenant = _tenant()
    await ops.set_retention(tenant, 7, 30, actor="test")
    roots = [await _run(fresh, tenant, "SUCCEEDED", ended_ago=(8 + i % 3) * DAY) for i in range(7)]
    for root in roots[:2]:
        await _run(fresh, tenant, "SUCCEEDED", ended_ago=8 * DAY, parent=root, root=root)
    kept = await _run(fresh, tenant, "SUCCEEDED", ended_ago=6 * DAY)
    ledger = [await _ledger(fresh, tenant, "gone", timedelta(days=31)) for _ in range(5)]
    counts = await ops.apply_retention(batch_size=3)
    assert counts["runsDeleted"] == 9 and counts["batches"] == 3 and counts["ledgerRowsDeleted"] == 5, counts
    assert await _runs(fresh, tenant) == {kept}
    assert await _count(fresh, ActionInvocation, id=ledger) == 0


async def test_retention_settings_are_validated(stack: Stack, fresh: Database) -> None:
    """Days outside 1–36500 are refused naming the field; the interval variable likewise."""
    ops = Operations(fresh, stack.client)
    for runs, ledger, field in ((0, None, "runRetentionDays"), (36501, None, "runRetentionDays"), (1, 0, "ledgerRetentionDays"), (True, None, "runRetentionDays")):
        with pytest.raises(Invalid, match=field) as raised:
            await ops.set_retention("t", runs, ledger, actor="test")
        assert raised.value.errors[0]["path"] == field
    assert (await ops.get_tenant_settings("t")).updatedAt is None  # nothing was written
    for bad in ("0.5", "0", "-3", "soon", "inf"):
        with pytest.raises(ConfigError, match="WFR_HOUSEKEEPING_INTERVAL_SECONDS"):
            RuntimeSettings.from_env({"WFR_HOUSEKEEPING_INTERVAL_SECONDS": bad})
    assert RuntimeSettings.from_env({}).housekeeping_interval_seconds == 300
    assert RuntimeSettings.from_env({"WFR_HOUSEKEEPING_INTERVAL_SECONDS": "60"}).housekeeping_interval_seconds == 60
    with pytest.raises(ConfigError, match="WFR_HOUSEKEEPING_INTERVAL_SECONDS"):
        await ensure_housekeeping_schedule(stack.client, 0.5, "q")
    default, meaning = SETTINGS_DOC["WFR_HOUSEKEEPING_INTERVAL_SECONDS"]  # docs/operations.md's table is rendered from SETTINGS_DOC
    assert f"| `WFR_HOUSEKEEPING_INTERVAL_SECONDS` | `{default}` | {meaning} |" in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ diagnoses


async def _diagnoses(database: Database, run_id: str) -> list[RunAction]:
    async with database.sessions() as session:
        return list((await session.execute(select(RunAction).where(RunAction.run_id == run_id, RunAction.action == "diagnosis").order_by(RunAction.id))).scalars())


async def test_stuck_sweep_records_a_diagnosis_once_per_reason(stack: Stack, fresh: Database) -> None:
    """A stuck run's diagnosis is written once, not on every pass; progress then a new stall writes another."""
    ops = Operations(fresh, stack.client)
    tenant = _tenant()
    stuck = await _run(fresh, tenant, "RUNNING", ended_ago=None, started_ago=timedelta(hours=1))
    await _run(fresh, tenant, "RUNNING", ended_ago=None, started_ago=timedelta(seconds=1))  # not stale yet
    first = await ops.record_diagnoses()
    assert first == {"checked": 2, "stuck": 1, "recorded": 1}
    rows = await _diagnoses(fresh, stuck)
    assert len(rows) == 1 and rows[0].actor == "housekeeping" and rows[0].reason == "EXECUTION_GONE"
    assert rows[0].detail is not None and "reconcile" in rows[0].detail["detail"] and rows[0].detail["since"]
    assert await ops.record_diagnoses() == {"checked": 2, "stuck": 1, "recorded": 0}
    assert len(await _diagnoses(fresh, stuck)) == 1
    async with fresh.sessions.begin() as session:  # it moved (a step ran 30 minutes ago), then stalled again
        session.add(StepRow(tenant=tenant, run_id=stuck, seq=1, step_id="s", step_path="s", step_type="action.call", status="SUCCEEDED",
                            attempts=1, started_at=utcnow() - timedelta(minutes=30), ended_at=utcnow() - timedelta(minutes=30)))
    assert (await ops.record_diagnoses())["recorded"] == 1
    assert [r.reason for r in await _diagnoses(fresh, stuck)] == ["EXECUTION_GONE", "EXECUTION_GONE"]


# ------------------------------------------------------------------------------ the workflow


@contextlib.asynccontextmanager
async def _domain_worker(client: Client, database: Database) -> AsyncIterator[str]:
    queue = f"housekeeping-test-{uuid.uuid4().hex[:8]}"
    worker = Worker(client, task_queue=queue, workflows=[HousekeepingWorkflow], activities=HousekeepingActivities(database, client, batch_size=2).activities)
    async with worker:
        yield queue


async def test_housekeeping_workflow_runs_every_duty(stack: Stack, fresh: Database) -> None:
    """A real worker runs the workflow: every duty's counts come back; a failing duty is reported and the others still run."""
    ops = Operations(fresh, stack.client)
    tenant = _tenant()
    await ops.set_retention(tenant, 1, actor="test")
    async with fresh.sessions.begin() as session:
        session.add(DataStoreEntry(tenant=tenant, key="expired", value=1, expires_at=utcnow() - timedelta(seconds=1), updated_at=utcnow()))
    lost = await _run(fresh, tenant, "RUNNING", ended_ago=None, started_ago=timedelta(hours=2))  # Temporal has no execution for it
    for _ in range(3):
        await _run(fresh, tenant, "SUCCEEDED", ended_ago=3 * DAY, projections=True)
    async with _domain_worker(stack.client, fresh) as queue:
        result = await stack.client.execute_workflow(HOUSEKEEPING_WORKFLOW, id=f"hk-{uuid.uuid4().hex[:8]}", task_queue=queue,
                                                     execution_timeout=timedelta(seconds=60))
        assert result["failed"] == {}, result
        assert result["dataStoreKeysSwept"] == 1
        assert result["reconcile"] == {"checked": 1, "reconciled": 1}
        assert set(result["schedules"]) == {"created", "updated", "deleted", "unchanged", "problems"} and result["schedules"]["problems"] == [], result
        assert result["diagnoses"] == {"checked": 0, "stuck": 0, "recorded": 0}  # the lost run was reconciled first
        assert result["retention"]["runsDeleted"] == 3 and result["retention"]["batches"] == 2, result
        assert await _runs(fresh, tenant) == {lost}
        async with fresh.sessions() as session:
            row = await session.get(RunRow, lost)
            assert row is not None and row.status == "FAILED"
            actors = list((await session.execute(select(RunAction.actor).where(RunAction.run_id == lost, RunAction.action == "reconcile"))).scalars())
        assert actors == ["housekeeping"]

        async with fresh.sessions.begin() as session:  # retention's table is gone: that duty fails, the others do not
            await session.execute(text("DROP TABLE workflow_tenant_settings"))
        result = await stack.client.execute_workflow(HOUSEKEEPING_WORKFLOW, id=f"hk-{uuid.uuid4().hex[:8]}", task_queue=queue,
                                                     execution_timeout=timedelta(seconds=60))
        assert set(result["failed"]) == {"retention"} and "workflow_tenant_settings" in result["failed"]["retention"], result
        assert result["dataStoreKeysSwept"] == 0 and result["reconcile"] == {"checked": 0, "reconciled": 0} and "retention" not in result


# ------------------------------------------------------------------------------ the schedule


async def test_ensure_housekeeping_schedule_is_idempotent_and_updates_the_interval(stack: Stack) -> None:
    """Two workers starting at once both succeed; a new interval is applied; a pause is kept; nothing changes twice."""
    handle = stack.client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID)
    with contextlib.suppress(RPCError):
        await handle.delete()
    queue = f"housekeeping-idle-{uuid.uuid4().hex[:8]}"  # nobody polls it: the schedule's starts just wait
    try:
        outcomes = await asyncio.gather(*(ensure_housekeeping_schedule(stack.client, 3600, queue) for _ in range(2)))
        assert sorted(outcomes) == ["created", "unchanged"]
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == HOUSEKEEPING_WORKFLOW and action.task_queue == queue
        assert described.schedule.policy.overlap.name == "SKIP"
        assert await ensure_housekeeping_schedule(stack.client, 3600, queue) == "unchanged"
        await handle.pause(note="an operator paused it")
        assert await ensure_housekeeping_schedule(stack.client, 7200, queue) == "updated"
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=2)] and described.schedule.state.paused
        assert await ensure_housekeeping_schedule(stack.client, 7200, queue) == "unchanged"
    finally:
        await handle.delete()


# ------------------------------------------------------------------------------------ the CLI


def _wfr(database: Database, *args: str) -> Any:
    from click.testing import CliRunner

    from runtime_bootstrap.cli import wfr

    env: dict[str, str | None] = {k: None for k in __import__("os").environ if k.startswith("WFR_") and k != "WFR_TEST_POSTGRES_URL"}
    env["WFR_DATABASE_URL"] = database.url
    with ThreadPoolExecutor(1) as pool:  # the CLI runs its own event loop
        return pool.submit(lambda: CliRunner().invoke(wfr, list(args), env=env, catch_exceptions=False)).result()


async def test_wfr_tenants_show_and_set_retention(fresh: Database) -> None:
    """`wfr tenants show|set-retention`: defaults, a set value (table and --json), 'forever', one-line errors naming the option."""
    tenant = _tenant()
    shown = _wfr(fresh, "tenants", "show", "--tenant", tenant)
    assert shown.exit_code == 0 and "ended runs kept:   forever" in shown.stdout and "365 days" in shown.stdout, shown.stdout
    done = _wfr(fresh, "tenants", "set-retention", "--tenant", tenant, "--runs-days", "30", "--ledger-days", "400", "--actor", "alice", "--json")
    assert done.exit_code == 0, done.stderr
    assert {k: v for k, v in json.loads(done.stdout).items() if k != "updatedAt"} == {"tenant": tenant, "runRetentionDays": 30, "ledgerRetentionDays": 400, "updatedBy": "alice"}
    assert "ended runs kept:   30 days" in _wfr(fresh, "tenants", "show", "--tenant", tenant).stdout
    assert json.loads(_wfr(fresh, "tenants", "show", "--tenant", "other", "--json").stdout)["runRetentionDays"] is None
    forever = _wfr(fresh, "tenants", "set-retention", "--tenant", tenant, "--runs-days", "forever")
    assert forever.exit_code == 0 and "ended runs kept:   forever" in forever.stdout
    for bad, option in ((("--runs-days", "0"), "--runs-days"), (("--runs-days", "36501"), "--runs-days"), (("--runs-days", "soon"), "--runs-days"),
                        (("--runs-days", "5", "--ledger-days", "0"), "--ledger-days")):
        refused = _wfr(fresh, "tenants", "set-retention", "--tenant", tenant, *bad)
        assert refused.exit_code == 2 and option in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert _wfr(fresh, "tenants", "set-retention", "--tenant", tenant).exit_code == 2  # --runs-days is required


async def test_domain_worker_names_the_namespace_when_temporal_refuses_the_schedule(temporal_server: DevServer, tmp_path: Path) -> None:
    """A namespace Temporal does not have: the domain worker stops at start with one message naming the namespace and WFR_TEMPORAL_NAMESPACE."""
    from domain_worker import run

    settings = RuntimeSettings(temporal_address=temporal_server.address, temporal_namespace="wfr-no-such-namespace",
                               database_url=f"sqlite:///{tmp_path / 'domain.db'}")
    with pytest.raises(RuntimeError, match=r"wfr-no-such-namespace.*WFR_TEMPORAL_NAMESPACE"):
        await asyncio.wait_for(run(settings), 30)
