"""The domain worker process: polls the non-authored domain queue (housekeeping, the schedules' fire workflow), never workflow-runtime-v2."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.service import RPCError
from temporalio.worker import Worker

from runtime_core.config import RuntimeSettings
from runtime_core.contract import HOUSEKEEPING_SCHEDULE_ID, TASK_QUEUE
from runtime_core.housekeeping import HousekeepingActivities, HousekeepingWorkflow, ensure_housekeeping_schedule
from runtime_core.metrics import serving_metrics
from runtime_core.operations import HealthChecks
from runtime_core.persistence import Database
from runtime_core.schedules import ScheduledLaunchActivities, ScheduledLaunchWorkflow
from runtime_core.worker import HealthState, check_ownership, connect_temporal, domain_workflow_runner, process_identity, serve, serving_health

__all__ = ["RefusedQueue", "check_queue", "main", "run"]

log = logging.getLogger("domain_worker")


class RefusedQueue(ValueError):
    """The domain worker was configured to poll the authored queue."""


def check_queue(queue: str) -> None:
    """Refuse the authored queue: only workflow-worker may poll it.

    Raises:
        RefusedQueue: ``queue`` is workflow-runtime-v2.
    """
    if queue == TASK_QUEUE:
        raise RefusedQueue(
            f"WFR_DOMAIN_TASK_QUEUE={queue!r} is the authored-run queue; only workflow-worker polls it. "
            "Unset WFR_DOMAIN_TASK_QUEUE (default workflow-runtime-domain) or name a domain queue."
        )


async def run(settings: RuntimeSettings, stop: asyncio.Event | None = None) -> None:
    """Ensure the housekeeping schedule, then poll the domain queue until ``stop`` is set.

    Its Temporal identity is ``domain-worker@{hostname}:{pid}``. At start it logs every poller
    of workflow-runtime-v2 that is not a workflow-worker (fatal with
    ``settings.strict_ownership``). Once ``stop`` is set it stops polling, and running
    activities get ``settings.shutdown_grace_seconds``. With ``settings.health_port`` it serves
    ``/healthz`` and ``/readyz`` meanwhile.

    Raises:
        RefusedQueue: Told to poll workflow-runtime-v2.
        RuntimeError: Temporal is unreachable, refused the housekeeping schedule (the message
            names the setting to check), the health port cannot be bound, or (strict) another
            process polls workflow-runtime-v2.
    """
    check_queue(settings.domain_task_queue)
    stop = stop or asyncio.Event()
    database = Database(settings.database_url)
    try:
        client = await connect_temporal(settings, identity=process_identity("domain-worker"))
        await check_ownership(client, "domain-worker", strict=settings.strict_ownership)
        worker = Worker(
            client,
            task_queue=settings.domain_task_queue,
            workflows=[HousekeepingWorkflow, ScheduledLaunchWorkflow],
            activities=[*HousekeepingActivities(database, client).activities, *ScheduledLaunchActivities(client, database).activities],
            workflow_runner=domain_workflow_runner(),
            graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
        )
        try:
            outcome = await ensure_housekeeping_schedule(client, settings.housekeeping_interval_seconds, settings.domain_task_queue)
        except RPCError as err:
            raise RuntimeError(
                f"cannot create or update the Temporal Schedule {HOUSEKEEPING_SCHEDULE_ID} in namespace {settings.temporal_namespace!r}: {err}. "
                "Check WFR_TEMPORAL_NAMESPACE and that the Temporal server supports schedules (1.20 or later)."
            ) from err
        log.info("housekeeping schedule %s (every %ss)", outcome, int(settings.housekeeping_interval_seconds))
        health = HealthState(HealthChecks(database, client).readiness_problems)
        async with serving_health(settings.health_port, health), worker, serving_metrics(settings.metrics_port, database):
            health.polling = True
            log.info("polling domain task queue %s on %s (namespace %s) as %s", settings.domain_task_queue, settings.temporal_address, settings.temporal_namespace, client.identity)
            await stop.wait()
            health.draining = True
            log.info("stopping: no new tasks; running activities get %ss to finish", f"{settings.shutdown_grace_seconds:g}")
        log.info("stopped")
    finally:
        await database.dispose()


def main() -> None:
    """Console-script entry point: configure from ``WFR_*`` variables and run until SIGTERM."""
    serve("domain-worker", run, check=lambda settings: check_queue(settings.domain_task_queue))
