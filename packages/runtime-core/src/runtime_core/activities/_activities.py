"""Activities of the interpreter workflow, as bound methods with injected dependencies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from runtime_core.actions import ActionContext, ActionFailure, ActionRegistry
from runtime_core.activities._projections import apply_projections, parse_instant
from runtime_core.contract import (
    ACTION_ACTIVITY,
    FINALIZE_ACTIVITY,
    OPEN_WAIT_ACTIVITY,
    PROJECT_ACTIVITY,
    ActionRequest,
    ActionResult,
    FinalizeRequest,
    OpenWaitRequest,
    OpenWaitResult,
    ProjectRequest,
)
from runtime_core.persistence import ActionInvocation, Database, RunRow, RuntimeEvent, TaskDefinition, TaskRow, WaitRow, utcnow
from runtime_core.secrets import EnvSecretProvider, SecretNotFound, SecretProvider, redact, resolve_secrets, scrub

__all__ = ["RuntimeActivities", "action_error", "event_signal"]

log = logging.getLogger(__name__)


def action_error(category: str, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> ApplicationError:
    """The non-retryable Temporal error that carries an action's structured error to the workflow.

    The interpreter, not Temporal, decides whether to retry an action's own error; Temporal only
    retries infrastructure failures underneath.
    """
    info: dict[str, Any] = {"category": category, "message": message}
    if code is not None:
        info["code"] = code
    if details is not None:
        info["details"] = details
    # BENIGN: an action's own failure is a business outcome, not a worker fault to log loudly.
    return ApplicationError(message, info, type=category, non_retryable=True, category=ApplicationErrorCategory.BENIGN)


class RuntimeActivities:
    """Activities registered by the authored worker."""

    def __init__(
        self,
        database: Database,
        registry: ActionRegistry,
        secrets: SecretProvider | None = None,
        on_committed: Callable[[ActionRequest], Awaitable[None]] | None = None,
    ) -> None:
        """Inject dependencies.

        Args:
            database: Where projections and the idempotency ledger live.
            registry: The actions this worker can run.
            secrets: Resolves ``{"$secret": NAME}`` references; environment variables by default.
            on_committed: Called after an invocation and its ledger row committed, before the
                result goes back to Temporal (metrics; crash tests use it to die in that window).
        """
        self.database = database
        self.registry = registry
        self.secrets: SecretProvider = secrets or EnvSecretProvider()
        self.on_committed = on_committed

    def all(self) -> list[Any]:
        """Every activity method, for ``Worker(activities=...)``."""
        return [self.run_action, self.open_wait, self.project, self.finalize]

    @activity.defn(name=ACTION_ACTIVITY)
    async def run_action(self, req: ActionRequest) -> ActionResult:
        """Run one attempt of an ``action.call`` step, exactly once per idempotency key."""
        started = parse_instant(req.started_at)
        async with self.database.sessions.begin() as session:
            await apply_projections(session, req.tenant, req.run_id, [*req.projections, _step_row(req, "STARTED")])
            recorded = (
                await session.execute(
                    select(ActionInvocation.output).where(ActionInvocation.tenant == req.tenant, ActionInvocation.idempotency_key == req.idempotency_key)
                )
            ).first()
        if recorded is not None:
            await self._finish_step(req, "SUCCEEDED", started)
            return ActionResult(output=recorded[0], replayed=True)

        spec = None if req.mock is not None else self.registry.get(req.action_id, req.action_version)
        if req.mock is None and spec is None:
            raise await self._fail(req, started, "ValidationError", f"action {req.action_id!r} version {req.action_version} is not registered on this worker")
        try:
            async with self.database.sessions.begin() as session:
                if req.mock is not None:
                    if req.mock.error is not None:
                        err = req.mock.error
                        raise ActionFailure(str(err.get("message", "mocked failure")), category=str(err.get("category", "ActionError")), code=err.get("code"), details=err.get("details"))
                    output, used = req.mock.output, list[str]()
                else:
                    assert spec is not None
                    resolved, used = resolve_secrets(req.input, self.secrets, req.tenant)
                    ctx = ActionContext(
                        tenant=req.tenant, run_id=req.run_id, step_id=req.step_id, step_path=req.step_path, seq=req.seq,
                        item_index=req.item_index, attempt=req.attempt, idempotency_key=req.idempotency_key, session=session,
                    )
                    output = await spec.handler(ctx, resolved)
                output = scrub(output, used)
                session.add(
                    ActionInvocation(
                        tenant=req.tenant, idempotency_key=req.idempotency_key, run_id=req.run_id, step_seq=req.seq,
                        step_path=req.step_path, action_id=req.action_id, action_version=req.action_version, attempt=req.attempt,
                        mocked=req.mock is not None, input=redact(req.input), output=output, created_at=utcnow(),
                    )
                )
                await apply_projections(session, req.tenant, req.run_id, [_step_row(req, "SUCCEEDED", started)])
        except ActionFailure as failure:
            raise await self._fail(req, started, failure.category, failure.message, code=failure.code, details=failure.details) from None
        except SecretNotFound as err:
            raise await self._fail(req, started, "ValidationError", str(err)) from None
        except IntegrityError:
            # A concurrent attempt with the same key won the race: its output is the answer.
            async with self.database.sessions() as session:
                row = (await session.execute(select(ActionInvocation.output).where(ActionInvocation.tenant == req.tenant, ActionInvocation.idempotency_key == req.idempotency_key))).first()
            if row is None:
                raise
            await self._finish_step(req, "SUCCEEDED", started)
            return ActionResult(output=row[0], replayed=True)
        except ApplicationError:
            raise
        except Exception as err:  # an action's own bug is its ActionError, not an infrastructure retry
            log.exception("action %s v%s failed", req.action_id, req.action_version)
            raise await self._fail(req, started, "ActionError", f"{type(err).__name__}: {err}") from None
        if self.on_committed is not None:
            await self.on_committed(req)
        return ActionResult(output=output)

    async def _finish_step(self, req: ActionRequest, status: str, started: Any, error: dict[str, Any] | None = None) -> None:
        async with self.database.sessions.begin() as session:
            await apply_projections(session, req.tenant, req.run_id, [_step_row(req, status, started, error)])

    async def _fail(self, req: ActionRequest, started: Any, category: str, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> ApplicationError:
        err = action_error(category, message, code=code, details=details)
        info = {"category": category, "message": message, "code": code, "nodePath": req.step_path}
        # The row stays STARTED with the attempt's error: the workflow decides whether another
        # attempt follows and projects the terminal status itself.
        await self._finish_step(req, "STARTED", started, info)
        return err

    @activity.defn(name=OPEN_WAIT_ACTIVITY)
    async def open_wait(self, req: OpenWaitRequest) -> OpenWaitResult:
        """Write the wait row (with its task row) and the run's status, then look up early events."""
        result = OpenWaitResult()
        async with self.database.sessions.begin() as session:
            await apply_projections(session, req.tenant, req.run_id, req.projections)
            exists = (await session.execute(select(WaitRow.id).where(WaitRow.run_id == req.run_id, WaitRow.seq == req.wait_seq))).first()
            if exists is None:  # an activity retry must not write the rows twice
                session.add(
                    WaitRow(
                        tenant=req.tenant, run_id=req.run_id, seq=req.wait_seq, step_seq=req.step_seq, step_id=req.step_id, wait_type=req.wait_type,
                        status="WAITING", event_name=req.event_name, correlation_key=req.correlation_key, filters=req.filters,
                        due_at=parse_instant(req.due_at), created_at=parse_instant(req.created_at) or utcnow(),
                    )
                )
            if req.task is not None:
                task = req.task
                schema = task.get("formSchema")
                if schema is None:
                    schema = (
                        await session.execute(select(TaskDefinition.form_schema).where(TaskDefinition.tenant == req.tenant, TaskDefinition.task_type == task["taskType"]))
                    ).scalar_one_or_none()
                result.form_schema = schema
                if await session.get(TaskRow, task["taskId"]) is None:
                    session.add(
                        TaskRow(
                            task_id=task["taskId"], tenant=req.tenant, run_id=req.run_id, wait_seq=req.wait_seq, step_id=req.step_id,
                            task_type=task["taskType"], title=task["title"], description=task.get("description"),
                            context_data=redact(task.get("contextData")), form_schema=schema, status="PENDING",
                            created_at=parse_instant(req.created_at) or utcnow(),
                        )
                    )
            if req.run_waiting:
                await session.execute(update(RunRow).where(RunRow.run_id == req.run_id, RunRow.status == "RUNNING").values(status="WAITING", updated_at=utcnow()))
        if req.wait_type == "event":
            # after the commit: an event stored from now on sees this wait and signals the run
            async with self.database.sessions() as session:
                rows = (
                    await session.execute(
                        select(RuntimeEvent)
                        .where(
                            RuntimeEvent.tenant == req.tenant, RuntimeEvent.event_name == req.event_name, RuntimeEvent.correlation_key == req.correlation_key,
                            RuntimeEvent.received_at >= parse_instant(req.run_started_at),
                        )
                        .order_by(RuntimeEvent.received_at, RuntimeEvent.id)
                        .limit(1000)
                    )
                ).scalars().all()
            result.events = [event_signal(row) for row in rows]
        return result

    @activity.defn(name=PROJECT_ACTIVITY)
    async def project(self, req: ProjectRequest) -> None:
        """Write buffered projection rows (used before the run blocks)."""
        async with self.database.sessions.begin() as session:
            await apply_projections(session, req.tenant, req.run_id, req.projections)

    @activity.defn(name=FINALIZE_ACTIVITY)
    async def finalize(self, req: FinalizeRequest) -> None:
        """Write the remaining rows, then the run row's terminal state, in one transaction."""
        async with self.database.sessions.begin() as session:
            await apply_projections(session, req.tenant, req.run_id, req.projections)
            run = await session.get(RunRow, req.run_id)
            if run is None:
                raise ApplicationError(f"run {req.run_id} has no run row; it was not started by the launcher", non_retryable=True)
            run.status = req.status
            if req.status in ("CANCELED", "FAILED", "SUCCEEDED"):
                # nothing stays open once the run has ended
                at = parse_instant(req.ended_at)
                await session.execute(update(WaitRow).where(WaitRow.run_id == req.run_id, WaitRow.status == "WAITING").values(status="CANCELED", resolved_at=at))
                await session.execute(update(TaskRow).where(TaskRow.run_id == req.run_id, TaskRow.status == "PENDING").values(status="CANCELED", completed_at=at))
            run.result = req.result
            run.error = req.error
            run.ended_at = parse_instant(req.ended_at)
            run.updated_at = utcnow()


def event_signal(row: RuntimeEvent) -> dict[str, Any]:
    """The signal payload of a stored inbound event."""
    return {
        "eventId": row.event_id, "eventName": row.event_name, "correlationKey": row.correlation_key,
        "payload": row.payload, "receivedAt": row.received_at.isoformat(),
    }


def _step_row(req: ActionRequest, status: str, started: Any = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    now = utcnow()
    row: dict[str, Any] = {
        "kind": "step", "seq": req.seq, "stepId": req.step_id, "stepPath": req.step_path, "type": "action.call",
        "status": status, "attempts": req.attempt, "itemIndex": req.item_index, "loopIndices": req.loop_indices,
        "startedAt": req.started_at, "error": error,
    }
    if status in ("SUCCEEDED", "FAILED") and started is not None:
        row["endedAt"] = now.isoformat()
        row["durationMs"] = int((now - started).total_seconds() * 1000)
    return row
