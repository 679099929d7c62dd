"""The stack commands run against: embedded (dev server + SQLite + in-process worker) or external."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap.settings import AppSettings
from runtime_core import tracing
from runtime_core.actions import ActionRegistry
from runtime_core.contract import DOMAIN_TASK_QUEUE
from runtime_core.delivery import Dispatcher, delivering
from runtime_core.housekeeping import HousekeepingActivities, HousekeepingWorkflow, ensure_housekeeping_schedule
from runtime_core.launcher import Launcher
from runtime_core.persistence import Database, upgrade
from runtime_core.schedules import ScheduledLaunchActivities, ScheduledLaunchWorkflow, reconcile_schedules
from runtime_core.worker import build_authored_worker, connect_temporal, domain_workflow_runner, temporal_runtime, workflow_runner

__all__ = ["Stack", "open_stack"]

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """A connected Temporal client, a migrated database and the action registry."""

    client: Client
    database: Database
    registry: ActionRegistry
    server: DevServer | None = None
    worker: Worker | None = None
    dispatcher: Dispatcher | None = None
    domain_worker: Worker | None = None
    #: The domain queue (``WFR_DOMAIN_TASK_QUEUE``): where schedule fires run.
    domain_task_queue: str = DOMAIN_TASK_QUEUE

    @property
    def launcher(self) -> Launcher:
        """A launcher on this stack."""
        return Launcher(self.client, self.database, registry=self.registry)


@contextlib.asynccontextmanager
async def open_stack(
    settings: AppSettings,
    *,
    database_url: str | None = None,
    with_worker: bool = True,
    ui: bool = False,
    persist_dir: str | None = None,
    registry: ActionRegistry | None = None,
    ports: tuple[int, int] | None = None,
) -> AsyncIterator[Stack]:
    """Open the stack the settings describe.

    Args:
        settings: Application settings; without ``WFR_TEMPORAL_ADDRESS`` an embedded dev server starts.
        database_url: Override the database (default: settings, or a temporary SQLite file when embedded).
        with_worker: Run an authored worker, a domain worker (housekeeping, schedule fires) and the
            event dispatcher in this process (embedded stacks only); the schedules of the
            published triggers are reconciled once the workers run.
        ui: Serve the Temporal Web UI (embedded only).
        ports: Fixed ``(frontend, ui)`` ports of the embedded server; free ports when omitted.
        persist_dir: Keep the embedded server's and database's state in this folder.
        registry: Actions; built-ins plus entry points when omitted.
    """
    registry = registry or ActionRegistry.default()
    server: DevServer | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if settings.external:
            client = await connect_temporal(settings.runtime)
            url = database_url or settings.runtime.database_url
        else:
            if persist_dir:
                Path(persist_dir).mkdir(parents=True, exist_ok=True)
                base = Path(persist_dir)
            else:
                tmp = tempfile.TemporaryDirectory(prefix="wfr-")
                base = Path(tmp.name)
            server = DevServer(
                namespaces=(settings.runtime.temporal_namespace,),
                ui=ui,
                port=ports[0] if ports else None,
                ui_port=ports[1] if ports else None,
                db_file=str(base / "temporal.db") if persist_dir else None,
                log_file=str(base / "temporal.log"),
            )
            await server.start()
            client = await Client.connect(server.address, namespace=settings.runtime.temporal_namespace, runtime=temporal_runtime(), interceptors=tracing.interceptors())
            url = database_url or f"sqlite:///{base / 'wfr.db'}"
        database = Database(url)
        await upgrade(database)
        stack = Stack(client=client, database=database, registry=registry, server=server, domain_task_queue=settings.runtime.domain_task_queue)
        worker_task: asyncio.Task[None] | None = None
        domain_task: asyncio.Task[None] | None = None
        try:
            async with contextlib.AsyncExitStack() as running:
                if with_worker and not settings.external:
                    stack.worker = build_authored_worker(client, database, registry, workflow_runner=workflow_runner(sandboxed=settings.runtime.workflow_sandbox))
                    worker_task = asyncio.create_task(stack.worker.run())
                    stack.domain_worker = Worker(
                        client,
                        task_queue=settings.runtime.domain_task_queue,
                        workflows=[HousekeepingWorkflow, ScheduledLaunchWorkflow],
                        activities=[*HousekeepingActivities(database, client).activities, *ScheduledLaunchActivities(client, database).activities],
                        workflow_runner=domain_workflow_runner(),
                    )
                    domain_task = asyncio.create_task(stack.domain_worker.run())
                    stack.dispatcher = await running.enter_async_context(delivering(client, database))
                    # a persisted dev stack keeps its definitions: give their triggers their schedules
                    report = await reconcile_schedules(database, client, task_queue=settings.runtime.domain_task_queue)
                    for problem in report.problems:
                        log.warning("schedules: %s", problem)
                    # the domain worker's housekeeping runs here too (sweep, reconcile, diagnoses, retention)
                    await ensure_housekeeping_schedule(client, settings.runtime.housekeeping_interval_seconds, settings.runtime.domain_task_queue)
                yield stack
        finally:
            for running_worker, task in ((stack.worker, worker_task), (stack.domain_worker, domain_task)):
                if running_worker is not None and task is not None:
                    await running_worker.shutdown()
                    with contextlib.suppress(Exception):
                        await task
            await database.dispose()
    finally:
        if server is not None:
            await server.stop()
        if tmp is not None:
            tmp.cleanup()
