"""The schedules of a tenant's triggers: list, show, pause, unpause, trigger now.

Temporal is the authority on a schedule (its state, next fires, recent fires): these operations
read and act on it, scoped to the tenant by the schedule id (``wfr:{tenant}:{workflowId}:{key}``,
see :mod:`runtime_core.schedules`). Another tenant's schedule, or one that is not a trigger's,
is reported exactly like a missing one. Which schedules exist is decided by publishing (the
reconcile of :mod:`runtime_core.schedules`), never here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from temporalio.client import ScheduleActionExecutionStartWorkflow, ScheduleDescription, ScheduleHandle
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.operations._base import OperationsBase, text_param
from runtime_core.operations._errors import Conflict, NotFound
from runtime_core.operations._schemas import _In, _Out
from runtime_core.schedules import parse_schedule_id

__all__ = ["ScheduleFire", "ScheduleNoteRequest", "ScheduleView", "Schedules"]



class ScheduleFire(_Out):
    """One recent fire of a schedule."""

    scheduledAt: str
    startedAt: str
    fireWorkflowId: str = Field(description="The domain-queue workflow that launched the run for this fire.")


class ScheduleView(_Out):
    """A trigger's Temporal Schedule, as Temporal describes it."""

    scheduleId: str
    workflowId: str
    triggerKey: str
    trigger: dict[str, Any] | None = Field(description="The trigger as published (`schedule` or `recurring`).")
    paused: bool
    note: str | None
    nextFires: list[str] = Field(description="The next fire times Temporal has computed (RFC 3339).")
    recentFires: list[ScheduleFire]
    fires: int = Field(description="Fires so far.")
    missedCatchupWindow: int = Field(description="Fires dropped because they were older than the catch-up window.")
    skippedOverlap: int = Field(description="Fires skipped because the previous run was still going (overlap policy).")


class ScheduleNoteRequest(_In):
    """Why a schedule is paused, unpaused or triggered (kept as the schedule's note)."""

    reason: str | None = Field(default=None, max_length=2000)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Schedules(OperationsBase):
    """Operations on the Temporal Schedules of a tenant's `schedule` and `recurring` triggers."""

    def _handle(self, tenant: str, schedule_id: str) -> tuple[ScheduleHandle, tuple[str, str, str]]:
        text_param(schedule_id, "scheduleId", max_length=400)
        parts = parse_schedule_id(schedule_id)
        if parts is None or parts[0] != tenant:
            raise NotFound(f"schedule {schedule_id[:200]} not found")
        return self.client.get_schedule_handle(schedule_id), parts

    async def _describe(self, tenant: str, schedule_id: str) -> tuple[ScheduleHandle, ScheduleDescription, tuple[str, str, str]]:
        handle, parts = self._handle(tenant, schedule_id)
        try:
            return handle, await handle.describe(), parts
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"schedule {schedule_id} not found") from None
            raise

    @staticmethod
    async def _view(description: ScheduleDescription, parts: tuple[str, str, str]) -> ScheduleView:
        memo = await description.memo()
        info = description.info
        state = description.schedule.state
        trigger = memo.get("trigger") if isinstance(memo.get("trigger"), dict) else None
        recent = [
            ScheduleFire(scheduledAt=_iso(a.scheduled_at), startedAt=_iso(a.started_at),
                         fireWorkflowId=a.action.workflow_id if isinstance(a.action, ScheduleActionExecutionStartWorkflow) else "")
            for a in info.recent_actions
        ]
        return ScheduleView(
            scheduleId=description.id, workflowId=parts[1], triggerKey=parts[2], trigger=trigger, paused=state.paused, note=state.note or None,
            nextFires=[_iso(t) for t in info.next_action_times], recentFires=recent, fires=info.num_actions,
            missedCatchupWindow=info.num_actions_missed_catchup_window, skippedOverlap=info.num_actions_skipped_overlap,
        )

    async def list_schedules(self, tenant: str, *, workflow_id: str | None = None) -> list[ScheduleView]:
        """The tenant's trigger schedules (optionally of one workflow), by workflow then id.

        Temporal lists schedules eventually: one created a moment ago may appear a second later.
        """
        if workflow_id is not None:
            text_param(workflow_id, "workflowId", max_length=200)
        ids = sorted([s.id async for s in await self.client.list_schedules()
                      if (parsed := parse_schedule_id(s.id)) is not None and parsed[0] == tenant and workflow_id in (None, parsed[1])])
        views: list[ScheduleView] = []
        for schedule_id in ids:
            try:
                _, description, parts = await self._describe(tenant, schedule_id)
            except NotFound:
                continue  # deleted since it was listed
            views.append(await self._view(description, parts))
        return sorted(views, key=lambda v: (v.workflowId, v.scheduleId))

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleView:
        """One of the tenant's trigger schedules.

        Raises:
            NotFound: No such schedule, or another tenant's.
        """
        _, description, parts = await self._describe(tenant, schedule_id)
        return await self._view(description, parts)

    async def pause_schedule(self, tenant: str, schedule_id: str, *, actor: str | None, reason: str | None) -> ScheduleView:
        """Stop a schedule from firing until it is unpaused (the note records who and why).

        Publishing a new version keeps a paused schedule paused.

        Raises:
            NotFound: No such schedule, or another tenant's.
            Conflict: It is already paused.
        """
        handle, description, _ = await self._describe(tenant, schedule_id)
        if description.schedule.state.paused:
            raise Conflict(f"schedule {schedule_id} is already paused ({description.schedule.state.note or 'no note'})")
        await handle.pause(note=_note("paused", actor, reason))
        return await self.get_schedule(tenant, schedule_id)

    async def unpause_schedule(self, tenant: str, schedule_id: str, *, actor: str | None, reason: str | None) -> ScheduleView:
        """Let a paused schedule fire again (fires missed while paused are not made up).

        Raises:
            NotFound: No such schedule, or another tenant's.
            Conflict: It is not paused.
        """
        handle, description, _ = await self._describe(tenant, schedule_id)
        if not description.schedule.state.paused:
            raise Conflict(f"schedule {schedule_id} is not paused")
        await handle.unpause(note=_note("unpaused", actor, reason))
        return await self.get_schedule(tenant, schedule_id)

    async def trigger_schedule(self, tenant: str, schedule_id: str) -> ScheduleView:
        """Fire a schedule now, once, whatever its spec says (a paused schedule fires too).

        The fire launches a run like any other (one run per fire, recorded as triggered by the schedule).

        Raises:
            NotFound: No such schedule, or another tenant's.
        """
        handle, _, _ = await self._describe(tenant, schedule_id)
        await handle.trigger()
        return await self.get_schedule(tenant, schedule_id)


def _note(what: str, actor: str | None, reason: str | None) -> str:
    return f"{what} by {actor or 'unknown'}" + (f": {reason}" if reason else "")
