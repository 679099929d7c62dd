"""A worker killed after an action ran, before Temporal recorded it: the effect happens once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import func, select
from temporalio.client import Client

from runtime_bootstrap._devserver import DevServer
from runtime_core.actions import ActionRegistry
from runtime_core.contract import RunOptions
from runtime_core.launcher import Launcher
from runtime_core.persistence import ActionInvocation, Database, DataStoreEntry, upgrade
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view
from runtime_core.worker import temporal_runtime

from .test_workers import _env, _start, _stop

DEFINITION = {"id": "count-once", "version": 1, "name": "count once", "steps": [
    {"id": "inc", "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": "hits"}, "saveAs": "vars.inc"}},
    {"id": "read", "type": "action.call", "config": {"actionId": "data.get", "version": 1, "inputMapping": {"key": "hits"}, "saveAs": "vars.hits"}},
]}


async def test_killed_after_commit_runs_the_action_once(temporal_server: DevServer, tmp_path: Path) -> None:
    """SIGKILL between commit and completion; a fresh worker finishes the run from the ledger."""
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(database, ActionRegistry.default(), tenant, [DEFINITION])).published
    marker = tmp_path / "committed"
    env = _env(temporal_server, db_url)
    crash = subprocess.Popen([sys.executable, str(Path(__file__).with_name("crash_worker.py")), str(marker)], env=env,
                             stdout=(tmp_path / "crash.log").open("wb"), stderr=subprocess.STDOUT)
    worker = None
    try:
        client = await Client.connect(temporal_server.address, namespace="wfr-misc", runtime=temporal_runtime())
        # a short attempt timeout so Temporal notices the dead worker quickly
        launched = await Launcher(client, database, RunOptions(action_timeout_ms=2000)).launch(tenant, "count-once", {})
        for _ in range(300):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.exists(), (tmp_path / "crash.log").read_text()
        crash.send_signal(signal.SIGKILL)
        crash.wait(10)
        async with database.sessions() as session:
            assert (await session.execute(select(func.count()).select_from(ActionInvocation).where(ActionInvocation.tenant == tenant))).scalar_one() == 1
        worker = await _start("workflow-worker", env, "polling task queue workflow-runtime-v2", tmp_path / "worker.log")
        await asyncio.wait_for(client.get_workflow_handle(launched.temporal_workflow_id).result(), 60)
        view = await run_view(database, launched.run_id)
        assert view is not None and view["status"] == "SUCCEEDED"
        assert view["vars"]["inc"] == {"key": "hits", "value": 1}
        assert view["vars"]["hits"]["value"] == 1
        async with database.sessions() as session:
            value = (await session.execute(select(DataStoreEntry.value).where(DataStoreEntry.tenant == tenant, DataStoreEntry.key == "hits"))).scalar_one()
            invocations = (await session.execute(select(func.count()).select_from(ActionInvocation).where(ActionInvocation.tenant == tenant))).scalar_one()
        assert value == 1 and invocations == 2  # the increment once, plus the read
        assert [s["attempts"] for s in view["steps"]] == [1, 1], "a lost worker is not an authored attempt"
    finally:
        if crash.poll() is None:
            crash.kill()
        if worker is not None:
            await _stop(worker)
        await database.dispose()
