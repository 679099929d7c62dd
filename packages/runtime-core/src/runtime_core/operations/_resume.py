"""Resume (what Step Functions calls redrive): a FAILED run continues from the step that failed it.

When an action's failed attempt ends a run, the interpreter records where the run stood — the
failed step inside its sequences, loops, branches and try blocks, with the run's data — as the
failure's *resume point* (in the failure Temporal records, so Temporal stays the authority). A
resume starts a new Temporal execution of the same workflow id (the run keeps its id) from that
point, with the interpreter's continue-as-new machinery: nothing before the failed step runs
again, so no completed action runs twice, and the step's attempts continue after the failed ones
(its retry policy applies again to the new attempts).

Why not Temporal's reset of the execution: a reset replays the same history, so the execution
would fail the same way unless it is told to retry, and the dev server of this project (Temporal
1.32) refuses the post-reset signal that would tell it ("unsupported post reset operation"); a
signal sent after the reset races with the reset execution's first workflow task.

Refused (409): a run that is not FAILED; a child run (its parent has recorded its failure: resume
or replay the root); a run failed by its child (Temporal has closed the child's execution, so the
parent would start a new child run and run its completed actions again); a failure that is not a
failed action attempt (an expression or validation error fails the same way again: fix the cause
and replay); a failure inside a concurrent loop (other iterations were cancelled mid-flight).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import update
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from runtime_core.contract import TASK_QUEUE, WORKFLOW_TYPE, RunInput
from runtime_core.expressions import format_instant
from runtime_core.operations._errors import Conflict
from runtime_core.operations._runs import RunReads, summary
from runtime_core.operations._schemas import RunSummary
from runtime_core.persistence import RunRow, StepRow, utcnow
from runtime_core.values import safe_text

__all__ = ["Resuming"]


class Resuming(RunReads):
    """The resume operation."""

    async def resume_run(self, tenant: str, run_id: str, *, actor: str | None, reason: str | None) -> RunSummary:
        """Continue a FAILED run from the step that failed it (the run is RUNNING again when this returns).

        Raises:
            NotFound: No such run.
            Conflict: The run is not FAILED, or its failure cannot be resumed (the message says why).
        """
        row = await self.run_row(tenant, run_id)
        if row.status != "FAILED":
            raise Conflict(f"run {run_id} is {row.status}: only a FAILED run can be resumed")
        if row.parent_run_id is not None:
            raise Conflict(f"run {run_id} is a child of run {row.parent_run_id}: its parent has recorded its failure, so it cannot be resumed on its own; "
                           f"resume or replay the root run {row.root_run_id}")
        handle = self.client.get_workflow_handle(row.temporal_workflow_id)
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.FAILED:
            raise Conflict(f"run {run_id}'s Temporal execution is {described.status.name if described.status else 'unknown'}, not FAILED; reconcile it first")
        point = await self._resume_point(handle, row)
        started = await self._started_input(row.temporal_workflow_id, described.run_id)
        resumed = {"actor": actor, "reason": reason, "at": format_instant(utcnow()), "fromTemporalRunId": described.run_id}
        step_row = point["frames"][-1]["container"]["row"]
        new_input = replace(started, checkpoint={**point, "resumed": resumed}, payload={})
        try:
            new = await self.client.start_workflow(WORKFLOW_TYPE, new_input, id=row.temporal_workflow_id, task_queue=TASK_QUEUE,
                                                   id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        except WorkflowAlreadyStartedError:
            raise Conflict(f"run {run_id} is already running again (resumed concurrently)") from None
        await self._reopen(row, point, new.result_run_id)
        await self.record(tenant, run_id, "resume", actor, reason, {
            "stepPath": step_row["stepPath"], "stepId": step_row["stepId"], "attempt": step_row["attempts"] + 1, "temporalRunId": new.result_run_id,
        })
        return summary(await self.run_row(tenant, run_id))

    async def _resume_point(self, handle: Any, row: RunRow) -> dict[str, Any]:
        """The resume point recorded with the execution's failure.

        Raises:
            Conflict: The failure recorded none (it cannot be resumed; the message says why).
        """
        details: tuple[Any, ...] = ()
        try:
            await handle.result()
        except WorkflowFailureError as err:
            if isinstance(err.cause, ApplicationError):
                details = tuple(err.cause.details)
        for detail in details[1:]:
            if isinstance(detail, dict) and isinstance(detail.get("resumePoint"), dict):
                point: dict[str, Any] = detail["resumePoint"]
                return point
        error = row.error or {}
        category, path, message = error.get("category"), error.get("nodePath"), safe_text(str(error.get("message")), 300)
        if category == "ChildWorkflowError":
            raise Conflict(f"run {row.run_id} failed because its child run failed ({message}): a parent cannot wait again for a child whose execution Temporal "
                           "has closed, and a new child run would run its completed actions again; replay the run instead")
        raise Conflict(f"run {row.run_id} failed on {path or 'its end'} with {category}: {message}; only a failed action attempt outside a concurrent loop "
                       "can be resumed (this would fail the same way again): fix the definition or the input, then replay")

    async def _started_input(self, workflow_id: str, temporal_run_id: str) -> RunInput:
        """The input of the failed execution (the pinned definitions and options to continue with)."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=temporal_run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                values = await self.client.data_converter.decode(event.workflow_execution_started_event_attributes.input.payloads, [RunInput])
                started: RunInput = values[0]
                return started
            break
        raise Conflict(f"the history of {workflow_id} has no start; it cannot be resumed")

    async def _reopen(self, row: RunRow, point: dict[str, Any], temporal_run_id: str | None) -> None:
        """Show the run running again: its end undone, the failed step and its containers reopened."""
        seqs = [frame["container"]["row"]["seq"] for frame in point["frames"] if frame.get("container")]
        now = utcnow()
        async with self.database.sessions.begin() as session:
            await session.execute(update(RunRow).where(RunRow.run_id == row.run_id).values(
                status="RUNNING", error=None, result=None, ended_at=None, updated_at=now, **({"temporal_run_id": temporal_run_id} if temporal_run_id else {})))
            await session.execute(update(StepRow).where(StepRow.run_id == row.run_id, StepRow.seq.in_(seqs)).values(status="STARTED", ended_at=None, duration_ms=None))
