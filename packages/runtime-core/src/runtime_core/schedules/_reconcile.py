"""Reconcile: one Temporal Schedule per ``schedule``/``recurring`` trigger of each workflow's latest version."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import select
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.contract import DOMAIN_TASK_QUEUE, SCHEDULED_LAUNCH_WORKFLOW, ScheduledLaunchInput
from runtime_core.dsl import RecurringTrigger, ScheduleTrigger, cron_problem, parse_instant, run_at_problem, timezone_problem
from runtime_core.persistence import Database, DefinitionVersion, WorkflowDefinitionRow
from runtime_core.schedules._ids import parse_schedule_id, schedule_id, trigger_key

__all__ = ["DesiredSchedule", "ReconcileReport", "desired_schedule", "reconcile_schedules"]

log = logging.getLogger(__name__)

#: Trigger types that own a Temporal Schedule.
SCHEDULED_TYPES = ("schedule", "recurring")
_OVERLAP = {"skip": ScheduleOverlapPolicy.SKIP, "bufferOne": ScheduleOverlapPolicy.BUFFER_ONE, "allow": ScheduleOverlapPolicy.ALLOW_ALL}
#: Temporal calls made at once by one reconcile.
_CONCURRENCY = 8


@dataclass
class ReconcileReport:
    """What a reconcile did, by schedule id; ``problems`` names each schedule it could not converge and why."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON form (lists sorted)."""
        return {name: sorted(getattr(self, name)) for name in ("created", "updated", "deleted", "unchanged", "problems")}


@dataclass(frozen=True)
class DesiredSchedule:
    """The schedule one published trigger should have."""

    schedule_id: str
    tenant: str
    workflow_id: str
    trigger: dict[str, Any]
    schedule: Schedule

    @property
    def memo(self) -> dict[str, Any]:
        """The schedule's memo: ``{tenant, workflowId, trigger, triggerKey}``."""
        return {"tenant": self.tenant, "workflowId": self.workflow_id, "trigger": self.trigger, "triggerKey": trigger_key(self.trigger)}


def desired_schedule(tenant: str, workflow_id: str, trigger: dict[str, Any], *, task_queue: str = DOMAIN_TASK_QUEUE) -> DesiredSchedule:
    """The Temporal Schedule of a published ``schedule`` or ``recurring`` trigger.

    A ``recurring`` trigger is its cron expression in its zone; a ``schedule`` trigger is one
    calendar instant (UTC, rounded up to the second) with a single action. The action starts
    :data:`~runtime_core.contract.SCHEDULED_LAUNCH_WORKFLOW` on ``task_queue``.

    Raises:
        ValueError: The trigger is not one publishing accepts now (a definition published before
            triggers were checked); the message names the field and the fix.
    """
    sid = schedule_id(tenant, workflow_id, trigger)
    if trigger.get("type") == "recurring":
        model_r = RecurringTrigger.model_validate(trigger)
        problem = cron_problem(model_r.cron) or timezone_problem(model_r.timezone)
        if problem:
            raise ValueError(f"trigger.{'cron' if cron_problem(model_r.cron) else 'timezone'}: {problem}")
        spec = ScheduleSpec(cron_expressions=[model_r.cron.strip()], time_zone_name=model_r.timezone)
        policy = SchedulePolicy(overlap=_OVERLAP[model_r.overlap], catchup_window=timedelta(milliseconds=model_r.catchupWindowMs))
        state = ScheduleState()
        await_run = model_r.overlap != "allow"
    elif trigger.get("type") == "schedule":
        model_s = ScheduleTrigger.model_validate(trigger)
        instant = parse_instant(model_s.runAt)
        if instant is None:
            raise ValueError(f"trigger.runAt: {run_at_problem(model_s.runAt)}")
        at = instant.astimezone(UTC)
        if at.microsecond:
            at = at.replace(microsecond=0) + timedelta(seconds=1)
        spec = ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                second=[ScheduleRange(at.second)], minute=[ScheduleRange(at.minute)], hour=[ScheduleRange(at.hour)],
                day_of_month=[ScheduleRange(at.day)], month=[ScheduleRange(at.month)], year=[ScheduleRange(at.year)],
            )],
            time_zone_name="UTC",
        )
        policy = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(milliseconds=model_s.catchupWindowMs))
        state = ScheduleState(limited_actions=True, remaining_actions=1)
        await_run = False
    else:
        raise ValueError(f"a {trigger.get('type')!r} trigger has no schedule")
    action = ScheduleActionStartWorkflow(
        SCHEDULED_LAUNCH_WORKFLOW,
        ScheduledLaunchInput(tenant=tenant, workflow_id=workflow_id, schedule_id=sid, trigger_type=str(trigger["type"]), await_run=await_run),
        id=f"{sid}:fire",
        task_queue=task_queue,
    )
    return DesiredSchedule(sid, tenant, workflow_id, trigger, Schedule(action=action, spec=spec, policy=policy, state=state))


