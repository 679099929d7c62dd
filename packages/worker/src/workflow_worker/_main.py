"""The authored worker process: polls workflow-runtime-v2, delivers events, sweeps the data store."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from runtime_core.actions import ActionRegistry
from runtime_core.config import RuntimeSettings
from runtime_core.contract import TASK_QUEUE
from runtime_core.delivery import delivering
from runtime_core.housekeeping import sweep_expired
from runtime_core.metrics import serving_metrics
from runtime_core.persistence import Database, current_revision, head_revision
from runtime_core.worker import build_authored_worker, connect_temporal, serve

__all__ = ["main", "run"]

log = logging.getLogger("workflow_worker")


async def _sweep_forever(database: Database, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await sweep_expired(database)
            if removed:
                log.info("data-store sweep removed %d expired keys", removed)
        except Exception:  # keep sweeping; a failed pass is retried next interval
            log.exception("data-store sweep failed")


async def run(settings: RuntimeSettings, stop: asyncio.Event | None = None) -> None:
    """Run the worker until ``stop`` is set (or SIGTERM/SIGINT when run by :func:`main`).

    Raises:
        RuntimeError: Temporal is unreachable or the database is not migrated.
    """
    stop = stop or asyncio.Event()
    database = Database(settings.database_url)
    try:
        revision = await current_revision(database)
        if revision != head_revision():
            raise RuntimeError(f"database {database.safe_url} is at revision {revision or 'empty'}, this worker needs {head_revision()}: run `wfr db upgrade`")
        client = await connect_temporal(settings)
        registry = ActionRegistry.default()
        worker = build_authored_worker(client, database, registry)
        sweeper = asyncio.create_task(_sweep_forever(database, settings.sweep_interval_seconds))
        log.info(
            "polling task queue %s on %s (namespace %s); delivering events; database %s; %d actions registered",
            TASK_QUEUE, settings.temporal_address, settings.temporal_namespace, database.safe_url, len(registry.specs()),
        )
        try:
            async with worker, delivering(client, database, poll_interval=settings.delivery_poll_seconds), serving_metrics(settings.metrics_port, database):
                await stop.wait()
                log.info("stopping: finishing in-flight tasks")
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        log.info("stopped")
    finally:
        await database.dispose()


def main() -> None:
    """Console-script entry point: configure from ``WFR_*`` variables and run until SIGTERM."""
    serve("workflow-worker", run)
