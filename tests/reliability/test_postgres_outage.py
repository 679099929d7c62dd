"""PostgreSQL stopped (``pg_ctl stop -m immediate``) while 60 runs are inside their actions (issue 10, item 2).

Every connection dies at once and nothing answers for the outage; afterwards every run must
succeed, the projections agree with Temporal, and the worker logs one line per retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runtime_core.actions import ActionRegistry
from runtime_core.persistence import Database, upgrade
from runtime_core.publishing import publish_definitions

from .harness import PostgresCluster, TemporalServer, WorkerProcess
from .workloads import load_definition, load_through_fault


@pytest.mark.parametrize("seconds", [10, 30])
async def test_postgres_stopped_mid_run(
    seconds: int, postgres_cluster: PostgresCluster, temporal: TemporalServer, spawn_worker: Callable[..., Awaitable[WorkerProcess]],
    tenant: str, figures: dict[str, Any],
) -> None:
    """PostgreSQL down for 10 s / 30 s mid-load: all 60 runs SUCCEEDED, projections consistent, bounded logging."""
    url = await postgres_cluster.create_database(f"rel_{uuid.uuid4().hex[:10]}")
    database = Database(url)
    await upgrade(database)
    try:
        assert (await publish_definitions(database, ActionRegistry.default(), tenant, [load_definition()])).published
        worker = await spawn_worker(url)
        client = await temporal.client()

        async def outage() -> dict[str, Any]:
            await database.dispose()  # this process's pooled connections would die with the server
            await asyncio.to_thread(postgres_cluster.stop, "immediate")
            await asyncio.sleep(seconds)
            start_s = await asyncio.to_thread(postgres_cluster.start)
            return {"fault": f"PostgreSQL: pg_ctl stop -m immediate, {seconds}s down, start", "postgresStartSeconds": round(start_s, 1)}

        await load_through_fault(database, client, worker, tenant, outage, figures)
    finally:
        await database.dispose()
