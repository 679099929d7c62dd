"""The two worker processes, run as real processes against the real dev server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import select
from temporalio.client import Client

from runtime_bootstrap._devserver import DevServer
from runtime_core.actions import ActionRegistry
from runtime_core.contract import DOMAIN_TASK_QUEUE, HOUSEKEEPING_SCHEDULE_ID, HOUSEKEEPING_WORKFLOW
from runtime_core.launcher import Launcher
from runtime_core.persistence import Database, DataStoreEntry, upgrade, utcnow
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view

BIN = Path(sys.executable).parent


async def _start(command: str, env: dict[str, str], ready: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start console script ``command`` (with ``args``) and wait until its log shows ``ready``."""
    out = log.open("wb")
    proc = subprocess.Popen([str(BIN / command), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(300):
        if ready in log.read_text():
            return proc
        if proc.poll() is not None:
            raise AssertionError(f"{command} exited {proc.returncode}: {log.read_text()}")
        await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{command} never logged {ready!r}: {log.read_text()}")


async def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)


def _env(server: DevServer, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env.update(WFR_TEMPORAL_ADDRESS=server.address, WFR_TEMPORAL_NAMESPACE="wfr-misc", WFR_DATABASE_URL=db_url, WFR_LOG_LEVEL="INFO", **extra)
    return env


async def test_workflow_worker_runs_authored_runs_and_stops_on_sigterm(temporal_server: DevServer, tmp_path: Path) -> None:
    """The console script polls workflow-runtime-v2, completes a launched run, sweeps, exits 0 on SIGTERM."""
    db_url = f"sqlite:///{tmp_path / 'worker.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    async with database.sessions.begin() as session:  # an already expired key for the sweep
        session.add(DataStoreEntry(tenant=tenant, key="old", value=1, expires_at=utcnow(), updated_at=utcnow()))
    definition = {"id": "hello", "version": 1, "name": "hello", "steps": [
        {"id": "say", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"hi": {"$expr": "payload.who"}}, "saveAs": "greeting"}}]}
    assert (await publish_definitions(database, ActionRegistry.default(), tenant, [definition])).published
    proc = await _start("workflow-worker", _env(temporal_server, db_url, WFR_SWEEP_INTERVAL_SECONDS="0.2"), "polling task queue workflow-runtime-v2", tmp_path / "worker.log")
    try:
        client = await Client.connect(temporal_server.address, namespace="wfr-misc")
        launched = await Launcher(client, database).launch(tenant, "hello", {"who": "ada"})
        await asyncio.wait_for(client.get_workflow_handle(launched.temporal_workflow_id).result(), 30)
        view = await run_view(database, launched.run_id)
        assert view is not None and view["status"] == "SUCCEEDED"
        assert view["vars"] == {"greeting": {"hi": "ada"}}
        for _ in range(50):
            if "sweep removed 1 expired keys" in (tmp_path / "worker.log").read_text():
                break
            await asyncio.sleep(0.1)
        assert "sweep removed 1 expired keys" in (tmp_path / "worker.log").read_text()
    finally:
        code = await _stop(proc)
        await database.dispose()
    assert code == 0, (tmp_path / "worker.log").read_text()
    assert "stopped" in (tmp_path / "worker.log").read_text()


async def test_workflow_worker_refuses_unmigrated_database(temporal_server: DevServer, tmp_path: Path) -> None:
    """A worker pointed at an empty database says to run `wfr db upgrade` and exits non-zero."""
    env = _env(temporal_server, f"sqlite:///{tmp_path / 'empty.db'}")
    result = subprocess.run([str(BIN / "workflow-worker")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "wfr db upgrade" in result.stderr


def test_domain_worker_refuses_the_authored_queue(tmp_path: Path) -> None:
    """Told to poll workflow-runtime-v2, the domain worker exits 2 with a clear message."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env["WFR_DOMAIN_TASK_QUEUE"] = "workflow-runtime-v2"
    result = subprocess.run([str(BIN / "domain-worker")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "workflow-runtime-v2" in result.stderr and "only workflow-worker polls it" in result.stderr


async def test_domain_worker_runs_housekeeping_on_its_queue(temporal_server: DevServer, tmp_path: Path) -> None:
    """The domain worker completes the housekeeping workflow on its own queue, then stops on SIGTERM."""
    db_url = f"sqlite:///{tmp_path / 'domain.db'}"
    database = Database(db_url)
    await upgrade(database)
    async with database.sessions.begin() as session:
        session.add(DataStoreEntry(tenant="t", key="gone", value=1, expires_at=utcnow(), updated_at=utcnow()))
    await database.dispose()
    proc = await _start("domain-worker", _env(temporal_server, db_url), f"polling domain task queue {DOMAIN_TASK_QUEUE}", tmp_path / "domain.log")
    try:
        client = await Client.connect(temporal_server.address, namespace="wfr-misc")
        result = await client.execute_workflow(HOUSEKEEPING_WORKFLOW, id=f"housekeeping-{uuid.uuid4().hex[:8]}", task_queue=DOMAIN_TASK_QUEUE, execution_timeout=__import__("datetime").timedelta(seconds=30))
        assert result["failed"] == {}, result
        assert set(result) == {"dataStoreKeysSwept", "reconcile", "schedules", "diagnoses", "retention", "failed"}
        schedule = await client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID).describe()  # ensured at start
        assert schedule.schedule.spec.intervals[0].every.total_seconds() == 300
        # The schedule fires on 5-minute boundaries of the clock: when the test crosses one, the
        # scheduled run (on the same worker and queue) may sweep the key before this one does.
        assert result["dataStoreKeysSwept"] == 1 or schedule.info.recent_actions, result
        database = Database(db_url)
        try:
            async with database.sessions() as session:
                left = (await session.execute(select(DataStoreEntry).where(DataStoreEntry.tenant == "t", DataStoreEntry.key == "gone"))).first()
            assert left is None, "the expired key was not swept"
        finally:
            await database.dispose()
    finally:
        code = await _stop(proc)
    assert code == 0, (tmp_path / "domain.log").read_text()
