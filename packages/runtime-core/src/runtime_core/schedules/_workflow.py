"""The fire workflow: what each fire of a trigger's schedule starts on the domain queue.

Deterministic workflow code: it imports only the contract and reaches its activities by name.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from runtime_core.contract import (
        SCHEDULED_AWAIT_ACTIVITY,
        SCHEDULED_LAUNCH_ACTIVITY,
        SCHEDULED_LAUNCH_WORKFLOW,
        ScheduledLaunchInput,
        ScheduledLaunchRequest,
    )

__all__ = ["LAUNCH_REFUSED", "SCHEDULED_START_TIME", "ScheduledLaunchWorkflow", "format_scheduled_time"]

#: Search attribute Temporal sets on every workflow a schedule starts: the fire's nominal time.
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
#: Error type of a launch that can never succeed (not published any more, payload refused).
LAUNCH_REFUSED = "ScheduledLaunchRefused"


def format_scheduled_time(value: datetime) -> str:
    """A fire's scheduled time as RFC 3339 UTC with milliseconds (``2026-11-25T10:00:00.000Z``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.astimezone(UTC).microsecond // 1000:03d}Z"


@workflow.defn(name=SCHEDULED_LAUNCH_WORKFLOW)
class ScheduledLaunchWorkflow:
    """One fire: launch the latest published version, then (overlap ``skip``/``bufferOne``) wait for that run to end."""

    @workflow.run
    async def run(self, request: ScheduledLaunchInput) -> dict[str, Any]:
        """Launch the fire's run exactly once and report it.

        The launch's idempotency key is the schedule id and the fire's scheduled time (from the
        ``TemporalScheduledStartTime`` search attribute, else this workflow's start time), so a
        retried activity or a restarted worker finds the same run instead of starting another.
        A launch that can never succeed ends the fire with ``launched: false`` and the reason.
        """
        info = workflow.info()
        scheduled = info.typed_search_attributes.get(SCHEDULED_START_TIME) or info.start_time
        launch = ScheduledLaunchRequest(
            tenant=request.tenant, workflow_id=request.workflow_id, schedule_id=request.schedule_id,
            trigger_type=request.trigger_type, scheduled_at=format_scheduled_time(scheduled),
        )
        try:
            launched: dict[str, Any] = await workflow.execute_activity(
                SCHEDULED_LAUNCH_ACTIVITY, launch, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60), non_retryable_error_types=[LAUNCH_REFUSED]),
                result_type=dict,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == LAUNCH_REFUSED:
                workflow.logger.warning("schedule %s: the fire of %s launched nothing: %s", request.schedule_id, launch.scheduled_at, cause.message)
                return {"launched": False, "scheduleId": request.schedule_id, "scheduledAt": launch.scheduled_at, "reason": cause.message}
            raise
        if request.await_run:
            await workflow.execute_activity(
                SCHEDULED_AWAIT_ACTIVITY, launched["temporalWorkflowId"], start_to_close_timeout=timedelta(days=36500),
                heartbeat_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)),
            )
        return {"launched": True, "scheduleId": request.schedule_id, "scheduledAt": launch.scheduled_at, **launched}
