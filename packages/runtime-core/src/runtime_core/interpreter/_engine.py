"""The interpreter's engine: everything the authored-run workflow does, outside the sandbox.

This module is a sandbox passthrough: it is imported once per worker process, while the thin
workflow class in ``_workflow`` (re-imported into a fresh sandbox for every run, as Temporal's
sandbox does) only binds it to Temporal's decorators. Before the split, every run re-executed
this module's ~1,000 lines in its sandbox: about 200 KB of worker memory per cached run and a
measurable share of CPU (docs/performance.md). The code here must stay deterministic without the
sandbox's help: time, randomness and uuids only through ``workflow.*``, no I/O, no database
(importlinter forbids the import), no mutable module state; the replay corpus checks it.

Design notes:

* The definition arrives validated and pinned (hash) in :class:`RunInput`, together with every
  definition it can call (pinned when the root run was launched); the workflow never reads the
  authoring tables.
* Projection rows are buffered in the workflow and written by the next activity (the action
  activity writes them in the same transaction as its own STARTED row), by a flush when many
  are pending, or by ``finalize``: a ``transform.assign`` or ``control.if`` step costs no
  history events.
* Action errors come back as non-retryable activity failures; the interpreter applies the
  authored retry policy with durable timers. Infrastructure failures are retried by Temporal
  underneath and never count as attempts.
* Long runs continue-as-new at a step boundary with nothing in flight: the unwinding frames
  record where each sequence stood, and the next run resumes there (see ``_ContinueAsNew``).
* A run is WAITING when every active branch is blocked on an open wait of its own or on a child
  run that is itself WAITING. Children tell their parent of each RUNNING/WAITING change with a
  signal, and a status task keeps the run row (and the run's own parent) in step with that
  rule (see ``_status_loop``; patch ``wfr-child-waiting-1``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, FailureError
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from runtime_core.contract import (
        ACTION_ACTIVITY,
        CHILD_STATUS_SIGNAL,
        FINALIZE_ACTIVITY,
        OPEN_WAIT_ACTIVITY,
        PROJECT_ACTIVITY,
        TASK_QUEUE,
        WORKFLOW_TYPE,
        ActionRequest,
        ActionResult,
        FinalizeRequest,
        OpenWaitRequest,
        OpenWaitResult,
        ProjectRequest,
        RunInput,
        RunResult,
        workflow_id_for_run,
    )
    from runtime_core.dsl import (
        ActionCallStep,
        CallWorkflowStep,
        EventWaitStep,
        ForEachStep,
        HumanTaskStep,
        IfStep,
        RetryPolicy,
        ReturnStep,
        StateSetStep,
        Step,
        TimeWaitStep,
        TransformAssignStep,
        TryCatchStep,
        definition_hash,
        parsed_definition,
    )
    from runtime_core.errors import NOT_RETRIED_BY_DEFAULT, RunError, RuntimeErrorInfo
    from runtime_core.expressions import ExpressionClock, format_instant, thread_engine, use_clock
    from runtime_core.interpreter._values import assign_path, json_copy, truthy
    from runtime_core.values import MAX_DURATION_MS, MAX_STATE_BYTES, MAX_VALUE_BYTES, ValueProblem, check_value, json_size

__all__ = ["CHILD_WAITING_PATCH", "LOCAL_PROJECTIONS_PATCH", "InterpreterEngine"]

#: Infrastructure retries of the runtime's own activities: unlimited, with backoff. An action's
#: own errors are non-retryable ApplicationErrors and never reach this policy.
_INFRA_RETRY = TemporalRetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30), maximum_attempts=0)
_PROJECTION_TIMEOUT = timedelta(seconds=60)
#: Patch marking histories whose projection flushes and finalize are local activities. Histories
#: recorded before it ran them as ordinary activities and still replay that way.
LOCAL_PROJECTIONS_PATCH = "wfr-local-projections-1"
#: Patch marking histories whose run reports RUNNING/WAITING changes to its parent (a signal)
#: and follows its children's, its branches' and its own waits' states with a status task.
#: Histories recorded before it never signalled a parent and replay without the task.
CHILD_WAITING_PATCH = "wfr-child-waiting-1"
#: Patch marking histories whose short actions (``RunOptions.local_actions``) run as local
#: activities. A run that began on a worker without it keeps regular activities to its end.
LOCAL_ACTIONS_PATCH = "wfr-local-actions-1"
#: Unmatched events kept for later waits: at most this many, and this many bytes in all (they
#: travel in the continue-as-new input, which Temporal limits to 2 MB).
_INBOX_MAX_EVENTS = 1000
_INBOX_MAX_BYTES = 256 * 1024
#: Ids of consumed events remembered to drop duplicate deliveries (they also travel across
#: continue-as-new); the oldest are forgotten first.
_CONSUMED_MAX = 5000
#: Longest correlation key (the column of wait rows and events; ingress refuses longer keys too).
_MAX_CORRELATION_KEY = 500
#: Continue-as-new input besides the pinned definitions: the run's data, the inbox, consumed ids.
_CHECKPOINT_MAX_BYTES = MAX_STATE_BYTES + _INBOX_MAX_BYTES + 256 * 1024

class _Return(Exception):
    """Raised by ``control.return``; unwinds to the run."""


class _ContinueAsNew(Exception):
    """Raised at a step boundary to continue-as-new.

    ``frames`` lists, outermost first, where each enclosing sequence stood: ``{"seqPath",
    "index", "container"}``; ``container`` describes the step at ``index`` that was running
    (its row and, for a loop, its items and position), or is ``None`` when the step at
    ``index`` had not started.
    """

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__("continue-as-new")
        self.frames: list[dict[str, Any]] = [frame]
        #: State of the container step being unwound, waiting for its enclosing sequence frame.
        self.container: dict[str, Any] | None = None


@dataclass
class _Data:
    """The mutable data a sequence of steps works on; shared or copied per loop iteration."""

    payload: dict[str, Any]
    vars: dict[str, Any]
    error: dict[str, Any] | None = None


@dataclass
class _Scope:
    """Data plus what is local to where a step runs (loop items, loop indices)."""

    data: _Data
    locals: dict[str, Any] = field(default_factory=dict)
    loop_indices: list[int] = field(default_factory=list)
    #: Inside a concurrent forEach: no continue-as-new (something else is in flight).
    concurrent: bool = False

    @property
    def item_index(self) -> int | None:
        return self.loop_indices[-1] if self.loop_indices else None


Resume = list[dict[str, Any]]


class InterpreterEngine:
    """Runs one authored run (root or child) of a pinned definition; ``InterpreterWorkflow`` binds it."""

    def __init__(self) -> None:
        """Initialise interpreter state (no I/O)."""
        self._input: RunInput | None = None
        self._seq = 0
        self._steps_this_run = 0
        self._pending: dict[int, dict[str, Any]] = {}
        self._status = "RUNNING"
        self._meta: dict[str, Any] = {}
        self._root = _Scope(_Data(payload={}, vars={}))
        self._current: dict[str, Any] | None = None
        self._flush_due = False
        self._others: list[dict[str, Any]] = []  # buffered wait/task/run rows, in order
        # waits: open ones by wait seq; received events not yet consumed; consumed event ids
        self._wait_seq = 0
        self._open: dict[int, dict[str, Any]] = {}
        self._inbox: list[dict[str, Any]] = []
        self._consumed: list[str] = []
        self._consumed_set: set[str] = set()
        # a run is WAITING when every active branch is blocked on a wait or on a WAITING child
        self._branches = 1
        self._blocked = 0
        self._run_waiting = False  # the status the run row has (or is being given)
        # status sync (CHILD_WAITING_PATCH): None until decided, then whether this run uses it
        self._status_sync: bool | None = None
        self._status_task: asyncio.Task[None] | None = None
        self._status_done = False
        self._children: dict[str, bool] = {}  # child runs awaited now: run id -> reported WAITING
        self._opening = 0  # open-wait activities in flight (they write WAITING themselves)
        self._told_waiting = False  # what this run last told its parent

    # ---------------------------------------------------------------------------------- run

    async def run(self, inp: RunInput) -> RunResult:
        """Interpret the definition to its end (or continue-as-new at a safe point)."""
        self._input = inp
        if definition_hash(inp.definition) != inp.definition_hash:
            # The pinned definition was altered between publishing and this run: never guess.
            raise ApplicationError(
                f"definition of {inp.workflow_id} v{inp.workflow_version} does not match its pinned hash {inp.definition_hash[:12]}",
                {"category": "InterpreterCorruption", "code": "DEFINITION_HASH_MISMATCH", "message": "pinned definition hash mismatch"},
                type="InterpreterCorruption",
                non_retryable=True,
            )
        definition = parsed_definition(inp.definition_hash, inp.definition)
        resume: Resume | None = None
        if inp.checkpoint is None:
            self._meta = {
                "runId": inp.run_id, "workflowId": inp.workflow_id, "workflowVersion": inp.workflow_version, "tenant": inp.tenant,
                "startedAt": inp.started_at, "definitionHash": inp.definition_hash, "semanticsVersion": inp.semantics_version, "state": None,
            }
            self._root = _Scope(_Data(payload=json_copy(inp.payload), vars={}))
            if inp.parent_run_id is not None:
                self._others.append(self._child_run_row())
        else:
            cp = inp.checkpoint
            self._meta = cp["meta"]
            self._root = _Scope(_Data(payload=cp["payload"], vars=cp["vars"], error=cp.get("error")))
            self._seq = cp["seq"]
            self._wait_seq = cp.get("waitSeq", 0)
            self._inbox = cp.get("inbox", [])
            self._consumed = cp.get("consumed", [])
            self._consumed_set = set(self._consumed)
            self._told_waiting = bool(cp.get("toldWaiting", False))
            resume = cp["frames"]
            if cp.get("resumed") is not None:
                _reopen_frames(resume)  # an operator's resume: the failed step and its containers run on
        if inp.parent_run_id is not None and workflow.info().parent is not None:
            self._sync_status()  # a child run reports its RUNNING/WAITING changes to its parent
        error: RuntimeErrorInfo | None = None
        resume_point: dict[str, Any] | None = None
        try:
            try:
                await self._run_sequence(definition.steps, "root.steps", self._root, resume)
            except _Return:
                pass
            # the result goes to Temporal: refuse it here, with a reason, rather than have
            # Temporal refuse it after the read model recorded the run as ended
            self._check_state("the run's result (payload and vars)")
            self._status = "SUCCEEDED"
        except _ContinueAsNew as can:
            checkpoint = self._checkpoint(can.frames)
            self._check_state("the state carried across continue-as-new", json_size(checkpoint), _CHECKPOINT_MAX_BYTES)
            await self._stop_status()
            checkpoint["toldWaiting"] = self._told_waiting
            await self._flush(snapshot=True)
            # the launch payload lives on in the checkpoint's payload: do not send it twice
            workflow.continue_as_new(replace(inp, checkpoint=checkpoint, payload={}))
        except RunError as err:
            self._status = "FAILED"
            error = err.info
            if err.frames:
                # where an operator's resume continues: the failed action, inside its containers
                resume_point = self._checkpoint(err.frames)
                if json_size(resume_point) > _CHECKPOINT_MAX_BYTES:
                    resume_point = None
        except asyncio.CancelledError:
            self._status = "CANCELED"
            error = RuntimeErrorInfo(category="Cancellation", message="the run was cancelled by an operator", at=self._now())
            await self._stop_status()
            await self._finalize(error)
            raise
        await self._stop_status()
        await self._finalize(error)
        if error is not None:
            details = [error.to_dict()] if resume_point is None else [error.to_dict(), {"resumePoint": resume_point}]
            raise ApplicationError(error.message, *details, type=error.category, non_retryable=True)
        return RunResult(run_id=inp.run_id, status=self._status, payload=self._root.data.payload, vars=self._root.data.vars, meta=self._meta)

    def _state(self) -> dict[str, Any]:
        return {"payload": self._root.data.payload, "vars": self._root.data.vars, "error": self._root.data.error}

    def _check_state(self, what: str, size: int | None = None, limit: int = MAX_STATE_BYTES) -> None:
        """Fail the run (ValidationError) when its data is too large to hand to Temporal."""
        size = json_size(self._state()) if size is None else size
        if size <= limit:
            return
        parts = [(json_size(v), f"{scope}.{k}") for scope, data in (("payload", self._root.data.payload), ("vars", self._root.data.vars)) for k, v in data.items()]
        largest = ", ".join(f"{name} ({_kb(n)})" for n, name in sorted(parts, reverse=True)[:3])
        raise RunError(RuntimeErrorInfo(
            category="ValidationError", code="VALUE_TOO_LARGE",
            message=f"{what} is {_kb(size)}, over the limit of {_kb(limit)}; the largest values are {largest}. Keep large data outside the run and pass references",
        ))

    def _checkpoint(self, frames: Resume) -> dict[str, Any]:
        return {
            "payload": self._root.data.payload, "vars": self._root.data.vars, "error": self._root.data.error,
            "meta": self._meta, "seq": self._seq, "frames": frames,
            "waitSeq": self._wait_seq, "inbox": self._inbox, "consumed": self._consumed,
        }

    def _child_run_row(self) -> dict[str, Any]:
        inp = self._input
        assert inp is not None
        return {
            "kind": "run-create", "runId": inp.run_id, "workflowId": inp.workflow_id, "workflowVersion": inp.workflow_version,
            "temporalWorkflowId": workflow.info().workflow_id, "temporalRunId": workflow.info().run_id, "definitionHash": inp.definition_hash,
            "semanticsVersion": inp.semantics_version, "parentRunId": inp.parent_run_id, "rootRunId": inp.root_run_id,
            "parentStepSeq": inp.parent_step_seq, "input": inp.payload, "startedAt": inp.started_at,
        }

    async def _finalize(self, error: RuntimeErrorInfo | None) -> None:
        assert self._input is not None
        req = FinalizeRequest(
            run_id=self._input.run_id,
            tenant=self._input.tenant,
            status=self._status,
            result={"payload": self._root.data.payload, "vars": self._root.data.vars, "meta": self._meta},
            error=None if error is None else error.to_dict(),
            ended_at=self._now(),
            projections=self._drain(),
        )
        await self._write_projections(FINALIZE_ACTIVITY, req)

    async def _flush(self, *, snapshot: bool = False) -> None:
        """Write pending projection rows now (many pending, or before continue-as-new)."""
        assert self._input is not None
        rows = self._drain()
        if snapshot:
            rows.append({"kind": "snapshot", "snapshotKind": "continue-as-new", "takenAt": self._now(),
                         "snapshot": {"payload": self._root.data.payload, "vars": self._root.data.vars, "meta": self._meta, "seq": self._seq}})
        if rows:
            req = ProjectRequest(run_id=self._input.run_id, tenant=self._input.tenant, projections=rows)
            await self._write_projections(PROJECT_ACTIVITY, req)

    async def _write_projections(self, activity: str, req: Any) -> None:
        """Run a projection-only activity (a flush or finalize) as a local activity.

        These writes are short idempotent upserts with no effect outside the read model, which
        is what local activities are for: the worker runs them inside the current workflow task,
        so resuming or finishing a run costs one workflow task and one marker event instead of an
        activity task and a second workflow task (measured in the fan-out benchmark). A worker
        lost mid-write simply runs it again when the workflow task is retried.
        """
        if workflow.patched(LOCAL_PROJECTIONS_PATCH):
            await workflow.execute_local_activity(activity, req, start_to_close_timeout=_PROJECTION_TIMEOUT, retry_policy=_INFRA_RETRY)
        else:
            await workflow.execute_activity(activity, req, start_to_close_timeout=_PROJECTION_TIMEOUT, retry_policy=_INFRA_RETRY)

    # ------------------------------------------------------------------------- run status

    def _sync_status(self) -> bool:
        """Decide once whether this run keeps its status in step with its branches and children.

        Called where status sync first matters: at the start of a child run, before a child run
        is started, before a concurrent forEach starts its branches. Histories recorded before
        ``CHILD_WAITING_PATCH`` replay without it (no status task, no signals); a run that never
        reaches such a point records no patch marker and behaves exactly as before.

        Returns:
            Whether the status task runs in this run.
        """
        if self._status_sync is None:
            self._status_sync = workflow.patched(CHILD_WAITING_PATCH)
            if self._status_sync:
                self._status_task = asyncio.ensure_future(self._status_loop())
        return self._status_sync

    def _wants_waiting(self) -> bool:
        """The DSL's rule: every active branch blocked on an own open wait or on a WAITING child."""
        blocked = self._blocked + sum(self._children.values())
        return self._branches > 0 and blocked >= self._branches

    async def _status_loop(self) -> None:
        """Keep the run row, then the parent, in step with :meth:`_wants_waiting`.

        Own waits keep their cheaper path: the open-wait activity writes WAITING with the wait
        row (the loop holds back while one is in flight, so the wait row always comes first), and
        a wait that ends buffers RUNNING for the next write, as the run moves on by itself. The
        loop writes the changes nothing else would: a branch blocked on a child that became
        WAITING or RUNNING again, a child that ended, the last running branch of a concurrent
        forEach ending while the others are blocked. Its flush drains the buffered rows first,
        so a stale buffered status can never land after the new one.

        A child run then signals its parent (``CHILD_STATUS_SIGNAL``) whenever its row's status
        differs from what it last told the parent, one signal at a time, so they arrive in order.
        The loop wakes only when the workflow is idle, so a status that flips and flips back
        within one workflow task costs nothing.
        """
        assert self._input is not None
        run_id = self._input.run_id
        parent = workflow.info().parent
        handle = workflow.get_external_workflow_handle(parent.workflow_id) if parent is not None else None

        def due() -> bool:
            if self._status_done:
                return True
            if self._opening:
                return False
            return self._wants_waiting() != self._run_waiting or (handle is not None and self._run_waiting != self._told_waiting)

        while True:
            await workflow.wait_condition(due)
            if self._status_done:
                return
            want = self._wants_waiting()
            if want != self._run_waiting:
                self._run_waiting = want
                self._others.append({"kind": "run", "status": "WAITING" if want else "RUNNING"})
                await self._flush()
            elif handle is not None:
                self._told_waiting = self._run_waiting
                try:
                    await handle.signal(CHILD_STATUS_SIGNAL, {"runId": run_id, "waiting": self._told_waiting})
                except FailureError:
                    pass  # the parent has ended (cancelled, terminated): nobody is left to tell

    async def _stop_status(self) -> None:
        """End the status task at the run's end (or continue-as-new), after its current write."""
        self._status_done = True
        task, self._status_task = self._status_task, None
        if task is not None:
            await task

    def on_child_status(self, message: dict[str, Any]) -> None:
        """A child run awaited by this run reports that it is WAITING, or RUNNING again."""
        run_id = message.get("runId")
        if isinstance(run_id, str) and run_id in self._children:
            self._children[run_id] = bool(message.get("waiting"))
        # a child this run no longer awaits (it ended, or a late signal): nothing to count

    # ------------------------------------------------------------------------------ queries

    def current_step(self) -> dict[str, Any] | None:
        """The step executing now (id, path, type, seq), if any."""
        return self._current

    def current_wait(self) -> dict[str, Any] | None:
        """The most recently opened wait that is still open, if any."""
        if not self._open:
            return None
        wait = self._open[max(self._open)]
        return {k: wait.get(k) for k in ("waitSeq", "type", "eventName", "key", "dueAt", "taskId", "stepId")}

    # ------------------------------------------------------------------------------ signals

    def on_event(self, event: dict[str, Any]) -> None:
        """An inbound event for this run: resumes the oldest matching open wait, else is kept."""
        self._receive(event)

    def on_task_response(self, message: dict[str, Any]) -> None:
        """A validated response to one of this run's open tasks."""
        for wait in self._open.values():
            if wait["type"] == "human" and wait.get("taskId") == message.get("taskId") and wait["match"] is None:
                wait["match"] = message
                return

    def _receive(self, event: dict[str, Any]) -> None:
        assert self._input is not None
        event_id = event.get("eventId")
        if not isinstance(event_id, str) or event_id in self._consumed_set or any(e["eventId"] == event_id for e in self._inbox):
            return  # duplicate delivery: one effect
        if event.get("tenant", self._input.tenant) != self._input.tenant:
            return  # never another tenant's event
        for seq in sorted(self._open):
            wait = self._open[seq]
            if wait["type"] == "event" and wait["match"] is None and _event_matches(wait, event):
                wait["match"] = event
                self._consume(event_id)
                return
        self._inbox.append(event)
        # bounded in number and bytes: the oldest unmatched events go first
        del self._inbox[:-_INBOX_MAX_EVENTS]
        while len(self._inbox) > 1 and json_size(self._inbox) > _INBOX_MAX_BYTES:
            del self._inbox[0]

    def _consume(self, event_id: str) -> None:
        self._consumed.append(event_id)
        self._consumed_set.add(event_id)
        if len(self._consumed) > 2 * _CONSUMED_MAX:
            del self._consumed[:-_CONSUMED_MAX]
            self._consumed_set = set(self._consumed)

    def summary(self) -> dict[str, Any]:
        """Status, step count and the current scopes of the run."""
        return {
            "status": self._status,
            "stepsStarted": self._seq,
            "currentStep": self._current,
            "payload": self._root.data.payload,
            "vars": self._root.data.vars,
            "meta": self._meta,
        }

    # ---------------------------------------------------------------------------- helpers

    def _now(self) -> str:
        return format_instant(workflow.now())

    def _context(self, scope: _Scope, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        ctx: dict[str, Any] = {"payload": scope.data.payload, "vars": scope.data.vars, "meta": self._meta}
        if scope.data.error is not None:
            ctx["error"] = scope.data.error
        ctx.update(scope.locals)
        if extra:
            ctx.update(extra)
        return ctx

    def _eval(self, source: str, scope: _Scope, extra: dict[str, Any] | None = None) -> Any:
        with use_clock(ExpressionClock(now=workflow.now, random=workflow.random().random)):
            return thread_engine().evaluate(source, self._context(scope, extra))

    def _resolve(self, value: Any, scope: _Scope, extra: dict[str, Any] | None = None,
                 secrets: list[list[str | int]] | None = None, at: tuple[str | int, ...] = ()) -> Any:
        """Evaluate a config value: expressions evaluated, secret references kept for activities.

        ``secrets`` collects where the definition itself put a secret reference. Only those
        places are resolved by the action activity: a value computed from data (a payload, an
        event) that happens to look like ``{"$secret": ...}`` is data, never a secret lookup.
        """
        if isinstance(value, dict):
            if len(value) == 1 and "$expr" in value:
                return json_copy(self._eval(value["$expr"], scope, extra))
            if len(value) == 1 and "$secret" in value:
                if secrets is not None:
                    secrets.append(list(at))
                return dict(value)
            return {k: self._resolve(v, scope, extra, secrets, (*at, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, scope, extra, secrets, (*at, i)) for i, v in enumerate(value)]
        return value

    def _assign(self, scope: _Scope, path: str, value: Any) -> None:
        _checked(value, path if path.startswith(("payload.", "vars.")) else f"vars.{path}")
        assign_path({"payload": scope.data.payload, "vars": scope.data.vars}, path, value, tuple(scope.locals))

    def _drain(self) -> list[dict[str, Any]]:
        rows = [self._pending[k] for k in sorted(self._pending)] + self._others
        self._pending.clear()
        self._others = []
        return rows

    # ---------------------------------------------------------------------------- sequences

    async def _run_sequence(self, steps: list[Step], path: str, scope: _Scope, resume: Resume | None = None) -> None:
        start, container, inner = 0, None, []
        if resume:
            frame = resume[0]
            if frame["seqPath"] != path:
                raise RunError(RuntimeErrorInfo(category="InterpreterCorruption", message=f"checkpoint frame {frame['seqPath']} does not match {path}"))
            start, container, inner = frame["index"], frame.get("container"), resume[1:]
        for index in range(start, len(steps)):
            try:
                if index == start and container is not None:
                    await self._run_step(steps[index], f"{path}[{index}]", scope, (container, inner))
                else:
                    if not (resume and index == start):  # never straight back out after a resume
                        self._maybe_continue_as_new(scope, path, index)
                    await self._run_step(steps[index], f"{path}[{index}]", scope)
            except _ContinueAsNew as can:
                if can.container is not None:
                    can.frames.insert(0, {"seqPath": path, "index": index, "container": can.container})
                    can.container = None
                raise
            except RunError as err:
                if err.frames is not None:  # a resumable action failure: record where it left
                    err.frames.insert(0, {"seqPath": path, "index": index, "container": err.resume_container})
                    err.resume_container = None
                raise

    def _maybe_continue_as_new(self, scope: _Scope, path: str, index: int) -> None:
        if scope.concurrent or self._input is None:
            return
        if len(self._pending) + len(self._others) >= self._input.options.flush_every_rows:
            self._flush_due = True  # keep the next activity's input small
        if self._steps_this_run >= self._input.options.continue_as_new_after_steps or workflow.info().is_continue_as_new_suggested():
            raise _ContinueAsNew({"seqPath": path, "index": index, "container": None})

    async def _run_step(self, step: Step, path: str, scope: _Scope, resume: tuple[dict[str, Any], Resume] | None = None) -> None:
        if self._flush_due:
            self._flush_due = False
            await self._flush()
        container: dict[str, Any] | None = None
        inner: Resume = []
        if resume is not None:
            container, inner = resume
            row: dict[str, Any] = container["row"]
            started = datetime.fromisoformat(row["startedAt"].replace("Z", "+00:00"))
        else:
            self._seq += 1
            self._steps_this_run += 1
            started = workflow.now()
            row = {
                "kind": "step", "seq": self._seq, "stepId": step.id, "stepPath": path, "type": step.type, "status": "STARTED",
                "attempts": 1, "itemIndex": scope.item_index, "loopIndices": list(scope.loop_indices), "startedAt": format_instant(started),
                "error": None,
            }
        seq = row["seq"]
        previous = self._current
        self._current = {"seq": seq, "stepId": step.id, "stepPath": path, "type": step.type}
        self._pending[seq] = row
        status = "SUCCEEDED"
        continuing = False
        try:
            override = await self._dispatch(step, path, scope, row, container, inner)
            if override is not None:
                status = override
        except _ContinueAsNew:
            continuing = True  # still running: the next run resumes inside this step, same row
            raise
        except RunError as err:
            if err.info.node_path is None:
                err.info.node_path = path
            if err.info.at is None:
                err.info.at = self._now()
            status = "FAILED"
            row["error"] = err.info.to_dict()
            if isinstance(step, ActionCallStep) and err.frames is None and row["attempts"] >= 1 and not scope.concurrent and err.info.catchable:
                # an attempt of this action failed the run: an operator may resume it here
                err.frames, err.resume_container = [], {"row": row}
            raise
        except asyncio.CancelledError:
            status = "CANCELED"
            raise
        finally:
            self._current = previous
            if not continuing and not row.pop("_written", False):
                ended = workflow.now()
                row["status"] = status
                row["endedAt"] = format_instant(ended)
                row["durationMs"] = int((ended - started).total_seconds() * 1000)
                self._pending[seq] = row

    async def _dispatch(self, step: Step, path: str, scope: _Scope, row: dict[str, Any], container: dict[str, Any] | None, inner: Resume) -> str | None:
        if isinstance(step, TransformAssignStep):
            values = [(target, json_copy(self._eval(expr.expr, scope))) for target, expr in step.config.assign.items()]
            for target, value in values:
                self._assign(scope, target, value)
            return None
        if isinstance(step, StateSetStep):
            self._meta["state"] = step.config.state
            return None
        if isinstance(step, IfStep):
            if container is not None:
                key = "then" if inner[0]["seqPath"].endswith(".then.steps") else "else"
            else:
                key = "then" if truthy(self._eval(step.condition.expr, scope)) else "else"
            branch = step.then if key == "then" else (step.else_ or [])
            await self._container(row, self._run_sequence(branch, f"{path}.{key}.steps", scope, inner or None))
            return None
        if isinstance(step, ReturnStep):
            raise _Return()
        if isinstance(step, ActionCallStep):
            return await self._action_call(step, path, scope, row, resumed=container is not None)
        if isinstance(step, TryCatchStep):
            await self._try_catch(step, path, scope, row, inner)
            return None
        if isinstance(step, ForEachStep):
            await self._for_each(step, path, scope, row, container, inner)
            return None
        if isinstance(step, CallWorkflowStep):
            return await self._call_workflow(step, path, scope, row)
        if isinstance(step, TimeWaitStep):
            await self._time_wait(step, scope, row)
            return None
        if isinstance(step, EventWaitStep):
            await self._event_wait(step, scope, row)
            return None
        if isinstance(step, HumanTaskStep):
            await self._human_task(step, scope, row)
            return None
        raise RunError(
            RuntimeErrorInfo(
                category="InterpreterCorruption",
                code="STEP_TYPE_NOT_SUPPORTED",
                message=f"step type {step.type!r} is not supported by semantics version {self._meta['semanticsVersion']} of this interpreter yet",
            )
        )

    async def _container(self, row: dict[str, Any], body: Awaitable[None], state: dict[str, Any] | None = None) -> None:
        """Run a container's body; on continue-as-new (or a resumable failure), record the container's row and state."""
        try:
            await body
        except _ContinueAsNew as can:
            can.container = {"row": row, **(state or {})}
            raise
        except RunError as err:
            if err.frames is not None:
                err.resume_container = {"row": row, **(state or {})}
            raise

    # ------------------------------------------------------------------------- control flow

    async def _try_catch(self, step: TryCatchStep, path: str, scope: _Scope, row: dict[str, Any], inner: Resume) -> None:
        in_catch = bool(inner) and inner[0]["seqPath"].endswith(".catch.steps")
        if not in_catch:
            try:
                await self._container(row, self._run_sequence(step.try_, f"{path}.try.steps", scope, inner or None))
                return
            except RunError as err:
                if not err.info.catchable:
                    raise
                if step.captureErrorAs:
                    self._assign(scope, step.captureErrorAs, err.info.to_dict())
            inner = []
        await self._container(row, self._run_sequence(step.catch, f"{path}.catch.steps", scope, inner or None))

    def _loop_scope(self, step: ForEachStep, scope: _Scope, data: _Data, items: list[Any], index: int, concurrent: bool) -> _Scope:
        n = len(items)
        loop = {"item": items[index], "index": index, "length": n, "isFirst": index == 0, "isLast": index == n - 1}
        return _Scope(data, {**scope.locals, step.itemVar: items[index], "loop": loop}, [*scope.loop_indices, index], concurrent or scope.concurrent)

    async def _for_each(self, step: ForEachStep, path: str, scope: _Scope, row: dict[str, Any], container: dict[str, Any] | None, inner: Resume) -> None:
        body_path = f"{path}.body.steps"
        if container is not None:
            items, start, collected = container["items"], container["position"], container["collected"]
        else:
            value = self._eval(step.items.expr, scope)
            items = [] if value is None else (json_copy(value) if isinstance(value, list) else [json_copy(value)])
            start, collected = 0, [None] * len(items)
        if step.concurrency > 1 and len(items) > 1:
            await self._for_each_concurrent(step, body_path, scope, items, collected)
        else:
            for index in range(start, len(items)):
                it_scope = self._loop_scope(step, scope, scope.data, items, index, False)
                resume = inner if (container is not None and index == start and inner) else None
                try:
                    await self._container(row, self._run_sequence(step.body, body_path, it_scope, resume),
                                          {"items": items, "position": index, "collected": collected})
                except RunError as err:
                    if step.onItemError == "continue" and err.info.catchable:
                        scope.data.error = err.info.to_dict()
                        continue
                    raise
                if step.collect is not None:
                    collected[index] = json_copy(self._eval(step.collect.expr, it_scope))
        if step.saveAs and step.collect is not None:
            self._assign(scope, step.saveAs, collected)

    async def _for_each_concurrent(self, step: ForEachStep, body_path: str, scope: _Scope, items: list[Any], collected: list[Any]) -> None:
        async def one(index: int) -> None:
            self._branches += 1
            try:
                data = _Data(payload=json_copy(scope.data.payload), vars=json_copy(scope.data.vars), error=scope.data.error)
                it_scope = self._loop_scope(step, scope, data, items, index, True)
                await self._run_sequence(step.body, body_path, it_scope)
                if step.collect is not None:
                    collected[index] = json_copy(self._eval(step.collect.expr, it_scope))
            finally:
                self._branches -= 1

        tasks: dict[asyncio.Task[None], int] = {}
        pending: set[asyncio.Task[None]] = set()
        failures: dict[int, BaseException] = {}
        next_index = 0
        self._sync_status()  # the last running branch may end while the others are blocked
        self._branches -= 1  # this branch only waits for its iterations
        try:
            while next_index < len(items) or pending:
                while not failures and next_index < len(items) and len(pending) < step.concurrency:
                    task = asyncio.ensure_future(one(next_index))
                    tasks[task] = next_index
                    pending.add(task)
                    next_index += 1
                if not pending:
                    break
                done, still = await workflow.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending = set(still)
                for task in sorted(done, key=lambda t: tasks[t]):
                    exc = None if task.cancelled() else task.exception()
                    if exc is None:
                        continue
                    if isinstance(exc, RunError) and exc.info.catchable and step.onItemError == "continue":
                        scope.data.error = exc.info.to_dict()
                        continue
                    failures[tasks[task]] = exc
                if failures and pending:
                    await self._cancel_all(pending, tasks, failures)
                    pending = set()
        except asyncio.CancelledError:
            # an operator cancel: the iterations are our tasks, so cancel them and wait
            await self._cancel_all(pending, tasks, {})
            raise
        finally:
            self._branches += 1
        if failures:
            # a return ends the run at once; otherwise the lowest failed item index wins
            returns = [i for i, e in failures.items() if isinstance(e, _Return)]
            raise failures[min(returns)] if returns else failures[min(failures)]

    async def _cancel_all(self, pending: set[asyncio.Task[None]], tasks: dict[asyncio.Task[None], int], failures: dict[int, BaseException]) -> None:
        ordered = sorted(pending, key=lambda t: tasks[t])
        for task in ordered:
            task.cancel()
        await asyncio.gather(*ordered, return_exceptions=True)
        for task in ordered:
            exc = None if task.cancelled() else task.exception()
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                failures.setdefault(tasks[task], exc)

    # -------------------------------------------------------------------------------- waits

    def _wait_row(self, wait: dict[str, Any], status: str, resolution: dict[str, Any] | None = None) -> None:
        self._others.append({
            "kind": "wait", "seq": wait["waitSeq"], "type": wait["type"], "status": status, "stepSeq": wait["stepSeq"], "stepId": wait["stepId"],
            "eventName": wait.get("eventName"), "key": wait.get("key"), "dueAt": wait.get("dueAt"), "createdAt": wait["createdAt"],
            "resolvedAt": self._now() if status != "WAITING" else None, "resolution": resolution,
        })

    async def _open_wait(self, step: Step, row: dict[str, Any], scope: _Scope, wait_type: str, **fields: Any) -> tuple[dict[str, Any], OpenWaitResult]:
        """Register the wait (so racing signals match it), then write its rows through the activity."""
        assert self._input is not None
        self._wait_seq += 1
        wait: dict[str, Any] = {"waitSeq": self._wait_seq, "type": wait_type, "stepSeq": row["seq"], "stepId": step.id, "createdAt": self._now(), "match": None, **fields}
        self._open[self._wait_seq] = wait
        self._blocked += 1
        waiting = self._wants_waiting() if self._status_sync else self._blocked >= self._branches
        task = fields.get("task")
        req = OpenWaitRequest(
            run_id=self._input.run_id, tenant=self._input.tenant, wait_seq=wait["waitSeq"], step_seq=row["seq"], step_id=step.id, wait_type=wait_type,
            created_at=wait["createdAt"], run_started_at=self._meta["startedAt"], run_waiting=waiting, event_name=fields.get("eventName"),
            correlation_key=fields.get("key"), filters=fields.get("filters"), due_at=fields.get("dueAt"), task=task, projections=self._drain(),
        )
        self._opening += 1
        try:
            result: OpenWaitResult = await workflow.execute_activity(
                OPEN_WAIT_ACTIVITY, req, result_type=OpenWaitResult, start_to_close_timeout=_PROJECTION_TIMEOUT, retry_policy=_INFRA_RETRY
            )
        finally:
            self._opening -= 1
        self._run_waiting = self._run_waiting or waiting
        for event in result.events:
            self._receive(event)  # early events: stored before the wait existed
        if wait_type == "event" and wait["match"] is None:
            for index, event in enumerate(self._inbox):
                if _event_matches(wait, event):
                    wait["match"] = event
                    self._consume(event["eventId"])
                    del self._inbox[index]
                    break
        return wait, result

    def _close_wait(self, wait: dict[str, Any], status: str, on_end: Callable[[str], None]) -> None:
        """Project the wait's end and update the run's WAITING bookkeeping."""
        self._open.pop(wait["waitSeq"], None)
        self._blocked -= 1
        on_end(status)
        if self._run_waiting:
            self._run_waiting = False
            self._others.append({"kind": "run", "status": "RUNNING"})

    async def _block(self, wait: dict[str, Any], timeout_ms: int | None, on_end: Callable[[str], None]) -> dict[str, Any]:
        """Wait for the match (or the timeout); project the wait's end either way."""
        timeout = _duration(timeout_ms, "config.timeoutMs") if timeout_ms is not None else None
        try:
            await workflow.wait_condition(lambda: wait["match"] is not None, timeout=timeout)
        except TimeoutError:
            self._close_wait(wait, "TIMED_OUT", on_end)
            raise RunError(RuntimeErrorInfo(category="TimeoutError", message=f"{wait['type']} wait timed out after {timeout_ms} ms")) from None
        except asyncio.CancelledError:
            self._close_wait(wait, "CANCELED", on_end)
            raise
        self._close_wait(wait, "RESOLVED", on_end)
        return dict(wait["match"])

    def _resume_with(self, scope: _Scope, assign: dict[str, Any] | None, **values: Any) -> None:
        for key, value in values.items():
            self._assign(scope, f"vars.{key}", value)
        if assign:
            results = [(target, json_copy(self._eval(expr.expr, scope))) for target, expr in assign.items()]
            for target, value in results:
                self._assign(scope, target, value)

    async def _time_wait(self, step: TimeWaitStep, scope: _Scope, row: dict[str, Any]) -> None:
        cfg = step.config
        now = workflow.now()
        if cfg.durationMs is not None:
            due = now + _duration(cfg.durationMs, "config.durationMs")
        else:
            assert cfg.until is not None
            due = _parse_instant(self._eval(cfg.until.expr, scope))
            if due - now > timedelta(milliseconds=MAX_DURATION_MS):
                raise RunError(RuntimeErrorInfo(category="ExpressionError", message=f"time.wait until {format_instant(due)} is more than 100 years away"))
        due_at = format_instant(due)
        if due <= now:
            # always a wait row; no sleep for an instant that is not in the future
            self._wait_seq += 1
            self._wait_row({"waitSeq": self._wait_seq, "type": "time", "stepSeq": row["seq"], "stepId": step.id, "createdAt": self._now(), "dueAt": due_at}, "RESOLVED")
        else:
            wait, _ = await self._open_wait(step, row, scope, "time", dueAt=due_at)
            try:
                # opening the wait takes time (a busy database, a Temporal restart): a short wait
                # may already be due, and a timer cannot be negative
                remaining = due - workflow.now()
                if remaining > timedelta(0):
                    await workflow.sleep(remaining)
            except asyncio.CancelledError:
                self._close_wait(wait, "CANCELED", lambda status: self._wait_row(wait, status))
                raise
            self._close_wait(wait, "RESOLVED", lambda status: self._wait_row(wait, status))
        self._resume_with(scope, dict(cfg.assign or {}), timeWait={"dueAt": due_at})

    async def _event_wait(self, step: EventWaitStep, scope: _Scope, row: dict[str, Any]) -> None:
        cfg = step.config
        raw_key = self._eval(cfg.correlationKey.expr, scope)
        if raw_key is None:
            # such a wait could never be resumed: say so now instead of waiting forever
            raise RunError(RuntimeErrorInfo(category="ExpressionError", message=f"correlationKey {cfg.correlationKey.expr!r} evaluated to nothing (undefined or null)"))
        key = _key_string(raw_key)
        if len(key) > _MAX_CORRELATION_KEY:
            # the wait row could not be stored (its column holds 500 characters): say so now
            raise RunError(RuntimeErrorInfo(category="ExpressionError", message=f"correlationKey {cfg.correlationKey.expr!r} gave {len(key)} characters; at most {_MAX_CORRELATION_KEY} are accepted"))
        _checked(key, "config.correlationKey", what="correlation key")
        filters = [f.model_dump(mode="json") for f in cfg.filters or []]
        wait, _ = await self._open_wait(step, row, scope, "event", eventName=cfg.eventName, key=key, filters=filters)
        event = await self._block(wait, cfg.timeoutMs, lambda status: self._wait_row(wait, status, {"eventId": (wait["match"] or {}).get("eventId")} if status == "RESOLVED" else None))
        self._resume_with(scope, dict(cfg.assign or {}), event=event.get("payload"), eventName=event.get("eventName"))

    async def _human_task(self, step: HumanTaskStep, scope: _Scope, row: dict[str, Any]) -> None:
        cfg = step.config
        title = self._eval(cfg.title.expr, scope)
        description = self._eval(cfg.description.expr, scope) if cfg.description else None
        task = {
            "taskId": workflow.uuid4().hex, "taskType": cfg.taskType, "title": "" if title is None else str(title),
            "description": None if description is None else str(description), "contextData": self._resolve(cfg.contextData or {}, scope),
            "formSchema": cfg.formSchema,
        }
        for key in ("title", "description", "contextData"):
            _checked(task[key], f"config.{key}", what=f"task {key}")
        wait, _ = await self._open_wait(step, row, scope, "human", task=task, taskId=task["taskId"])

        def on_end(status: str) -> None:
            self._wait_row(wait, status, {"taskId": task["taskId"]})
            self._others.append({"kind": "task", "taskId": task["taskId"], "status": "COMPLETED" if status == "RESOLVED" else "CANCELED", "at": self._now()})

        message = await self._block(wait, cfg.timeoutMs, on_end)
        self._resume_with(scope, dict(cfg.assign or {}), event=message.get("response"), eventName="HUMAN_TASK_COMPLETED")

    # ----------------------------------------------------------------------------- actions

    async def _with_retry(self, step: ActionCallStep | CallWorkflowStep, path: str, scope: _Scope, row: dict[str, Any],
                          attempt_once: Callable[[int], Awaitable[Any]], done: int = 0) -> tuple[bool, Any]:
        """Run attempts under the step's retry policy; ``(True, result)`` or ``(False, status)``.

        ``done`` attempts already failed before (a resumed step): numbering continues after them,
        and the policy allows its attempts again.
        """
        policy = step.retry
        max_attempts = (policy.maxAttempts if policy else 1) + done
        attempt = done
        while True:
            attempt += 1
            row["attempts"] = attempt
            try:
                return True, await attempt_once(attempt)
            except RunError as err:
                info = err.info
                info.node_path, info.at = path, self._now()
                row["error"] = info.to_dict()
                if attempt < max_attempts and _should_retry(policy.retryOn if policy else None, info):
                    assert policy is not None
                    await workflow.sleep(timedelta(milliseconds=_backoff_ms(policy, attempt - done)))
                    continue
                return False, self._on_final_error(step, path, scope, row, info)

    async def _action_call(self, step: ActionCallStep, path: str, scope: _Scope, row: dict[str, Any], *, resumed: bool = False) -> str | None:
        assert self._input is not None
        inp = self._input
        cfg = step.config
        secret_paths: list[list[str | int]] = []
        try:
            action_input = self._resolve(cfg.inputMapping or {}, scope, secrets=secret_paths)
            _checked(action_input, "config.inputMapping", what="action input")
            key = self._idempotency_key(step, path, scope, action_input)
        except RunError as err:
            # The step's own config failed before any attempt: no attempt counted, no retry
            # (ExpressionError), but onError still applies.
            row["attempts"] = 0
            return self._on_final_error(step, path, scope, row, err.info)
        mock = inp.mocks.get(cfg.actionId)
        local = f"{cfg.actionId}@{cfg.version}" in inp.options.local_actions and workflow.patched(LOCAL_ACTIONS_PATCH)

        async def attempt_once(attempt: int) -> ActionResult:
            # this step's own row is the activity's to write (with the attempt's outcome)
            projections = [r for r in self._drain() if r is not row]
            req = ActionRequest(
                run_id=inp.run_id, tenant=inp.tenant, seq=row["seq"], step_id=step.id, step_path=path,
                item_index=scope.item_index, loop_indices=list(scope.loop_indices), action_id=cfg.actionId, action_version=cfg.version,
                input=action_input, attempt=attempt, idempotency_key=key, started_at=row["startedAt"], projections=projections, mock=mock,
                secret_paths=secret_paths,
            )
            try:
                if local:
                    # A short action runs in this workflow task (one marker event). A worker lost
                    # mid-action loses the task; the next one runs the attempt again, and the
                    # ledger answers it if the first one committed.
                    # no result_type: ActionResult.from_json decodes it (the SDK's reflective
                    # decoding resolved type hints on every result; the payload is the same)
                    raw = await workflow.execute_local_activity(
                        ACTION_ACTIVITY, req.to_json(), start_to_close_timeout=timedelta(milliseconds=inp.options.action_timeout_ms), retry_policy=_INFRA_RETRY,
                    )
                    return ActionResult.from_json(raw)
                # The attempt heartbeats while it runs: a worker lost mid-action is noticed after
                # the heartbeat timeout (seconds) instead of the start-to-close timeout, and a
                # cancel (TRY_CANCEL: the run moves on at once) reaches the running action at its
                # next heartbeat, which stops it and rolls back its transaction.
                raw = await workflow.execute_activity(
                    ACTION_ACTIVITY, req.to_json(), start_to_close_timeout=timedelta(milliseconds=inp.options.action_timeout_ms),
                    heartbeat_timeout=timedelta(milliseconds=inp.options.action_heartbeat_timeout_ms), retry_policy=_INFRA_RETRY,
                )
                return ActionResult.from_json(raw)
            except ActivityError as err:
                if isinstance(err.cause, TemporalCancelledError):
                    raise asyncio.CancelledError() from None  # we cancelled it: not the action's error
                raise RunError(_error_from_activity(err)) from None
            except ApplicationError as err:  # a local activity's failure comes unwrapped
                raise RunError(_error_from_cause(err)) from None
            except TemporalCancelledError:
                raise asyncio.CancelledError() from None

        ok, outcome = await self._with_retry(step, path, scope, row, attempt_once, row["attempts"] if resumed else 0)
        if not ok:
            return str(outcome)
        row["error"] = None
        row["_written"] = True  # the activity wrote the SUCCEEDED row itself
        if cfg.saveAs:
            self._assign(scope, cfg.saveAs, outcome.output)
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

    def _on_final_error(self, step: ActionCallStep | CallWorkflowStep, path: str, scope: _Scope, row: dict[str, Any], info: RuntimeErrorInfo) -> str:
        """Apply ``onError`` after the last attempt: continue (store at ``error``) or raise."""
        if info.node_path is None:
            info.node_path = path
        if info.at is None:
            info.at = self._now()
        row["error"] = info.to_dict()
        if step.onError is not None and step.onError.policy == "continue" and info.catchable:
            scope.data.error = info.to_dict()
            return "FAILED"
        raise RunError(info)

    # ------------------------------------------------------------------------------ children

    async def _call_workflow(self, step: CallWorkflowStep, path: str, scope: _Scope, row: dict[str, Any]) -> str | None:
        assert self._input is not None
        inp = self._input
        pinned = inp.children.get(f"{step.workflowId}@{step.workflowVersion}")
        if pinned is None:
            raise RunError(RuntimeErrorInfo(category="InterpreterCorruption", code="CHILD_NOT_PINNED",
                                            message=f"{step.workflowId} v{step.workflowVersion} was not pinned when the root run was launched"))
        try:
            payload = self._resolve(step.inputMapping or {}, scope)
            _checked(payload, "inputMapping", what="child payload")
        except RunError as err:
            row["attempts"] = 0
            return self._on_final_error(step, path, scope, row, err.info)

        sync = self._sync_status()

        async def attempt_once(attempt: int) -> RunResult:
            child_id = workflow.uuid4().hex
            child_input = RunInput(
                run_id=child_id, tenant=inp.tenant, workflow_id=step.workflowId, workflow_version=step.workflowVersion,
                definition=pinned.definition, definition_hash=pinned.definition_hash, semantics_version=inp.semantics_version,
                payload=payload, started_at=self._now(), parent_run_id=inp.run_id, root_run_id=inp.root_run_id or inp.run_id,
                mocks=inp.mocks, children=inp.children, options=inp.options, parent_step_seq=row["seq"],
            )
            if sync:
                self._children[child_id] = False  # RUNNING until it signals otherwise
            try:
                result: RunResult = await workflow.execute_child_workflow(
                    WORKFLOW_TYPE, child_input, id=workflow_id_for_run(child_id), task_queue=TASK_QUEUE, result_type=RunResult,
                    cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                return result
            except ChildWorkflowError as err:
                cause = err.cause
                if isinstance(cause, TemporalCancelledError):
                    raise asyncio.CancelledError() from None
                child_error = cause.details[0] if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict) else {"message": str(cause)}
                raise RunError(RuntimeErrorInfo(
                    category="ChildWorkflowError",
                    message=f"child run {child_id} of {step.workflowId} v{step.workflowVersion} failed: {child_error.get('message')}",
                    details={"childRunId": child_id, "error": child_error},
                )) from None
            finally:
                self._children.pop(child_id, None)  # ended: this branch is no longer blocked on it

        ok, outcome = await self._with_retry(step, path, scope, row, attempt_once)
        if not ok:
            return str(outcome)
        row["error"] = None
        if step.outputMapping:
            child_run = {"payload": outcome.payload, "vars": outcome.vars, "meta": outcome.meta}
            values = [(target, self._resolve(value, scope, {"childRun": child_run})) for target, value in step.outputMapping.items()]
            for target, value in values:
                self._assign(scope, target, value)
        return None


def _reopen_frames(frames: Resume) -> None:
    """Rows of a resume point (recorded as the failure left them) back to running."""
    for frame in frames:
        container = frame.get("container")
        if container is not None:
            row = container["row"]
            row["status"], row["error"] = "STARTED", None
            row.pop("endedAt", None)
            row.pop("durationMs", None)


def _backoff_ms(policy: RetryPolicy, attempt: int) -> float:
    try:
        delay = policy.backoffMs * policy.backoffMultiplier ** (attempt - 1)
    except OverflowError:
        delay = MAX_DURATION_MS
    if policy.maxDelayMs is not None:
        delay = min(delay, policy.maxDelayMs)
    delay = min(delay, MAX_DURATION_MS)  # never beyond what a timer can honour
    if policy.jitter:
        delay *= workflow.random().uniform(0.5, 1.0)
    return float(delay)


def _duration(ms: int, field: str) -> timedelta:
    """A configured duration as a timedelta; one the runtime cannot honour is a ValidationError."""
    if not 0 <= ms <= MAX_DURATION_MS:
        raise RunError(RuntimeErrorInfo(category="ValidationError", message=f"{field} {ms} is outside 0 … {MAX_DURATION_MS} ms (100 years)"))
    return timedelta(milliseconds=ms)


def _checked(value: Any, where: str, *, what: str = "value", limit: int = MAX_VALUE_BYTES) -> None:
    """Fail the step (ValidationError) when ``value`` is not JSON the runtime can store and send."""
    try:
        check_value(value, where, limit=limit, what=what)
    except ValueProblem as problem:
        raise RunError(RuntimeErrorInfo(category="ValidationError", code=problem.code, message=str(problem))) from None


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def _error_from_activity(err: ActivityError) -> RuntimeErrorInfo:
    return _error_from_cause(err.cause or err)


def _error_from_cause(cause: BaseException) -> RuntimeErrorInfo:
    """The action's structured error carried by ``cause`` (an activity's ApplicationError)."""
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return RuntimeErrorInfo.from_dict(cause.details[0])
    return RuntimeErrorInfo(category="ActionError", message=str(cause))


def _should_retry(retry_on: list[str] | None, info: RuntimeErrorInfo) -> bool:
    if not info.catchable:
        return False
    if retry_on is None:
        return info.category not in NOT_RETRIED_BY_DEFAULT
    return info.category in retry_on or (info.code is not None and info.code in retry_on)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality without coercion: 1 is not "1", true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_MISSING = object()


def _path_value(payload: Any, path: str) -> Any:
    node = payload
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _event_matches(wait: dict[str, Any], event: dict[str, Any]) -> bool:
    if event.get("eventName") != wait.get("eventName") or event.get("correlationKey") != wait.get("key"):
        return False
    for flt in wait.get("filters") or []:
        value = _path_value(event.get("payload"), flt["path"])
        op = flt["op"]
        if op == "exists":
            ok = value is not _MISSING
        elif op == "=":
            ok = value is not _MISSING and _json_equal(value, flt.get("value"))
        elif op == "!=":
            ok = value is _MISSING or not _json_equal(value, flt.get("value"))
        else:  # in
            options = flt.get("value")
            ok = value is not _MISSING and isinstance(options, list) and any(_json_equal(value, o) for o in options)
        if not ok:
            return False
    return True


def _key_string(value: Any) -> str:
    """A correlation key as JSONata ``$string`` would render it."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parse_instant(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            format_instant(parsed)  # an instant at the edge of the calendar cannot be converted to UTC
        except (ValueError, OverflowError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise RunError(RuntimeErrorInfo(category="ExpressionError", message=f"time.wait until must give an RFC 3339 instant with an offset, got {value!r}"))
