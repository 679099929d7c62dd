"""kill -9 of the domain-worker process while a schedule's fire is launching its run (issue 13).

The fire's launch is held inside its database write (another process holds SQLite's write lock)
when the domain worker dies; after a restart the fire is retried and has made exactly one run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runtime_core.actions import ActionRegistry
from runtime_core.contract import SCHEDULED_LAUNCH_WORKFLOW
from runtime_core.persistence import Database, RunRow, upgrade
from runtime_core.publishing import publish_definitions
from runtime_core.schedules import reconcile_schedules, schedule_id

from .harness import SqliteLockHolder, TemporalServer, WorkerProcess, domain_worker_process, wait_for_runs, worker_env

#: The launch activity's start-to-close timeout (a killed attempt is retried after it) plus slack.
RECOVERY_LIMIT_S = 75


@pytest.fixture
async def domain_worker(temporal: TemporalServer, tmp_path: Path) -> AsyncIterator[Callable[[str], WorkerProcess]]:
    """Make (not start) a domain-worker process for a database; stopped at the end of the test."""
    made: list[WorkerProcess] = []

    def make(database_url: str) -> WorkerProcess:
        worker = domain_worker_process("domain", worker_env(temporal, database_url), tmp_path / "domain.log")
        made.append(worker)
        return worker

    try:
        yield make
    finally:
        for worker in made:
            await worker.stop(timeout=15)


async def test_domain_worker_killed_mid_launch_makes_exactly_one_run(
    temporal: TemporalServer, spawn_worker: Callable[..., Awaitable[WorkerProcess]], domain_worker: Callable[[str], WorkerProcess],
    tmp_path: Path, tenant: str, figures: dict[str, Any],
) -> None:
    """SIGKILL the domain worker while its fire's launch waits on the database, restart it: one run, triggered by the fire."""
    db_path = tmp_path / "rel.db"
    url = f"sqlite:///{db_path}"
    database = Database(url)
    lock = SqliteLockHolder(db_path, seconds=6)
    try:
        await upgrade(database)
        run_at = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        trigger = {"type": "schedule", "runAt": run_at}
        definition = {"id": "nightly", "version": 1, "name": "nightly",
                      "steps": [{"id": "echo", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"ok": True}}}]}
        assert (await publish_definitions(database, ActionRegistry.default(), tenant, [{**definition, "trigger": trigger}])).published
        client = await temporal.client()
        report = await reconcile_schedules(database, client, tenant=tenant)
        sid = schedule_id(tenant, "nightly", trigger)
        assert report.created == [sid], report
        await spawn_worker(url)  # the authored worker, for the run itself

        # the fire happens with no domain worker: Temporal keeps the fire workflow until one polls
        await asyncio.sleep(max(0.0, (datetime.fromisoformat(run_at.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()) + 1.5)
        await lock.acquire()
        worker = domain_worker(url)
        await worker.start()
        await asyncio.sleep(2.5)  # the launch activity is inside its INSERT, waiting for the lock
        async with database.sessions() as session:
            assert (await session.execute(select(RunRow).where(RunRow.tenant == tenant))).scalars().all() == []
        await worker.kill()
        killed = time.monotonic()
        await lock.released()
        await worker.start()

        deadline = killed + RECOVERY_LIMIT_S
        runs: list[RunRow] = []
        while time.monotonic() < deadline:
            async with database.sessions() as session:
                runs = list((await session.execute(select(RunRow).where(RunRow.tenant == tenant))).scalars())
            if runs and runs[0].temporal_run_id is not None:
                break
            await asyncio.sleep(0.5)
        figures.update(fault="SIGKILL of the domain worker while a fire's launch waited on the SQLite write lock, then a restart",
                       runs=len(runs), launchedSecondsAfterKill=round(time.monotonic() - killed, 1))
        assert len(runs) == 1, f"{len(runs)} runs after the fire was retried; expected exactly one"
        # launched only once the killed attempt timed out (30 s): the kill did hit a launch in flight
        assert figures["launchedSecondsAfterKill"] > 15, figures
        assert runs[0].trigger == {"type": "schedule", "scheduleId": sid, "scheduledAt": run_at.replace("Z", ".000Z")}
        _closed, unfinished = await wait_for_runs(client, [runs[0].run_id], timeout=60)
        assert not unfinished
        fires = [f async for f in client.list_workflows(f"WorkflowType = '{SCHEDULED_LAUNCH_WORKFLOW}'")]
        assert len(fires) == 1
        result = await client.get_workflow_handle(fires[0].id).result()
        assert result["launched"] is True and result["runId"] == runs[0].run_id
        await asyncio.sleep(3)
        async with database.sessions() as session:
            assert len((await session.execute(select(RunRow).where(RunRow.tenant == tenant))).scalars().all()) == 1
    finally:
        lock.kill()
        await database.dispose()
