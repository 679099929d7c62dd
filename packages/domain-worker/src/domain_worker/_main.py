"""The domain worker process: polls the non-authored domain queue, never workflow-runtime-v2."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from temporalio.worker import Worker

from runtime_core.config import ConfigError, RuntimeSettings
from runtime_core.contract import TASK_QUEUE
from runtime_core.housekeeping import HousekeepingActivities, HousekeepingWorkflow
from runtime_core.persistence import Database
from runtime_core.worker import connect_temporal

__all__ = ["RefusedQueue", "check_queue", "main", "run"]

log = logging.getLogger("domain_worker")


class RefusedQueue(RuntimeError):
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
            workflows=[HousekeepingWorkflow],
            activities=[HousekeepingActivities(database).sweep],
        )
        log.info("polling domain task queue %s on %s (namespace %s)", settings.domain_task_queue, settings.temporal_address, settings.temporal_namespace)
        async with worker:
            await stop.wait()
            log.info("stopping: finishing in-flight tasks")
        log.info("stopped")
    finally:
        await database.dispose()


def main() -> None:
    """Console-script entry point."""
    try:
        settings = RuntimeSettings.from_env()
        check_queue(settings.domain_task_queue)
    except (ConfigError, RefusedQueue) as err:
        print(f"domain-worker: {err}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    try:
        asyncio.run(go())
    except RuntimeError as err:
        print(f"domain-worker: {err}", file=sys.stderr)
        sys.exit(1)
