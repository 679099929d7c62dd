"""Reading runs: lists, a run, its steps, waits, tasks, invocations, events, children, live view, export."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from temporalio.service import RPCError

from runtime_core.contract import QUERY_CURRENT_STEP, QUERY_CURRENT_WAIT, QUERY_INTERPRETER_SUMMARY
from runtime_core.operations._base import TERMINAL, OperationsBase, check_limit, decode_cursor, encode_cursor, iso, parse_time
from runtime_core.operations._errors import Conflict, Invalid, NotFound
from runtime_core.operations._redaction import Redactor
from runtime_core.operations._schemas import (
    ActionRecord,
    Diagnosis,
    EventView,
    InvocationView,
    LiveView,
    Page,
    RunDetail,
    RunFilter,
    RunSummary,
    StepView,
    TaskView,
    WaitView,
)
from runtime_core.persistence import (
    ActionInvocation,
    DefinitionVersion,
    EventDelivery,
    RunAction,
    RunRow,
    RuntimeEvent,
    StepRow,
    TaskRow,
    WaitRow,
)

__all__ = ["STATUSES", "RunReads"]

#: Statuses a run can have.
STATUSES = ("RUNNING", "WAITING", "SUCCEEDED", "FAILED", "CANCELED")


def _duration(row: RunRow) -> int | None:
    if row.started_at is None or row.ended_at is None:
        return None
    return int((row.ended_at - row.started_at).total_seconds() * 1000)


def summary(row: RunRow, diagnosis: Diagnosis | None = None) -> RunSummary:
    """A run row as a list entry."""
    return RunSummary(
        runId=row.run_id, workflowId=row.workflow_id, workflowVersion=row.workflow_version, status=row.status,
        startedAt=iso(row.started_at), endedAt=iso(row.ended_at), durationMs=_duration(row), parentRunId=row.parent_run_id,
        rootRunId=row.root_run_id, replayOfRunId=row.replay_of_run_id, diagnosis=diagnosis,
    )


def _step_names(document: dict[str, Any]) -> dict[str, str | None]:
    names: dict[str, str | None] = {}

    def walk(steps: Any) -> None:
        if not isinstance(steps, list):
            return
        for step in steps:
            if isinstance(step, dict):
                names[str(step.get("id"))] = step.get("name")
                for key in ("then", "else", "body", "try", "catch"):
                    walk(step.get(key))

    walk(document.get("steps"))
    return names


class RunReads(OperationsBase):
    """Read operations on runs."""

    def filtered(self, tenant: str, flt: RunFilter) -> Select[RunRow]:
        """The runs of ``tenant`` a filter selects (stuck aside), newest first.

        Raises:
            Invalid: A status that does not exist, or an instant that does not parse.
        """
        query = select(RunRow).where(RunRow.tenant == tenant)
        if flt.status:
            unknown = [s for s in flt.status if s not in STATUSES]
            if unknown:
                raise Invalid(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}",
                              errors=[{"path": "status", "code": "UNKNOWN_STATUS", "message": f"one of {', '.join(STATUSES)}"}])
            query = query.where(RunRow.status.in_(flt.status))
        if flt.workflowId:
            query = query.where(RunRow.workflow_id == flt.workflowId)
        if flt.startedAfter:
            query = query.where(RunRow.created_at >= parse_time(flt.startedAfter, "startedAfter"))
        if flt.startedBefore:
            query = query.where(RunRow.created_at < parse_time(flt.startedBefore, "startedBefore"))
        if flt.rootOnly:
            query = query.where(RunRow.parent_run_id.is_(None))
        if flt.stuck:
            query = query.where(RunRow.status == "RUNNING")
        return query.order_by(RunRow.created_at.desc(), RunRow.run_id.desc())

    async def list_runs(self, tenant: str, flt: RunFilter | None = None, *, limit: int = 50, cursor: str | None = None) -> Page[RunSummary]:
        """Runs of ``tenant``, newest first, with the diagnosis of any that makes no progress.

        With ``stuck``, only RUNNING runs that have a diagnosis are listed.

        Raises:
            Invalid: A filter or the cursor is invalid.
        """
        flt = flt or RunFilter()
        limit = check_limit(limit)
        query = self.filtered(tenant, flt)
        if cursor:
            created, run_id = decode_cursor(cursor, 2)
            query = query.where(tuple_(RunRow.created_at, RunRow.run_id) < tuple_(parse_time(created, "cursor"), str(run_id)))
        items: list[RunSummary] = []
        last: RunRow | None = None
        more = False
        batch = limit + 1 if not flt.stuck else 200
        async with self.database.sessions() as session:
            while True:
                rows = list((await session.execute(query.limit(batch))).scalars())
                diagnoses = await self.diagnoser.for_rows(rows)
                for row in rows:
                    if len(items) == limit:
                        more = True
                        break
                    diagnosis = diagnoses.get(row.run_id)
                    if flt.stuck and diagnosis is None:
                        last = row
                        continue
                    items.append(summary(row, diagnosis))
                    last = row
                if more or len(rows) < batch or not flt.stuck:
                    more = more or (len(rows) == batch and not flt.stuck)
                    break
                assert last is not None
                query = query.where(tuple_(RunRow.created_at, RunRow.run_id) < tuple_(last.created_at, last.run_id))
        next_cursor = encode_cursor(iso(last.created_at), last.run_id) if more and last is not None else None
        return Page[RunSummary](items=items, nextCursor=next_cursor)

    async def get_run(self, tenant: str, run_id: str) -> RunDetail:
        """One run: scopes (redacted), error, diagnosis and operator history.

        Raises:
            NotFound: No such run for this tenant.
        """
        row = await self.run_row(tenant, run_id)
        redactor = await self.redactor(tenant)
        diagnosis = (await self.diagnoser.for_rows([row])).get(row.run_id)
        async with self.database.sessions() as session:
            actions = (await session.execute(select(RunAction).where(RunAction.tenant == tenant, RunAction.run_id == run_id).order_by(RunAction.id))).scalars().all()
        return self._detail(row, redactor, diagnosis, list(actions))

    @staticmethod
    def _detail(row: RunRow, redactor: Redactor, diagnosis: Diagnosis | None, actions: list[RunAction]) -> RunDetail:
        result = row.result or {}
        payload = redactor.apply(result.get("payload", row.input), "payload")
        variables = redactor.apply(result.get("vars", {}), "vars")
        return RunDetail(
            **summary(row, diagnosis).model_dump(),
            definitionHash=row.definition_hash, triggeredBy=row.trigger, payload=payload, vars=variables,
            meta=redactor.apply(result.get("meta", {}), "meta"),
            error=redactor.apply(row.error, "error") if row.error is not None else None,
            output={"payload": payload, "vars": variables} if row.status == "SUCCEEDED" else None,
            history=[ActionRecord(action=a.action, actor=a.actor, reason=a.reason, at=iso(a.at) or "", detail=a.detail) for a in actions],
        )

    async def run_steps(self, tenant: str, run_id: str) -> list[StepView]:
        """Step executions in start order, an action's input and output from its ledger row (redacted)."""
        row = await self.run_row(tenant, run_id)
        redactor = await self.redactor(tenant)
        async with self.database.sessions() as session:
            steps = (await session.execute(select(StepRow).where(StepRow.run_id == run_id).order_by(StepRow.seq))).scalars().all()
            ledger = (await session.execute(select(ActionInvocation).where(ActionInvocation.tenant == tenant, ActionInvocation.run_id == run_id).order_by(ActionInvocation.id))).scalars().all()
            document = (await session.execute(select(DefinitionVersion.document).where(
                DefinitionVersion.tenant == tenant, DefinitionVersion.workflow_id == row.workflow_id, DefinitionVersion.version == row.workflow_version))).scalar_one_or_none()
        names = _step_names(document or {})
        by_seq = {inv.step_seq: inv for inv in ledger}
        return [
            StepView(
                seq=s.seq, stepId=s.step_id, stepPath=s.step_path, type=s.step_type, name=names.get(s.step_id), status=s.status, attempts=s.attempts,
                itemIndex=s.item_index, loopIndices=s.loop_indices, startedAt=iso(s.started_at), endedAt=iso(s.ended_at), durationMs=s.duration_ms,
                input=redactor.apply(by_seq[s.seq].input, "input") if s.seq in by_seq else None,
                output=redactor.apply(by_seq[s.seq].output, "output") if s.seq in by_seq else None,
                error=redactor.apply(s.error, "error") if s.error is not None else None,
            )
            for s in steps
        ]

    async def run_waits(self, tenant: str, run_id: str) -> list[WaitView]:
        """The run's waits in creation order."""
        await self.run_row(tenant, run_id)
        async with self.database.sessions() as session:
            waits = (await session.execute(select(WaitRow).where(WaitRow.run_id == run_id).order_by(WaitRow.seq))).scalars().all()
        return [
            WaitView(seq=w.seq, type=w.wait_type, status=w.status, stepId=w.step_id, eventName=w.event_name, correlationKey=w.correlation_key,
                     dueAt=iso(w.due_at), createdAt=iso(w.created_at) or "", resolvedAt=iso(w.resolved_at))
            for w in waits
        ]

    async def run_tasks(self, tenant: str, run_id: str) -> list[TaskView]:
        """The run's human tasks in creation order."""
        await self.run_row(tenant, run_id)
        async with self.database.sessions() as session:
            tasks = (await session.execute(select(TaskRow).where(TaskRow.run_id == run_id).order_by(TaskRow.created_at, TaskRow.task_id))).scalars().all()
        return [task_view(t) for t in tasks]

    async def run_invocations(self, tenant: str, run_id: str) -> list[InvocationView]:
        """The run's action invocations from the idempotency ledger (redacted)."""
        await self.run_row(tenant, run_id)
        redactor = await self.redactor(tenant)
        async with self.database.sessions() as session:
            rows = (await session.execute(select(ActionInvocation).where(ActionInvocation.tenant == tenant, ActionInvocation.run_id == run_id).order_by(ActionInvocation.id))).scalars().all()
        return [
            InvocationView(stepSeq=r.step_seq, stepPath=r.step_path, actionId=r.action_id, actionVersion=r.action_version, attempt=r.attempt,
                           idempotencyKey=r.idempotency_key, mocked=r.mocked, input=redactor.apply(r.input, "input"),
                           output=redactor.apply(r.output, "output"), createdAt=iso(r.created_at) or "")
            for r in rows
        ]

    async def run_events(self, tenant: str, run_id: str) -> list[EventView]:
        """Events delivered to the run (by signal, or found when one of its waits opened)."""
        from runtime_core.operations._inbound import event_views

        await self.run_row(tenant, run_id)
        async with self.database.sessions() as session:
            delivered = set((await session.execute(select(EventDelivery.event_id).where(
                EventDelivery.tenant == tenant, EventDelivery.kind == "signal", EventDelivery.target == run_id))).scalars())
            for resolution in (await session.execute(select(WaitRow.resolution).where(WaitRow.run_id == run_id, WaitRow.wait_type == "event"))).scalars():
                if isinstance(resolution, dict) and isinstance(resolution.get("eventId"), str):
                    delivered.add(resolution["eventId"])
            events = (await session.execute(select(RuntimeEvent).where(RuntimeEvent.tenant == tenant, RuntimeEvent.event_id.in_(sorted(delivered)))
                                            .order_by(RuntimeEvent.received_at, RuntimeEvent.id))).scalars().all() if delivered else []
        return await event_views(self, tenant, list(events))

    async def run_children(self, tenant: str, run_id: str) -> list[RunSummary]:
        """The run's child runs in start order."""
        await self.run_row(tenant, run_id)
        async with self.database.sessions() as session:
            rows = (await session.execute(select(RunRow).where(RunRow.tenant == tenant, RunRow.parent_run_id == run_id).order_by(RunRow.created_at, RunRow.run_id))).scalars().all()
        return [summary(r) for r in rows]

    async def run_live(self, tenant: str, run_id: str) -> LiveView:
        """The interpreter's own view, from Temporal queries.

        Raises:
            Conflict: The run has ended (there is no live view).
        """
        row = await self.run_row(tenant, run_id)
        if row.status in TERMINAL:
            raise Conflict(f"run {run_id} has ended ({row.status}): there is no live view; read the run instead")
        handle = self.client.get_workflow_handle(row.temporal_workflow_id)
        try:
            step, wait, state = await asyncio.gather(handle.query(QUERY_CURRENT_STEP), handle.query(QUERY_CURRENT_WAIT), handle.query(QUERY_INTERPRETER_SUMMARY))
        except RPCError as err:
            raise Conflict(f"Temporal cannot answer for run {run_id} ({err.message}); its diagnosis says why") from None
        redactor = await self.redactor(tenant)
        state = dict(state)
        for key in ("payload", "vars", "meta"):
            if key in state:
                state[key] = redactor.apply(state[key], key)
        return LiveView(currentStep=step, currentWait=wait, summary=state)

    async def export_run(self, tenant: str, run_id: str) -> dict[str, Any]:
        """One document with everything about the run and its definition version, for a bug report."""
        from runtime_core.operations._authoring import version_detail

        run = await self.get_run(tenant, run_id)
        steps, waits, tasks, invocations, events, children = await asyncio.gather(
            self.run_steps(tenant, run_id), self.run_waits(tenant, run_id), self.run_tasks(tenant, run_id),
            self.run_invocations(tenant, run_id), self.run_events(tenant, run_id), self.run_children(tenant, run_id),
        )
        try:
            definition = (await version_detail(self, tenant, run.workflowId, run.workflowVersion)).model_dump()
        except NotFound:
            definition = None
        return {
            "exportedAt": iso(datetime.now().astimezone()), "run": run.model_dump(), "steps": [s.model_dump() for s in steps],
            "waits": [w.model_dump() for w in waits], "tasks": [t.model_dump() for t in tasks], "invocations": [i.model_dump() for i in invocations],
            "events": [e.model_dump() for e in events], "children": [c.model_dump() for c in children], "definition": definition,
        }

    async def last_progress(self, rows: list[RunRow]) -> dict[str, datetime]:
        """When each run last made progress: its last step start or end, else its start."""
        ids = [r.run_id for r in rows]
        found: dict[str, datetime] = {r.run_id: r.started_at or r.created_at for r in rows}
        if not ids:
            return found
        async with self.database.sessions() as session:
            query = select(StepRow.run_id, func.max(func.coalesce(StepRow.ended_at, StepRow.started_at))).where(StepRow.run_id.in_(ids)).group_by(StepRow.run_id)
            for run_id, when in await session.execute(query):
                if when is not None and when > found[run_id].replace(tzinfo=when.tzinfo):
                    found[run_id] = when
        return found


def task_view(t: TaskRow) -> TaskView:
    """A task row as a list entry."""
    return TaskView(taskId=t.task_id, runId=t.run_id, taskType=t.task_type, title=t.title, status=t.status,
                    createdAt=iso(t.created_at) or "", completedAt=iso(t.completed_at))