async def reconcile_schedules(
    database: Database,
    client: Client,
    *,
    tenant: str | None = None,
    workflow_id: str | Collection[str] | None = None,
    task_queue: str = DOMAIN_TASK_QUEUE,
) -> ReconcileReport:
    """Make Temporal's ``wfr:`` schedules match the triggers of the latest published versions.

    Desired: one schedule per ``schedule``/``recurring`` trigger of the latest version of each
    ``(tenant, workflow)``. Existing: the schedules listed by Temporal (whole-runtime reconcile
    only), plus a describe of every id a version of an in-scope workflow ever had (listing is
    eventually consistent). Missing ones are created, ones whose action or policies differ are
    updated (their paused state and note kept), ones no longer desired are deleted. "Already
    exists" on create and "not found" on describe/delete count as converged, so re-running after
    a crash half-way, or concurrently, converges. A schedule that fails is named in ``problems``
    and the others still converge.

    Args:
        database: The runtime database (published definitions).
        client: Temporal client of the authored namespace.
        tenant: Only this tenant's schedules (all when omitted).
        workflow_id: Only this workflow, or these workflows (all when omitted). Scoped reconciles
            do not list Temporal's schedules and make no Temporal call for workflows that never
            had a scheduled trigger.
        task_queue: The domain queue the fire workflow runs on.

    Returns:
        The schedule ids created, updated, deleted and unchanged, and the problems.
    """
    report = ReconcileReport()
    workflows = {workflow_id} if isinstance(workflow_id, str) else (set(workflow_id) if workflow_id is not None else None)
    query = (
        select(DefinitionVersion.tenant, DefinitionVersion.workflow_id, DefinitionVersion.version, DefinitionVersion.document, WorkflowDefinitionRow.latest_version)
        .join(WorkflowDefinitionRow, (WorkflowDefinitionRow.tenant == DefinitionVersion.tenant) & (WorkflowDefinitionRow.workflow_id == DefinitionVersion.workflow_id))
        .where(DefinitionVersion.trigger_type.in_(SCHEDULED_TYPES))
    )
    if tenant is not None:
        query = query.where(DefinitionVersion.tenant == tenant)
    if workflows is not None:
        if not workflows:
            return report
        query = query.where(DefinitionVersion.workflow_id.in_(sorted(workflows)))
    async with database.sessions() as session:
        rows = (await session.execute(query)).all()

    desired: dict[str, DesiredSchedule] = {}
    candidates: set[str] = set()
    for row_tenant, row_workflow, version, document, latest in rows:
        trigger = document.get("trigger")
        if not isinstance(trigger, dict):
            continue
        sid = schedule_id(row_tenant, row_workflow, trigger)
        candidates.add(sid)
        if version != latest:
            continue
        try:
            desired[sid] = desired_schedule(row_tenant, row_workflow, trigger, task_queue=task_queue)
        except ValueError as err:
            report.problems.append(f"{sid}: {row_workflow} version {version} has a trigger no schedule can run ({err}); publish a new version that fixes it")

    if workflows is None:
        try:
            async for entry in await client.list_schedules():
                parsed = parse_schedule_id(entry.id)
                if parsed is not None and (tenant is None or parsed[0] == tenant):
                    candidates.add(entry.id)
        except RPCError as err:
            report.problems.append(f"listing Temporal's schedules failed ({err.status.name}: {err.message}); only schedules of published versions were checked")

    gate = asyncio.Semaphore(_CONCURRENCY)

    async def converge(sid: str) -> None:
        async with gate:
            try:
                await _converge(client, sid, desired.get(sid), report)
            except Exception as err:
                log.warning("reconciling schedule %s failed: %s", sid, err)
                report.problems.append(f"{sid}: {type(err).__name__}: {err}")

    await asyncio.gather(*(converge(sid) for sid in sorted(candidates)))
    if report.created or report.updated or report.deleted or report.problems:
        log.info("schedules reconciled: %s", report.to_dict())
    return report


async def _describe(client: Client, sid: str) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def _converge(client: Client, sid: str, want: DesiredSchedule | None, report: ReconcileReport) -> None:
    description = await _describe(client, sid)
    handle = client.get_schedule_handle(sid)
    if want is None:
        if description is None:
            return
        try:
            await handle.delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        report.deleted.append(sid)
        return
    if description is None:
        try:
            await client.create_schedule(sid, want.schedule, memo=want.memo)
            report.created.append(sid)
            return
        except ScheduleAlreadyRunningError:
            description = await _describe(client, sid)  # created concurrently: compare it like any other
            if description is None:
                raise
    if await _matches(client, description, want):
        report.unchanged.append(sid)
        return

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # the operator's pause, note and a one-time schedule's used action are kept
        state = current.description.schedule.state
        return ScheduleUpdate(schedule=dataclasses.replace(want.schedule, state=dataclasses.replace(
            want.schedule.state, paused=state.paused, note=state.note,
            remaining_actions=state.remaining_actions if want.schedule.state.limited_actions else 0,
        )))

    await handle.update(update)
    report.updated.append(sid)


async def _matches(client: Client, description: ScheduleDescription, want: DesiredSchedule) -> bool:
    """Whether the schedule's action and policies are the desired ones (its spec is fixed by the id's trigger key)."""
    have, action = description.schedule, want.schedule.action
    if not isinstance(have.action, ScheduleActionStartWorkflow) or not isinstance(action, ScheduleActionStartWorkflow):
        return False
    if (have.action.workflow, have.action.task_queue, have.action.id) != (action.workflow, action.task_queue, action.id):
        return False
    raw = list(have.action.args)
    args = await client.data_converter.decode(raw) if raw and isinstance(raw[0], Payload) else raw
    if args != [dataclasses.asdict(a) if dataclasses.is_dataclass(a) and not isinstance(a, type) else a for a in action.args]:
        return False
    want_policy = want.schedule.policy
    return bool(have.policy.overlap == want_policy.overlap and have.policy.catchup_window == want_policy.catchup_window)
