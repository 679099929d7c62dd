"""The authored worker process: polls workflow-runtime-v2, delivers events, sweeps the data store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from runtime_core.actions import ActionRegistry
from runtime_core.config import RuntimeSettings
from runtime_core.contract import TASK_QUEUE
from runtime_core.delivery import delivering
from runtime_core.housekeeping import sweep_expired
from runtime_core.metrics import serving_metrics
from runtime_core.operations import HealthChecks
from runtime_core.persistence import Database, current_revision, head_revision
from runtime_core.worker import HealthState, build_authored_worker, check_ownership, connect_temporal, process_identity, serve, serving_health, workflow_runner

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

    Its Temporal identity is ``workflow-worker@{hostname}:{pid}``. At start it logs every other
    poller of workflow-runtime-v2 (fatal with ``settings.strict_ownership``). Once ``stop`` is set
    it stops polling, and running activities get ``settings.shutdown_grace_seconds`` to finish.
    With ``settings.health_port`` it serves ``/healthz`` and ``/readyz`` meanwhile.

    Raises:
        RuntimeError: Temporal is unreachable, the database is not migrated, the health port
            cannot be bound, or (strict) another process polls workflow-runtime-v2.
    """
    stop = stop or asyncio.Event()
    database = Database(settings.database_url)
    try:
        revision = await current_revision(database)
        if revision != head_revision():
            raise RuntimeError(f"database {database.safe_url} is at revision {revision or 'empty'}, this worker needs {head_revision()}: run `wfr db upgrade`")
        client = await connect_temporal(settings, identity=process_identity("workflow-worker"))
        await check_ownership(client, "workflow-worker", strict=settings.strict_ownership)
        registry = ActionRegistry.default()
        worker = build_authored_worker(
            client, database, registry, graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
            workflow_runner=workflow_runner(sandboxed=settings.workflow_sandbox),
        )
        health = HealthState(HealthChecks(database, client).readiness_problems)
        async with serving_health(settings.health_port, health):
            sweeper = asyncio.create_task(_sweep_forever(database, settings.sweep_interval_seconds))
            try:
                async with worker, delivering(client, database, poll_interval=settings.delivery_poll_seconds), serving_metrics(settings.metrics_port, database):
                    health.polling = True
                    log.info(
                        "polling task queue %s on %s (namespace %s) as %s; delivering events; database %s; %d actions registered",
                        TASK_QUEUE, settings.temporal_address, settings.temporal_namespace, client.identity, database.safe_url, len(registry.specs()),
                    )
                    await stop.wait()
                    health.draining = True
                    log.info("stopping: no new tasks; running activities get %ss to finish", f"{settings.shutdown_grace_seconds:g}")
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
