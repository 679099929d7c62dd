"""Activities of the fire workflow: launch the fire's run once, and wait for it to end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.contract import SCHEDULED_AWAIT_ACTIVITY, SCHEDULED_LAUNCH_ACTIVITY, ScheduledLaunchRequest
from runtime_core.launcher import Launcher, LaunchError
from runtime_core.persistence import Database, DefinitionVersion, WorkflowDefinitionRow
from runtime_core.schedules._ids import launch_key, parse_schedule_id, trigger_key
from runtime_core.schedules._workflow import LAUNCH_REFUSED

__all__ = ["ScheduledLaunchActivities", "launch_fire"]

log = logging.getLogger(__name__)


async def launch_fire(client: Client, database: Database, request: ScheduledLaunchRequest) -> dict[str, Any]:
    """Launch the run of one fire, at most once per schedule id and scheduled time.

    The latest published version is launched (republishing rebinds the schedule without touching
    it), with payload ``{}`` and ``triggeredBy`` ``{"type", "scheduleId", "scheduledAt"}``. A second
    call for the same fire returns the same run (``created: false``).

    Raises:
        ApplicationError: Non-retryable (type ``ScheduledLaunchRefused``): the workflow is not
            published any more, its latest version no longer has this trigger, or the launcher
            refused the launch. Anything else (database or Temporal unavailable) propagates and
            the activity is retried.
    """
    parsed = parse_schedule_id(request.schedule_id)
    if parsed is None or parsed[:2] != (request.tenant, request.workflow_id):
        raise ApplicationError(f"{request.schedule_id!r} is not the schedule of workflow {request.workflow_id!r}", type=LAUNCH_REFUSED, non_retryable=True)
    async with database.sessions() as session:
        document = (await session.execute(
            select(DefinitionVersion.document)
            .join(WorkflowDefinitionRow, (WorkflowDefinitionRow.tenant == DefinitionVersion.tenant)
                  & (WorkflowDefinitionRow.workflow_id == DefinitionVersion.workflow_id)
                  & (WorkflowDefinitionRow.latest_version == DefinitionVersion.version))
            .where(DefinitionVersion.tenant == request.tenant, DefinitionVersion.workflow_id == request.workflow_id)
        )).scalar_one_or_none()
    if document is None:
        raise ApplicationError(f"workflow {request.workflow_id!r} is not published for tenant {request.tenant!r}", type=LAUNCH_REFUSED, non_retryable=True)
    trigger = document.get("trigger")
    if not isinstance(trigger, dict) or trigger_key(trigger) != parsed[2]:
        raise ApplicationError(
            f"the latest version of {request.workflow_id!r} no longer has this trigger; the next reconcile deletes schedule {request.schedule_id}",
            type=LAUNCH_REFUSED, non_retryable=True,
        )
    trigger_record = {"type": request.trigger_type, "scheduleId": request.schedule_id, "scheduledAt": request.scheduled_at}
    try:
        run = await Launcher(client, database).launch(
            request.tenant, request.workflow_id, {}, trigger=trigger_record, idempotency_key=launch_key(request.schedule_id, request.scheduled_at),
        )
    except LaunchError as err:
        raise ApplicationError(f"the launch was refused: {err}", type=LAUNCH_REFUSED, non_retryable=True) from None
    log.info("schedule %s fired for %s: run %s (%s)", request.schedule_id, request.scheduled_at, run.run_id, "started" if run.created else "already started")
    return {"runId": run.run_id, "workflowVersion": run.workflow_version, "temporalWorkflowId": run.temporal_workflow_id, "created": run.created}


async def await_run_end(client: Client, temporal_workflow_id: str) -> None:
    """Return once the authored run's execution (and any continuation of it) has ended, however it ended."""
    try:
        await client.get_workflow_handle(temporal_workflow_id).result()
    except WorkflowFailureError:
        return  # failed, cancelled, terminated or timed out: ended
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


class ScheduledLaunchActivities:
    """The fire workflow's activities, bound to the authored namespace's client and the database."""

    def __init__(self, client: Client, database: Database) -> None:
        """Inject the Temporal client (the authored namespace) and the database."""
        self.client = client
        self.database = database

    @property
    def activities(self) -> list[Any]:
        """Both activities, to register on a domain worker."""
        return [self.launch, self.await_run]

    @activity.defn(name=SCHEDULED_LAUNCH_ACTIVITY)
    async def launch(self, request: ScheduledLaunchRequest) -> dict[str, Any]:
        """Launch the fire's run (see :func:`launch_fire`)."""
        return await launch_fire(self.client, self.database, request)

    @activity.defn(name=SCHEDULED_AWAIT_ACTIVITY)
    async def await_run(self, temporal_workflow_id: str) -> None:
        """Wait, heartbeating, until the launched run has ended (overlap ``skip`` and ``bufferOne``)."""

        async def beat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(10)

        beating = asyncio.create_task(beat())
        try:
            await await_run_end(self.client, temporal_workflow_id)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
