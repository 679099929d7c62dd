"""SQLite locked by another process while 60 runs are inside their actions (issue 10, item 2).

A database hiccup is infrastructure: retried underneath, never an attempt, never a run's error,
and one log line per retry instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from runtime_core.actions import ActionRegistry
from runtime_core.persistence import Database, upgrade
from runtime_core.publishing import publish_definitions

from .harness import SqliteLockHolder, TemporalServer, WorkerProcess
from .workloads import load_definition, load_through_fault


@pytest.mark.parametrize("seconds", [10, 25])
async def test_sqlite_locked_by_another_process(
    seconds: int, temporal: TemporalServer, spawn_worker: Callable[..., Awaitable[WorkerProcess]], tmp_path: Path, tenant: str, figures: dict[str, Any]
) -> None:
    """Another process holds BEGIN EXCLUSIVE for 10 s / 25 s mid-load: all 60 runs SUCCEEDED, no SQL in any error."""
    path = tmp_path / "rel.db"
    database = Database(f"sqlite:///{path}")
    await upgrade(database)
    lock = SqliteLockHolder(path, seconds)
    try:
        assert (await publish_definitions(database, ActionRegistry.default(), tenant, [load_definition()])).published
        worker = await spawn_worker(f"sqlite:///{path}")
        client = await temporal.client()

        async def hold() -> dict[str, Any]:
            waited = await lock.acquire()
            await lock.released()
            return {"fault": f"SQLite: BEGIN EXCLUSIVE held by another process for {seconds}s", "secondsToGetTheLock": round(waited, 1)}

        await load_through_fault(database, client, worker, tenant, hold, figures)
    finally:
        lock.kill()
        await database.dispose()
