"""Acting on runs: cancel (one or many), replay, reconcile with Temporal."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, update
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.contract import RunInput
from runtime_core.dsl import schema_problems
from runtime_core.launcher import LaunchError
from runtime_core.operations._base import TERMINAL, storable
from runtime_core.operations._errors import Conflict, Invalid, NotFound
from runtime_core.operations._runs import RunReads, summary
from runtime_core.operations._schemas import BulkCancelRequest, BulkCancelResult, FieldError, ReconcileResult, ReplayCheck, RunFilter, RunSummary
from runtime_core.persistence import DefinitionVersion, RunAction, RunRow, StepRow, TaskRow, WaitRow, utcnow
from runtime_core.values import safe_text

__all__ = ["RunActions"]


class RunActions(RunReads):
    """Operations that change runs."""

    # ---------------------------------------------------------------------------------- cancel

    async def cancel_run(self, tenant: str, run_id: str, *, actor: str | None, reason: str | None) -> dict[str, Any]:
        """Operator cancel of a root run: children first, then its steps, waits and tasks end CANCELED.

        A run whose Temporal execution has already closed (terminated, timed out) or is gone is
        reconciled instead: its row gets the end Temporal knows.

        Returns:
            ``{"runId", "status"}``: ``CANCEL_REQUESTED``, or the status reconciliation gave.

        Raises:
            NotFound: No such run for this tenant.
            Conflict: The run has ended, or is a child (cancel its root).
        """
        row = await self.run_row(tenant, run_id)
        if row.status in TERMINAL:
            raise Conflict(f"run {run_id} has already ended {row.status}")
        if row.parent_run_id is not None:
            raise Conflict(f"run {run_id} is a child of run {row.parent_run_id}: cancel its root run {row.root_run_id}")
        reconciled = await self._reconcile_row(row, actor=actor, reason=reason)
        if reconciled is not None:
            return {"runId": run_id, "status": reconciled["status"]}
        try:
            await self.client.get_workflow_handle(row.temporal_workflow_id).cancel()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            reconciled = await self._reconcile_row(row, actor=actor, reason=reason)
            return {"runId": run_id, "status": reconciled["status"] if reconciled else row.status}
        await self.record(tenant, run_id, "cancel", actor, reason)
        return {"runId": run_id, "status": "CANCEL_REQUESTED"}

    async def bulk_cancel(self, tenant: str, request: BulkCancelRequest, *, actor: str | None) -> BulkCancelResult:
        """Cancel runs by id or by filter; ``dryRun`` reports what would be cancelled.

        Raises:
            Invalid: Neither or both of ``runIds`` and ``filter``.
        """
        if (request.runIds is None) == (request.filter is None):
            raise Invalid("give either runIds or filter", errors=[{"path": "runIds", "code": "ONE_OF", "message": "exactly one of runIds and filter"}])
        skipped: list[dict[str, str]] = []
        rows: list[RunRow] = []
        if request.runIds is not None:
            for run_id in dict.fromkeys(request.runIds):
                try:
                    rows.append(await self.run_row(tenant, run_id))
                except NotFound:
                    skipped.append({"runId": run_id, "reason": "not found"})
        else:
            assert request.filter is not None
            flt = request.filter
            wanted = RunFilter(status=flt.status or ["RUNNING", "WAITING"], workflowId=flt.workflowId, startedAfter=flt.startedAfter,
                               startedBefore=flt.startedBefore, rootOnly=True, stuck=flt.stuck)
            async with self.database.sessions() as session:
                rows = list((await session.execute(self.filtered(tenant, wanted).limit(10_000))).scalars())
            if flt.stuck:
                diagnosed = await self.diagnoser.for_rows(rows)
                rows = [r for r in rows if r.run_id in diagnosed]
        requested = await self._cancel_requested([r.run_id for r in rows])
        cancelable = []
        for row in rows:
            if row.run_id in requested and row.status not in TERMINAL:
                skipped.append({"runId": row.run_id, "reason": "a cancel is already in progress"})
            elif row.status in TERMINAL:
                skipped.append({"runId": row.run_id, "reason": f"already ended {row.status}"})
            elif row.parent_run_id is not None:
                skipped.append({"runId": row.run_id, "reason": f"a child run: cancel its root {row.root_run_id}"})
            else:
                cancelable.append(row)
        if request.dryRun:
            return BulkCancelResult(matched=len(rows), canceled=[r.run_id for r in cancelable], skipped=skipped, dryRun=True)
        canceled: list[str] = []
        bound = asyncio.Semaphore(16)

        async def one(row: RunRow) -> None:
            async with bound:
                try:
                    await self.cancel_run(tenant, row.run_id, actor=actor, reason=request.reason)
                    canceled.append(row.run_id)
                except Conflict as err:
                    skipped.append({"runId": row.run_id, "reason": err.detail})

        await asyncio.gather(*(one(r) for r in cancelable))
        order = {r.run_id: i for i, r in enumerate(cancelable)}
        return BulkCancelResult(matched=len(rows), canceled=sorted(canceled, key=order.__getitem__), skipped=skipped)

    async def _cancel_requested(self, run_ids: list[str]) -> set[str]:
        """The runs among ``run_ids`` whose cancel was already requested."""
        if not run_ids:
            return set()
        async with self.database.sessions() as session:
            return set((await session.execute(select(RunAction.run_id).where(RunAction.run_id.in_(run_ids), RunAction.action == "cancel"))).scalars())

    # ---------------------------------------------------------------------------------- replay

    async def replay_run(self, tenant: str, run_id: str, *, payload: dict[str, Any] | None, actor: str | None, reason: str | None) -> RunSummary:
        """A new run of the same workflow version, from the original input or an edited payload.

        Without ``payload`` the run's input exactly as launched is used, never the redacted copy
        shown: the launcher keeps it, and for older runs Temporal's history has it.

        Raises:
            NotFound: No such run.
            Invalid: The edited payload does not fit the workflow's ``payloadSchema``.
            Conflict: The version can no longer be launched.
        """
        row = await self.run_row(tenant, run_id)
        original = payload if payload is not None else await self._original_input(row)
        try:
            launched = await self.launcher.launch(
                tenant, row.workflow_id, original, version=row.workflow_version, replay_of_run_id=run_id,
                trigger={"type": "replay", "replayOfRunId": run_id, "actor": actor},
            )
        except LaunchError as err:
            if err.problems:
                raise Invalid(str(err), errors=[{"path": p.get("path", "payload"), "code": "SCHEMA", "message": p.get("message", "")} for p in err.problems]) from None
            raise Conflict(str(err)) from None
        await self.record(tenant, run_id, "replay", actor, reason, {"newRunId": launched.run_id, "editedPayload": payload is not None})
        await self.record(tenant, launched.run_id, "replay-of", actor, reason, {"runId": run_id})
        return summary(await self.run_row(tenant, launched.run_id))

    async def check_replay_payload(self, tenant: str, run_id: str, payload: dict[str, Any] | None) -> ReplayCheck:
        """What a replay of ``run_id`` with ``payload`` would meet, launching nothing (a dry run).

        The payload is checked against the ``payloadSchema`` of the run's pinned version, as the
        launch would check it; without ``payload`` the original input is checked.

        Returns:
            ``valid`` and one error per failing path (``payload.n``), empty when valid.

        Raises:
            NotFound: No such run for this tenant.
            Conflict: The run's version is no longer stored, or (without ``payload``) its original input is gone.
        """
        row = await self.run_row(tenant, run_id)
        checked = payload if payload is not None else await self._original_input(row)
        async with self.database.sessions() as session:
            document = (await session.execute(select(DefinitionVersion.document).where(
                DefinitionVersion.tenant == tenant, DefinitionVersion.workflow_id == row.workflow_id,
                DefinitionVersion.version == row.workflow_version))).scalar_one_or_none()
        if document is None:
            raise Conflict(f"version {row.workflow_version} of workflow {row.workflow_id!r} is no longer stored: run {run_id} cannot be replayed")
        schema = document.get("payloadSchema")
        problems = schema_problems(schema, checked, "payload") if isinstance(schema, dict) else []
        errors = [FieldError(path=p["path"], code="SCHEMA", message=p["message"]) for p in problems]
        return ReplayCheck(valid=not errors, errors=errors)

    async def _original_input(self, row: RunRow) -> dict[str, Any]:
        if row.launch_payload is not None:
            return dict(row.launch_payload)
        # runs launched before the launcher kept the payload, and child runs: the first
        # execution's input in Temporal's history is the payload as launched
        handle = self.client.get_workflow_handle(row.temporal_workflow_id, run_id=row.temporal_run_id)
        async for event in handle.fetch_history_events():
            attrs = event.workflow_execution_started_event_attributes
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                if attrs.continued_execution_run_id:  # a continued execution: its payload is not the original
                    break
                values = await self.client.data_converter.decode(attrs.input.payloads, [RunInput])
                original = values[0].payload
                return dict(original) if isinstance(original, dict) else {}
            break
        raise Conflict(f"the original input of run {row.run_id} is no longer available; replay it with an edited payload")

    # ------------------------------------------------------------------------------- reconcile

    async def reconcile(self, tenant: str | None, run_ids: list[str] | None = None, *, actor: str | None = None, limit: int = 1000) -> ReconcileResult:
        """Give every open run whose Temporal execution has ended or is gone the end Temporal knows.

        Args:
            tenant: Whose runs (``None``: every tenant, for the domain worker's sweep).
            run_ids: Only these runs (default: every open run, oldest first, at most ``limit``).
            actor: Who asked (recorded on each reconciled run).
            limit: At most this many runs are checked.
        """
        query = select(RunRow).where(RunRow.status.in_(("RUNNING", "WAITING")))
        if tenant is not None:
            query = query.where(RunRow.tenant == tenant)
        if run_ids is not None:
            query = query.where(RunRow.run_id.in_([r for r in run_ids if storable(r) and len(r) <= 64]))
        async with self.database.sessions() as session:
            rows = list((await session.execute(query.order_by(RunRow.created_at).limit(limit))).scalars())
        bound = asyncio.Semaphore(16)
        reconciled: list[dict[str, Any]] = []

        async def one(row: RunRow) -> None:
            async with bound:
                done = await self._reconcile_row(row, actor=actor, reason=None)
                if done is not None:
                    reconciled.append(done)

        await asyncio.gather(*(one(r) for r in rows))
        open_ids = {r.run_id for r in rows}
        not_open = [r for r in dict.fromkeys(run_ids or []) if r not in open_ids]
        return ReconcileResult(checked=len(rows), reconciled=sorted(reconciled, key=lambda d: d["runId"]), notOpen=not_open)

    async def _reconcile_row(self, row: RunRow, *, actor: str | None, reason: str | None) -> dict[str, Any] | None:
        """End an open run whose execution Temporal has closed or lost; ``None`` when it still runs."""
        handle = self.client.get_workflow_handle(row.temporal_workflow_id)
        try:
            described = await handle.describe()
            status = described.status
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            status = None
        if status == WorkflowExecutionStatus.RUNNING:
            return None
        result: dict[str, Any] | None = None
        if status is None:
            new, error = "FAILED", {"category": "InterpreterCorruption", "code": "EXECUTION_GONE", "message": "Temporal has no execution for this run (deleted, or past its retention)"}
        elif status == WorkflowExecutionStatus.COMPLETED:
            new, error = "SUCCEEDED", None
            try:
                value = await handle.result()
                result = {"payload": value.get("payload"), "vars": value.get("vars"), "meta": value.get("meta")} if isinstance(value, dict) else None
            except Exception:
                result = None
        elif status == WorkflowExecutionStatus.CANCELED:
            new, error = "CANCELED", {"category": "Cancellation", "message": "the run was cancelled"}
        elif status == WorkflowExecutionStatus.TERMINATED:
            why = await self._termination_reason(row.temporal_workflow_id)
            new, error = "CANCELED", {"category": "Cancellation", "code": "TERMINATED", "message": f"the Temporal execution was terminated outside the runtime: {why}"}
        elif status == WorkflowExecutionStatus.TIMED_OUT:
            new, error = "FAILED", {"category": "InterpreterCorruption", "code": "EXECUTION_TIMED_OUT", "message": "the Temporal execution timed out"}
        else:  # FAILED (its end was not recorded), CONTINUED_AS_NEW cannot be the latest run
            new, error = "FAILED", await self._failure(handle)
        ended = utcnow()
        async with self.database.sessions.begin() as session:
            changed = await session.execute(
                update(RunRow).where(RunRow.run_id == row.run_id, RunRow.status.in_(("RUNNING", "WAITING")))
                .values(status=new, error=error, ended_at=ended, updated_at=ended, **({"result": result} if result is not None else {}))
            )
            if getattr(changed, "rowcount", 0) != 1:
                return None  # the run ended meanwhile on its own
            closed = "CANCELED" if new == "CANCELED" else "FAILED"
            await session.execute(update(StepRow).where(StepRow.run_id == row.run_id, StepRow.status == "STARTED").values(status=closed, ended_at=ended))
            await session.execute(update(WaitRow).where(WaitRow.run_id == row.run_id, WaitRow.status == "WAITING").values(status="CANCELED", resolved_at=ended))
            await session.execute(update(TaskRow).where(TaskRow.run_id == row.run_id, TaskRow.status == "PENDING").values(status="CANCELED", completed_at=ended))
        message = error["message"] if error else "the execution had completed"
        await self.record(row.tenant, row.run_id, "reconcile", actor, reason, {"temporalStatus": status.name if status else "NOT_FOUND", "status": new, "message": message})
        return {"runId": row.run_id, "status": new, "temporalStatus": status.name if status else "NOT_FOUND", "reason": message}

    async def _termination_reason(self, workflow_id: str) -> str:
        request = GetWorkflowExecutionHistoryReverseRequest(namespace=self.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id), maximum_page_size=5)
        response = await self.client.workflow_service.get_workflow_execution_history_reverse(request)
        for event in response.history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                attrs = event.workflow_execution_terminated_event_attributes
                who = f" by {attrs.identity}" if attrs.identity else ""
                return safe_text(f"{attrs.reason or 'no reason given'}{who}", 500)
        return "no reason given"

    @staticmethod
    async def _failure(handle: Any) -> dict[str, Any]:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
                return dict(cause.details[0])
            return {"category": "InterpreterCorruption", "message": safe_text(str(cause or err), 2000)}
        except Exception as err:
            return {"category": "InterpreterCorruption", "message": safe_text(f"{type(err).__name__}: {err}", 2000)}
        return {"category": "InterpreterCorruption", "message": "the execution failed"}
