"""The Temporal Schedules of the tenant's `schedule` and `recurring` triggers: read, pause, unpause, fire now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from runtime_bootstrap.api._common import whole
from runtime_bootstrap.api._deps import Operator, Ops, Viewer
from runtime_core.dsl import ID_PATTERN, MAX_ID_LENGTH
from runtime_core.operations import Page, ScheduleNoteRequest, ScheduleView

__all__ = ["router"]

router = APIRouter(tags=["schedules"])

ScheduleId = Annotated[str, Path(alias="scheduleId", max_length=400, description="`wfr:{tenant}:{workflowId}:{triggerKey}`, as listed.")]
_STATE: dict[int | str, dict[str, Any]] = {409: {"description": "Already paused (pause) or not paused (unpause)."}}


@router.get("/schedules", response_model=Page[ScheduleView])
async def list_schedules(who: Viewer, ops: Ops,
                         workflow_id: Annotated[str | None, Query(alias="workflowId", max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Only this workflow's.")] = None) -> Page[ScheduleView]:
    """The tenant's trigger schedules with their state, next and recent fires (Temporal lists a new one within a second or so)."""
    return whole(await ops.list_schedules(who.tenant, workflow_id=workflow_id))


@router.get("/schedules/{scheduleId}", response_model=ScheduleView)
async def get_schedule(schedule_id: ScheduleId, who: Viewer, ops: Ops) -> ScheduleView:
    """One trigger schedule."""
    return await ops.get_schedule(who.tenant, schedule_id)


@router.post("/schedules/{scheduleId}/pause", response_model=ScheduleView, responses=_STATE)
async def pause_schedule(schedule_id: ScheduleId, who: Operator, ops: Ops, body: ScheduleNoteRequest | None = None) -> ScheduleView:
    """Stop the schedule firing until it is unpaused; the note records who and why."""
    return await ops.pause_schedule(who.tenant, schedule_id, actor=who.actor, reason=body.reason if body else None)


@router.post("/schedules/{scheduleId}/unpause", response_model=ScheduleView, responses=_STATE)
async def unpause_schedule(schedule_id: ScheduleId, who: Operator, ops: Ops, body: ScheduleNoteRequest | None = None) -> ScheduleView:
    """Let a paused schedule fire again (fires missed while paused are not made up)."""
    return await ops.unpause_schedule(who.tenant, schedule_id, actor=who.actor, reason=body.reason if body else None)


@router.post("/schedules/{scheduleId}/trigger", status_code=202, response_model=ScheduleView)
async def trigger_schedule(schedule_id: ScheduleId, who: Operator, ops: Ops) -> ScheduleView:
    """Fire the schedule once now (it launches one run, recorded as triggered by the schedule)."""
    return await ops.trigger_schedule(who.tenant, schedule_id)
