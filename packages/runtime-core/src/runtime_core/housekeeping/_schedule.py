"""The Temporal Schedule that starts the housekeeping workflow on the domain queue."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from runtime_core.config import ConfigError
from runtime_core.contract import HOUSEKEEPING_SCHEDULE_ID, HOUSEKEEPING_WORKFLOW

__all__ = ["ensure_housekeeping_schedule"]

log = logging.getLogger("runtime_core.housekeeping")


def _schedule(interval: timedelta, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            HOUSEKEEPING_WORKFLOW,
            id=f"{HOUSEKEEPING_SCHEDULE_ID}:run",
            task_queue=task_queue,
            # a pass that hangs must not block the next ones for ever (SKIP skips while one runs)
            execution_timeout=max(interval * 4, timedelta(hours=2)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_housekeeping_schedule(client: Client, interval_seconds: float, task_queue: str) -> str:
    """Create the ``wfr:housekeeping`` schedule, or bring its interval and queue up to date.

    Idempotent, and safe when several domain workers start at once: a schedule another one
    created meanwhile is updated instead.

    Args:
        client: Temporal client of the runtime's namespace.
        interval_seconds: How often a housekeeping pass starts (``WFR_HOUSEKEEPING_INTERVAL_SECONDS``).
        task_queue: The domain queue the workflow runs on (``WFR_DOMAIN_TASK_QUEUE``).

    Returns:
        ``created``, ``updated`` or ``unchanged``.

    Raises:
        ConfigError: ``interval_seconds`` is below one second.
    """
    if not interval_seconds >= 1:
        raise ConfigError(f"WFR_HOUSEKEEPING_INTERVAL_SECONDS must be at least 1 second (default 300), not {interval_seconds!r}")
    interval = timedelta(seconds=int(interval_seconds))
    wanted = _schedule(interval, task_queue)
    try:
        await client.create_schedule(HOUSEKEEPING_SCHEDULE_ID, wanted)
        log.info("created schedule %s: housekeeping every %s on %s", HOUSEKEEPING_SCHEDULE_ID, interval, task_queue)
        return "created"
    except ScheduleAlreadyRunningError:
        pass
    changed = False

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        nonlocal changed
        schedule = current.description.schedule
        action = schedule.action
        intervals = [spec.every for spec in schedule.spec.intervals]
        same = (intervals == [interval] and not schedule.spec.cron_expressions and not schedule.spec.calendars
                and isinstance(action, ScheduleActionStartWorkflow) and action.workflow == HOUSEKEEPING_WORKFLOW
                and action.task_queue == task_queue and schedule.policy.overlap == ScheduleOverlapPolicy.SKIP)
        if same:
            return None
        changed = True
        wanted.state = schedule.state  # keep a pause an operator set
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID).update(update)
    if changed:
        log.info("updated schedule %s: housekeeping every %s on %s", HOUSEKEEPING_SCHEDULE_ID, interval, task_queue)
    return "updated" if changed else "unchanged"
