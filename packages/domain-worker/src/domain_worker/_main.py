"""The domain worker process: polls the non-authored domain queue (housekeeping, the schedules' fire workflow), never workflow-runtime-v2."""

from __future__ import annotations

import asyncio
import logging

from temporalio.worker import Worker

from runtime_core.config import RuntimeSettings
from runtime_core.contract import TASK_QUEUE
from runtime_core.housekeeping import HousekeepingActivities, HousekeepingWorkflow
from runtime_core.persistence import Database
from runtime_core.schedules import ScheduledLaunchActivities, ScheduledLaunchWorkflow
from runtime_core.worker import connect_temporal, domain_workflow_runner, serve

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
    """Poll the domain queue until ``stop`` is set.

    Raises:
        RefusedQueue: Told to poll workflow-runtime-v2.
    """
    check_queue(settings.domain_task_queue)
    stop = stop or asyncio.Event()
    database = Database(settings.database_url)
    try:
        client = await connect_temporal(settings)
        worker = Worker(
            client,
            task_queue=settings.domain_task_queue,
            workflows=[HousekeepingWorkflow, ScheduledLaunchWorkflow],
            activities=[HousekeepingActivities(database).sweep, *ScheduledLaunchActivities(client, database).activities],
            workflow_runner=domain_workflow_runner(),
        )
        log.info("polling domain task queue %s on %s (namespace %s)", settings.domain_task_queue, settings.temporal_address, settings.temporal_namespace)
        async with worker:
            await stop.wait()
            log.info("stopping: finishing in-flight tasks")
        log.info("stopped")
    finally:
        await database.dispose()


def main() -> None:
    """Console-script entry point: configure from ``WFR_*`` variables and run until SIGTERM."""
    serve("domain-worker", run, check=lambda settings: check_queue(settings.domain_task_queue))
