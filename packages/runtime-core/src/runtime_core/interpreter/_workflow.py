"""The interpreter: one deterministic Temporal workflow that runs any published definition.

Design notes:

* The definition arrives validated and pinned (hash) in :class:`RunInput`; the workflow never
  reads the authoring tables.
* Projection rows are buffered in the workflow and written by the next activity (the action
  activity writes them in the same transaction as its own STARTED row) or by ``finalize``, so a
  ``transform.assign`` or ``control.if`` step costs no history events.
* Action errors come back as non-retryable activity failures; the interpreter applies the
  authored retry policy with durable timers. Infrastructure failures are retried by Temporal
  underneath and never count as attempts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from runtime_core.contract import (
        ACTION_ACTIVITY,
        FINALIZE_ACTIVITY,
        QUERY_CURRENT_STEP,
        QUERY_CURRENT_WAIT,
        QUERY_INTERPRETER_SUMMARY,
        WORKFLOW_TYPE,
        ActionRequest,
        ActionResult,
        FinalizeRequest,
        RunInput,
        RunResult,
    )
    from runtime_core.dsl import (
        ActionCallStep,
        IfStep,
        ReturnStep,
        StateSetStep,
        Step,
        TransformAssignStep,
        WorkflowDefinition,
        definition_hash,
    )
    from runtime_core.errors import NOT_RETRIED_BY_DEFAULT, RunError, RuntimeErrorInfo
    from runtime_core.expressions import ExpressionClock, ExpressionEngine, format_instant, use_clock
    from runtime_core.interpreter._values import assign_path, json_copy, truthy

__all__ = ["InterpreterWorkflow"]

#: Infrastructure retries of the runtime's own activities: unlimited, with backoff. An action's
#: own errors are non-retryable ApplicationErrors and never reach this policy.
_INFRA_RETRY = TemporalRetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30), maximum_attempts=0)
_ACTION_TIMEOUT = timedelta(minutes=5)
_PROJECTION_TIMEOUT = timedelta(seconds=60)

_ENGINE = ExpressionEngine()


class _Return(Exception):
    """Raised by ``control.return``; unwinds to the run."""


@dataclass
class _Scope:
    """The mutable scopes a sequence of steps runs against."""

    payload: dict[str, Any]
    vars: dict[str, Any]
    error: dict[str, Any] | None = None
    locals: dict[str, Any] = field(default_factory=dict)
    loop_indices: list[int] = field(default_factory=list)

    @property
    def item_index(self) -> int | None:
        return self.loop_indices[-1] if self.loop_indices else None


@workflow.defn(name=WORKFLOW_TYPE)
class InterpreterWorkflow:
    """Runs one authored run (root or child) of a pinned definition."""

    def __init__(self) -> None:
        """Initialise interpreter state (no I/O)."""
        self._input: RunInput | None = None
        self._seq = 0
        self._pending: dict[int, dict[str, Any]] = {}
        self._status = "RUNNING"
        self._meta: dict[str, Any] = {}
        self._root: _Scope = _Scope(payload={}, vars={})
        self._current: dict[str, Any] | None = None

    # ---------------------------------------------------------------------------------- run

    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        """Interpret the definition to its end."""
        self._input = inp
        if definition_hash(inp.definition) != inp.definition_hash:
            # The pinned definition was altered between publishing and this run: never guess.
            raise ApplicationError(
                f"definition of {inp.workflow_id} v{inp.workflow_version} does not match its pinned hash {inp.definition_hash[:12]}",
                {"category": "InterpreterCorruption", "code": "DEFINITION_HASH_MISMATCH", "message": "pinned definition hash mismatch"},
                type="InterpreterCorruption",
                non_retryable=True,
            )
        definition = WorkflowDefinition.model_validate(inp.definition)
        self._meta = {
            "runId": inp.run_id,
            "workflowId": inp.workflow_id,
            "workflowVersion": inp.workflow_version,
            "tenant": inp.tenant,
            "startedAt": inp.started_at,
            "definitionHash": inp.definition_hash,
            "semanticsVersion": inp.semantics_version,
            "state": None,
        }
        self._root = _Scope(payload=json_copy(inp.payload), vars={})
        error: RuntimeErrorInfo | None = None
        try:
            try:
                await self._run_sequence(definition.steps, "root.steps", self._root)
            except _Return:
                pass
            self._status = "SUCCEEDED"
        except RunError as err:
            self._status = "FAILED"
            error = err.info
        except asyncio.CancelledError:
            self._status = "CANCELED"
            error = RuntimeErrorInfo(category="Cancellation", message="the run was cancelled by an operator", at=self._now())
            await self._finalize(error)
            raise
        await self._finalize(error)
        if error is not None:
            raise ApplicationError(error.message, error.to_dict(), type=error.category, non_retryable=True)
        return RunResult(run_id=inp.run_id, status=self._status, payload=self._root.payload, vars=self._root.vars, meta=self._meta)

    async def _finalize(self, error: RuntimeErrorInfo | None) -> None:
        assert self._input is not None
        req = FinalizeRequest(
            run_id=self._input.run_id,
            tenant=self._input.tenant,
            status=self._status,
            result={"payload": self._root.payload, "vars": self._root.vars, "meta": self._meta},
            error=None if error is None else error.to_dict(),
            ended_at=self._now(),
            projections=self._drain(),
        )
        await workflow.execute_activity(FINALIZE_ACTIVITY, req, start_to_close_timeout=_PROJECTION_TIMEOUT, retry_policy=_INFRA_RETRY)

    # ------------------------------------------------------------------------------ queries

    @workflow.query(name=QUERY_CURRENT_STEP)
    def current_step(self) -> dict[str, Any] | None:
        """The step executing now (id, path, type, seq), if any."""
        return self._current

    @workflow.query(name=QUERY_CURRENT_WAIT)
    def current_wait(self) -> dict[str, Any] | None:
        """The open wait, if any (waits arrive with the waits issue)."""
        return None

    @workflow.query(name=QUERY_INTERPRETER_SUMMARY)
    def summary(self) -> dict[str, Any]:
        """Status, step count and the current scopes of the run."""
        return {
            "status": self._status,
            "stepsStarted": self._seq,
            "currentStep": self._current,
            "payload": self._root.payload,
            "vars": self._root.vars,
            "meta": self._meta,
        }

    # ---------------------------------------------------------------------------- helpers

    def _now(self) -> str:
        return format_instant(workflow.now())

    def _context(self, scope: _Scope) -> dict[str, Any]:
        ctx: dict[str, Any] = {"payload": scope.payload, "vars": scope.vars, "meta": self._meta}
        if scope.error is not None:
            ctx["error"] = scope.error
        ctx.update(scope.locals)
        return ctx

    def _eval(self, source: str, scope: _Scope) -> Any:
        with use_clock(ExpressionClock(now=workflow.now, random=workflow.random().random)):
            return _ENGINE.evaluate(source, self._context(scope))

    def _resolve(self, value: Any, scope: _Scope) -> Any:
        """Evaluate a config value: expressions evaluated, secret references kept for activities."""
        if isinstance(value, dict):
            if len(value) == 1 and "$expr" in value:
                return json_copy(self._eval(value["$expr"], scope))
            if len(value) == 1 and "$secret" in value:
                return dict(value)
            return {k: self._resolve(v, scope) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, scope) for v in value]
        return value

    def _assign(self, scope: _Scope, path: str, value: Any) -> None:
        assign_path({"payload": scope.payload, "vars": scope.vars}, path, value, tuple(scope.locals))

    def _drain(self) -> list[dict[str, Any]]:
        rows = [self._pending[k] for k in sorted(self._pending)]
        self._pending.clear()
        return rows

    # ---------------------------------------------------------------------------- sequences

    async def _run_sequence(self, steps: list[Step], path: str, scope: _Scope) -> None:
        for index, step in enumerate(steps):
            await self._run_step(step, f"{path}[{index}]", scope)

    async def _run_step(self, step: Step, path: str, scope: _Scope) -> None:
        self._seq += 1
        seq = self._seq
        started = workflow.now()
        row: dict[str, Any] = {
            "kind": "step", "seq": seq, "stepId": step.id, "stepPath": path, "type": step.type, "status": "STARTED",
            "attempts": 1, "itemIndex": scope.item_index, "loopIndices": list(scope.loop_indices), "startedAt": self._now(),
            "error": None,
        }
        previous = self._current
        self._current = {"seq": seq, "stepId": step.id, "stepPath": path, "type": step.type}
        self._pending[seq] = row
        status = "SUCCEEDED"
        try:
            override = await self._dispatch(step, path, scope, row)
            if override is not None:
                status = override
        except _Return:
            raise
        except RunError as err:
            if err.info.node_path is None:
                err.info.node_path = path
            if err.info.at is None:
                err.info.at = self._now()
            status = "FAILED"
            row["error"] = err.info.to_dict()
            raise
        except asyncio.CancelledError:
            status = "CANCELED"
            raise
        finally:
            if not row.pop("_written", False):
                ended = workflow.now()
                row["status"] = status
                row["endedAt"] = format_instant(ended)
                row["durationMs"] = int((ended - started).total_seconds() * 1000)
                self._pending[seq] = row
            self._current = previous

    async def _dispatch(self, step: Step, path: str, scope: _Scope, row: dict[str, Any]) -> str | None:
        if isinstance(step, TransformAssignStep):
            values = [(target, json_copy(self._eval(expr.expr, scope))) for target, expr in step.config.assign.items()]
            for target, value in values:
                self._assign(scope, target, value)
            return None
        if isinstance(step, StateSetStep):
            self._meta["state"] = step.config.state
            return None
        if isinstance(step, IfStep):
            branch, key = (step.then, "then") if truthy(self._eval(step.condition.expr, scope)) else (step.else_ or [], "else")
            await self._run_sequence(branch, f"{path}.{key}.steps", scope)
            return None
        if isinstance(step, ReturnStep):
            raise _Return()
        if isinstance(step, ActionCallStep):
            return await self._action_call(step, path, scope, row)
        raise RunError(
            RuntimeErrorInfo(
                category="InterpreterCorruption",
                code="STEP_TYPE_NOT_SUPPORTED",
                message=f"step type {step.type!r} is not supported by semantics version {self._meta['semanticsVersion']} of this interpreter yet",
            )
        )

    # ----------------------------------------------------------------------------- actions

    async def _action_call(self, step: ActionCallStep, path: str, scope: _Scope, row: dict[str, Any]) -> str | None:
        assert self._input is not None
        cfg = step.config
        try:
            action_input = self._resolve(cfg.inputMapping or {}, scope)
            key = self._idempotency_key(step, path, scope, action_input)
        except RunError as err:
            # The step's own config failed before any attempt: no attempt counted, no retry
            # (ExpressionError), but onError still applies.
            row["attempts"] = 0
            return self._on_final_error(step, path, scope, row, err.info)
        mock = self._input.mocks.get(cfg.actionId)
        policy = step.retry
        max_attempts = policy.maxAttempts if policy else 1
        attempt = 0
        while True:
            attempt += 1
            row["attempts"] = attempt
            req = ActionRequest(
                run_id=self._input.run_id, tenant=self._input.tenant, seq=row["seq"], step_id=step.id, step_path=path,
                item_index=scope.item_index, loop_indices=list(scope.loop_indices), action_id=cfg.actionId, action_version=cfg.version,
                input=action_input, attempt=attempt, idempotency_key=key, started_at=row["startedAt"], projections=self._drain(), mock=mock,
            )
            try:
                result: ActionResult = await workflow.execute_activity(
                    ACTION_ACTIVITY, req, result_type=ActionResult, start_to_close_timeout=_ACTION_TIMEOUT, retry_policy=_INFRA_RETRY
                )
            except ActivityError as err:
                info = _error_from_activity(err)
                info.node_path, info.at = path, self._now()
                row["error"] = info.to_dict()
                if attempt < max_attempts and _should_retry(policy.retryOn if policy else None, info):
                    await workflow.sleep(timedelta(milliseconds=self._backoff_ms(step, attempt)))
                    continue
                return self._on_final_error(step, path, scope, row, info)
            row["error"] = None
            row["_written"] = True  # the activity wrote the SUCCEEDED row itself
            if cfg.saveAs:
                self._assign(scope, cfg.saveAs, result.output)
            return None

    def _idempotency_key(self, step: ActionCallStep, path: str, scope: _Scope, action_input: Any) -> str:
        assert self._input is not None
        cfg = step.config
        if cfg.idempotencyKey is not None:
            value = self._eval(cfg.idempotencyKey.expr, scope)
            if value is None:
                raise RunError(RuntimeErrorInfo(category="ExpressionError", message="idempotencyKey evaluated to nothing; it must give a string"))
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        material = json.dumps([self._input.run_id, path, scope.loop_indices, cfg.actionId, cfg.version, action_input], sort_keys=True, separators=(",", ":"))
        return "derived:" + hashlib.sha256(material.encode()).hexdigest()

    def _on_final_error(self, step: ActionCallStep, path: str, scope: _Scope, row: dict[str, Any], info: RuntimeErrorInfo) -> str:
        """Apply ``onError`` after the last attempt: continue (store at ``error``) or raise."""
        if info.node_path is None:
            info.node_path = path
        if info.at is None:
            info.at = self._now()
        row["error"] = info.to_dict()
        if step.onError is not None and step.onError.policy == "continue" and info.catchable:
            scope.error = info.to_dict()
            return "FAILED"
        raise RunError(info)

    def _backoff_ms(self, step: ActionCallStep, attempt: int) -> float:
        policy = step.retry
        assert policy is not None
        delay = policy.backoffMs * policy.backoffMultiplier ** (attempt - 1)
        if policy.maxDelayMs is not None:
            delay = min(delay, policy.maxDelayMs)
        if policy.jitter:
            delay *= workflow.random().uniform(0.5, 1.0)
        return delay


def _error_from_activity(err: ActivityError) -> RuntimeErrorInfo:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return RuntimeErrorInfo.from_dict(cause.details[0])
    return RuntimeErrorInfo(category="ActionError", message=str(cause or err))


def _should_retry(retry_on: list[str] | None, info: RuntimeErrorInfo) -> bool:
    if not info.catchable:
        return False
    if retry_on is None:
        return info.category not in NOT_RETRIED_BY_DEFAULT
    return info.category in retry_on or (info.code is not None and info.code in retry_on)
