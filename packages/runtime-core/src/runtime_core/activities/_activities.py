"""Activities of the interpreter workflow, as bound methods with injected dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from runtime_core import metrics, tracing
from runtime_core.actions import ActionContext, ActionFailure, ActionRegistry
from runtime_core.activities._projections import apply_projections, parse_instant, projection_statements
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
from runtime_core.logs import log_context
from runtime_core.persistence import (
    ActionInvocation,
    Database,
    Plan,
    RunRow,
    RuntimeEvent,
    Statement,
    TaskDefinition,
    TaskRow,
    WaitRow,
    execute_statements,
    ignore_outcomes,
    utcnow,
)
from runtime_core.persistence._upsert import insert_for, table_of
from runtime_core.secrets import EnvSecretProvider, SecretNotFound, SecretProvider, redact, resolve_secrets, scrub, scrub_text
from runtime_core.values import ValueProblem, check_value, safe_text

__all__ = ["RuntimeActivities", "action_error", "event_signal", "infrastructure_error", "is_database_unavailable"]

log = logging.getLogger(__name__)

_LEDGER = table_of(ActionInvocation)
_LEDGER_LOOKUP = select(_LEDGER.c.output).where(_LEDGER.c.tenant == bindparam("p_tenant"), _LEDGER.c.idempotency_key == bindparam("p_key"))
_LEDGER_INSERT = insert(_LEDGER)
_RUNS = table_of(RunRow)
_WAITS = table_of(WaitRow)
_TASKS = table_of(TaskRow)
_TASK_DEFS = table_of(TaskDefinition)


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


#: Largest ``details`` object an action error may carry (bigger ones are dropped, with a note).
_MAX_DETAILS_BYTES = 16 * 1024
#: PostgreSQL SQLSTATE classes and codes that mean "try again later": connection exceptions,
#: insufficient resources, operator intervention (shutdown), system errors, serialization
#: failures and deadlocks.
_RETRY_SQLSTATE_CLASSES = ("08", "53", "57", "58")
_RETRY_SQLSTATES = ("40001", "40P01")


def is_database_unavailable(err: BaseException) -> bool:
    """Whether ``err`` says the database could not do the work now (locked, unreachable, restarting).

    Such failures are infrastructure: the attempt is retried by Temporal underneath and never
    counts as an authored attempt, whoever met them (the runtime's bookkeeping or an action
    writing through ``ctx.connection``).
    """
    if isinstance(err, sa_exc.DBAPIError):
        if err.connection_invalidated or isinstance(err, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        return isinstance(code, str) and (code[:2] in _RETRY_SQLSTATE_CLASSES or code in _RETRY_SQLSTATES)
    return isinstance(err, (sa_exc.TimeoutError, sa_exc.DisconnectionError, ConnectionError, TimeoutError))


def _short(err: BaseException) -> str:
    """One line about ``err`` without SQL text or parameters (which may hold data or secrets)."""
    inner = getattr(err, "orig", None) or err
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return safe_text(f"{type(inner).__name__}: {text}" if text else type(inner).__name__, 300)


def infrastructure_error(where: str, err: BaseException) -> ApplicationError:
    """Log one line and return the retryable error that makes Temporal retry the activity.

    An expected retry (the database locked or restarting) is one warning line, not a traceback;
    anything else that breaks the runtime's own bookkeeping is logged with its traceback, since
    it is a bug, and retried all the same.
    """
    if is_database_unavailable(err):
        log.warning("%s: database unavailable (%s); Temporal retries it", where, _short(err))
    else:
        log.error("%s: runtime bookkeeping failed (%s); Temporal retries it", where, _short(err), exc_info=err)
    return ApplicationError(f"{where}: {_short(err)}", type="InfrastructureError", non_retryable=False, category=ApplicationErrorCategory.BENIGN)


class _NoConnection:
    """The ``ctx.connection`` of an action registered with ``uses_database=False``."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("this action was registered with uses_database=False, so it has no database connection; register it with uses_database=True")


_NO_CONNECTION = cast(AsyncConnection, _NoConnection())


class _HandlerError(Exception):
    """An exception raised by an action's own code: that attempt's ``ActionError``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class RuntimeActivities:
    """Activities registered by the authored worker."""

    def __init__(
        self,
        database: Database,
        registry: ActionRegistry,
        secrets: SecretProvider | None = None,
        on_committed: Callable[[ActionRequest], Awaitable[None]] | None = None,
        progress_after: float | None = 0.25,
    ) -> None:
        """Inject dependencies.

        Args:
            database: Where projections and the idempotency ledger live.
            registry: The actions this worker can run.
            secrets: Resolves ``{"$secret": NAME}`` references; environment variables by default.
            on_committed: Called after an invocation and its ledger row committed, before the
                result goes back to Temporal (metrics; crash tests use it to die in that window).
            progress_after: Seconds after which a still-running action's STARTED row is written
                on the side; ``None`` writes it only with the step's outcome.
        """
        self.database = database
        self.registry = registry
        self.secrets: SecretProvider = secrets or EnvSecretProvider()
        self.on_committed = on_committed
        self.progress_after = progress_after

    def all(self) -> list[Any]:
        """Every activity method, for ``Worker(activities=...)``."""
        return [self.run_action, self.open_wait, self.project, self.finalize]

    @activity.defn(name=ACTION_ACTIVITY)
    async def run_action(self, request: Any) -> ActionResult:
        """Run one attempt of an ``action.call`` step, exactly once per idempotency key.

        A fast action costs one transaction: the buffered projections, the action's own writes,
        its ledger row and its SUCCEEDED step row commit together. An action still running after
        ``progress_after`` seconds gets its STARTED row (and the buffered rows before it) written
        on the side, so a slow call is visible in the read model while it runs.

        Only the action's own failure is its error (``ActionFailure``, or any other exception
        its handler raises): it is returned to the interpreter as a non-retryable error, and the
        authored retry policy decides. A database that is locked, unreachable or restarting, and
        any failure of the runtime's own bookkeeping, is infrastructure: the attempt is retried by
        Temporal underneath and never counts as an attempt. The attempt heartbeats while it runs,
        so a lost worker is noticed within the heartbeat timeout and a cancel stops it. Every
        line logged during the attempt (the handler's own included) carries its tenant, run id,
        step path, action id and attempt, and never a secret value it resolved. With tracing on,
        the attempt is the span ``wfr.action <action id>`` (:func:`runtime_core.tracing.action_span`).

        ``request`` is an :class:`ActionRequest` or its JSON object: it is typed ``Any`` so that
        the SDK hands over the JSON as it is and :meth:`ActionRequest.from_json` decodes it.
        """
        req = ActionRequest.from_json(request)
        used: list[str] = []
        with (
            log_context(tenant=req.tenant, runId=req.run_id, stepPath=req.step_path, actionId=req.action_id, attempt=req.attempt, _secrets=used),
            tracing.action_span(run_id=req.run_id, step_path=req.step_path, action_id=req.action_id, tenant=req.tenant, attempt=req.attempt),
        ):
            return await self._run_action(req, used)

    async def _run_action(self, req: ActionRequest, used: list[str]) -> ActionResult:
        """The attempt :meth:`run_action` describes; ``used`` collects the secret values it resolves."""
        started = parse_instant(req.started_at)
        where = f"run {req.run_id} step {req.step_path} ({req.action_id} v{req.action_version}, attempt {req.attempt})"
        # a local activity (a short action) cannot heartbeat: its workflow task stands for it
        heartbeat = _Heartbeat() if activity.in_activity() and not activity.info().is_local else None
        progress = _ProgressWrite(lambda: self._finish_step(req, "STARTED", None), self.progress_after) if self.progress_after is not None else None
        spec = self.registry.get(req.action_id, req.action_version) if req.mock is None else None
        done: list[dict[str, Any]] = []  # the committed rows of a successful attempt, for the metrics
        try:
            try:
                if spec is not None and spec.uses_database:
                    # the handler's writes, the ledger row and the step row commit together
                    async with self.database.engine.begin() as conn:
                        recorded = (await conn.execute(_LEDGER_LOOKUP, {"p_tenant": req.tenant, "p_key": req.idempotency_key})).first()
                        if recorded is not None:
                            await apply_projections(conn, req.tenant, req.run_id, _rows(req, "SUCCEEDED", started))
                        else:
                            output = await self._invoke(req, conn, used)
                            done = _rows(req, "SUCCEEDED", started)
                            await execute_statements(conn, self._record_statements(req, output, done))
                    if recorded is not None:
                        return _replayed(req, recorded[0])
                else:
                    # no connection is held while the handler runs (a slow call, a sleep)
                    recorded = await self.database.first(_LEDGER_LOOKUP, {"p_tenant": req.tenant, "p_key": req.idempotency_key})
                    if recorded is not None:
                        await self.database.write(self._rows_statements(req, _rows(req, "SUCCEEDED", started)))
                        return _replayed(req, recorded[0])
                    output = await self._invoke(req, _NO_CONNECTION, used)
                    done = _rows(req, "SUCCEEDED", started)
                    await self.database.write(self._record_statements(req, output, done))
            finally:
                if progress is not None:
                    await progress.settle()
        except ActionFailure as failure:
            raise await self._fail(req, started, failure.category, failure.message, used, code=failure.code, details=failure.details) from None
        except _HandlerError as handler:
            err = handler.error
            message = scrub_text(f"{type(err).__name__}: {err}", used)
            log.warning("%s raised %s", where, safe_text(message, 500))
            log.debug("%s: traceback", where, exc_info=err)
            raise await self._fail(req, started, "ActionError", message, used) from None
        except SecretNotFound as err:
            raise await self._fail(req, started, "ValidationError", str(err), used) from None
        except IntegrityError as err:
            # A concurrent attempt with the same key won the race: its output is the answer.
            try:
                async with self.database.engine.begin() as conn:
                    row = (await conn.execute(_LEDGER_LOOKUP, {"p_tenant": req.tenant, "p_key": req.idempotency_key})).first()
                    if row is None:
                        raise infrastructure_error(where, err) from None
                    await apply_projections(conn, req.tenant, req.run_id, _rows(req, "SUCCEEDED", started))
            except ApplicationError:
                metrics.observe_action(req.action_id, "infrastructure_error")
                raise
            except Exception as again:
                metrics.observe_action(req.action_id, "infrastructure_error")
                raise infrastructure_error(where, again) from None
            return _replayed(req, row[0])
        except (ApplicationError, asyncio.CancelledError):
            raise
        except Exception as err:  # the database or the runtime's own bookkeeping: never the action's error
            metrics.observe_action(req.action_id, "infrastructure_error")
            raise infrastructure_error(where, err) from None
        finally:
            if heartbeat is not None:
                heartbeat.stop()
        metrics.observe_action(req.action_id, "succeeded")
        metrics.observe_rows(done)
        if self.on_committed is not None:
            await self.on_committed(req)
        return ActionResult(output=output)

    def _record_statements(self, req: ActionRequest, output: Any, rows: list[dict[str, Any]]) -> list[Statement]:
        """The attempt's ledger row and ``rows``: the buffered rows and its SUCCEEDED step row."""
        ledger = {
            "tenant": req.tenant, "idempotency_key": req.idempotency_key, "run_id": req.run_id, "step_seq": req.seq,
            "step_path": req.step_path, "action_id": req.action_id, "action_version": req.action_version, "attempt": req.attempt,
            "mocked": req.mock is not None, "input": redact(req.input), "output": output, "created_at": utcnow(),
        }
        return [(_LEDGER_INSERT, ledger), *self._rows_statements(req, rows)]

    def _rows_statements(self, req: ActionRequest, rows: list[dict[str, Any]]) -> list[Statement]:
        return projection_statements(self.database.dialect, req.tenant, req.run_id, rows)

    async def _invoke(self, req: ActionRequest, conn: AsyncConnection, used: list[str]) -> Any:
        """The action's output (or its mock's), secrets scrubbed, checked storable.

        Raises:
            ActionFailure: The action's structured failure, or an output the runtime cannot take.
            _HandlerError: Any other exception of the handler.
            sqlalchemy errors: The database was unavailable (infrastructure).
        """
        if req.mock is not None:
            if req.mock.error is not None:
                err = req.mock.error
                raise ActionFailure(str(err.get("message", "mocked failure")), category=str(err.get("category", "ActionError")), code=err.get("code"), details=err.get("details"))
            output = req.mock.output
        else:
            spec = self.registry.get(req.action_id, req.action_version)
            if spec is None:
                raise ActionFailure(f"action {req.action_id!r} version {req.action_version} is not registered on this worker", category="ValidationError")
            resolved, secret_values = resolve_secrets(req.input, self.secrets, req.tenant, req.secret_paths)
            used.extend(secret_values)
            ctx = ActionContext(
                tenant=req.tenant, run_id=req.run_id, step_id=req.step_id, step_path=req.step_path, seq=req.seq,
                item_index=req.item_index, attempt=req.attempt, idempotency_key=req.idempotency_key, connection=conn, secret_values=secret_values,
            )
            try:
                output = await spec.handler(ctx, resolved)
                await ctx.flush()
            except (ActionFailure, asyncio.CancelledError):
                raise
            except Exception as err:
                if is_database_unavailable(err):
                    raise
                raise _HandlerError(err) from err
        output = scrub(output, used)
        try:
            check_value(output, "output", what="action output")
        except ValueProblem as problem:
            raise ActionFailure(f"{req.action_id} v{req.action_version} returned an unusable value: {problem}", code=problem.code) from None
        return output

    async def _finish_step(self, req: ActionRequest, status: str, started: Any, error: dict[str, Any] | None = None) -> None:
        await self.database.write(self._rows_statements(req, _rows(req, status, started, error)))

    async def _fail(self, req: ActionRequest, started: Any, category: str, message: str, used: list[str], *,
                    code: str | None = None, details: dict[str, Any] | None = None) -> ApplicationError:
        """The attempt's error for the workflow: its message and details scrubbed of secrets and bounded."""
        message = safe_text(scrub_text(message, used))
        if details is not None:
            details = scrub(details, used)
            try:
                check_value(details, "details", limit=_MAX_DETAILS_BYTES)
            except ValueProblem as problem:
                details = {"dropped": f"the action's error details were not kept: {problem.reason}"}
        if code is not None:
            code = safe_text(scrub_text(str(code), used), 200)
        err = action_error(category, message, code=code, details=details)
        metrics.observe_action(req.action_id, "failed", category)
        info = {"category": category, "message": message, "code": code, "nodePath": req.step_path}
        # The row stays STARTED with the attempt's error: the workflow decides whether another
        # attempt follows and projects the terminal status itself. The row is only for
        # visibility: when the database is unavailable the action's error still goes back.
        try:
            await self._finish_step(req, "STARTED", started, info)
        except Exception as write_error:
            log.warning("could not record the failed attempt's row (%s); the run records it later", _short(write_error))
        return err

    @activity.defn(name=OPEN_WAIT_ACTIVITY)
    async def open_wait(self, req: OpenWaitRequest) -> OpenWaitResult:
        """Write the wait row (with its task row) and the run's status, then look up early events."""
        try:
            result = await self._open_wait(req)
            metrics.observe_rows(req.projections)
            return result
        except (ApplicationError, asyncio.CancelledError):
            raise
        except Exception as err:
            raise infrastructure_error(f"run {req.run_id}: opening wait {req.wait_seq}", err) from None

    async def _open_wait(self, req: OpenWaitRequest) -> OpenWaitResult:
        result = OpenWaitResult()
        created = parse_instant(req.created_at) or utcnow()
        async with self.database.engine.begin() as conn:
            dialect = conn.dialect.name
            await apply_projections(conn, req.tenant, req.run_id, req.projections)
            # an activity retry must not write the rows twice
            await conn.execute(
                insert_for(dialect, _WAITS).on_conflict_do_nothing(index_elements=["run_id", "seq"]),
                {
                    "tenant": req.tenant, "run_id": req.run_id, "seq": req.wait_seq, "step_seq": req.step_seq, "step_id": req.step_id, "wait_type": req.wait_type,
                    "status": "WAITING", "event_name": req.event_name, "correlation_key": req.correlation_key, "filters": req.filters,
                    "due_at": parse_instant(req.due_at), "created_at": created,
                },
            )
            if req.task is not None:
                task = req.task
                schema = task.get("formSchema")
                if schema is None:
                    schema = (
                        await conn.execute(select(_TASK_DEFS.c.form_schema).where(_TASK_DEFS.c.tenant == req.tenant, _TASK_DEFS.c.task_type == task["taskType"]))
                    ).scalar_one_or_none()
                result.form_schema = schema
                await conn.execute(
                    insert_for(dialect, _TASKS).on_conflict_do_nothing(index_elements=["task_id"]),
                    {
                        "task_id": task["taskId"], "tenant": req.tenant, "run_id": req.run_id, "wait_seq": req.wait_seq, "step_id": req.step_id,
                        "task_type": task["taskType"], "title": task["title"], "description": task.get("description"),
                        "context_data": redact(task.get("contextData")), "form_schema": schema, "status": "PENDING", "created_at": created,
                    },
                )
            if req.run_waiting:
                await conn.execute(update(_RUNS).where(_RUNS.c.run_id == req.run_id, _RUNS.c.status == "RUNNING").values(status="WAITING", updated_at=utcnow()))
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
        try:
            await self.database.write(projection_statements(self.database.dialect, req.tenant, req.run_id, req.projections))
        except (ApplicationError, asyncio.CancelledError):
            raise
        except Exception as err:
            raise infrastructure_error(f"run {req.run_id}: writing projections", err) from None
        metrics.observe_rows(req.projections)

    @activity.defn(name=FINALIZE_ACTIVITY)
    async def finalize(self, req: FinalizeRequest) -> None:
        """Write the remaining rows, then the run row's terminal state, in one transaction."""
        try:
            await self._finalize(req)
        except (ApplicationError, asyncio.CancelledError):
            raise
        except Exception as err:
            raise infrastructure_error(f"run {req.run_id}: recording its end ({req.status})", err) from None

    async def _finalize(self, req: FinalizeRequest) -> None:
        before = await self.database.transaction(lambda: self._finalize_plan(req))
        metrics.observe_rows(req.projections)
        if before is not None and before.status != req.status and req.status in ("CANCELED", "FAILED", "SUCCEEDED"):
            metrics.observe_run_ended(before.workflow_id, req.status)

    def _finalize_plan(self, req: FinalizeRequest) -> Plan[Any]:
        """The finalize transaction; its result is the run row as it was before (workflow id, status)."""
        ended = parse_instant(req.ended_at)
        yield from ignore_outcomes(projection_statements(self.database.dialect, req.tenant, req.run_id, req.projections))
        # what the row said before: a retried finalize must not count the run's end twice
        before = yield (_RUN_BEFORE, {"p_run": req.run_id})
        updated = yield (_RUN_END, {"p_run": req.run_id, "p_status": req.status, "p_result": req.result, "p_error": req.error, "p_ended": ended, "p_now": utcnow()})
        if updated == 0:
            raise ApplicationError(f"run {req.run_id} has no run row; it was not started by the launcher", non_retryable=True)
        if req.status in ("CANCELED", "FAILED", "SUCCEEDED"):
            # nothing stays open once the run has ended
            yield (_CLOSE_WAITS, {"p_run": req.run_id, "p_ended": ended})
            yield (_CLOSE_TASKS, {"p_run": req.run_id, "p_ended": ended})
        return before


_RUN_BEFORE = select(_RUNS.c.workflow_id, _RUNS.c.status).where(_RUNS.c.run_id == bindparam("p_run"))
_RUN_END = update(_RUNS).where(_RUNS.c.run_id == bindparam("p_run")).values(
    status=bindparam("p_status"), result=bindparam("p_result", type_=_RUNS.c.result.type), error=bindparam("p_error", type_=_RUNS.c.error.type),
    ended_at=bindparam("p_ended", type_=_RUNS.c.ended_at.type), updated_at=bindparam("p_now", type_=_RUNS.c.updated_at.type),
)
_CLOSE_WAITS = update(_WAITS).where(_WAITS.c.run_id == bindparam("p_run"), _WAITS.c.status == "WAITING").values(
    status="CANCELED", resolved_at=bindparam("p_ended", type_=_WAITS.c.resolved_at.type),
)
_CLOSE_TASKS = update(_TASKS).where(_TASKS.c.run_id == bindparam("p_run"), _TASKS.c.status == "PENDING").values(
    status="CANCELED", completed_at=bindparam("p_ended", type_=_TASKS.c.completed_at.type),
)


class _Heartbeat:
    """Heartbeats the current (regular) activity every interval until stopped.

    A timer callback rather than a task (the SDK throttles what it sends): the first heartbeat
    comes after one interval, so an action that finishes sooner (most do) costs one timer.
    """

    def __init__(self) -> None:
        timeout = activity.info().heartbeat_timeout
        self._interval = min(0.5, timeout.total_seconds() / 4) if timeout else 0.5
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(self._interval, self._beat)

    def _beat(self) -> None:
        activity.heartbeat()
        self._handle = self._loop.call_later(self._interval, self._beat)

    def stop(self) -> None:
        """No more heartbeats."""
        self._handle.cancel()


class _ProgressWrite:
    """A write that happens only if the action is still running after a delay (a timer until then)."""

    def __init__(self, write: Callable[[], Awaitable[None]], delay: float) -> None:
        self._write = write
        self._task: asyncio.Task[None] | None = None
        self._handle = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._write()
        except Exception as err:  # the step's final write carries the same rows; this only delays visibility
            log.warning("could not write a slow action's STARTED row (%s); its final row will follow", _short(err))

    async def settle(self) -> None:
        """Drop the write if it has not begun, else let it finish.

        Called once the action's own transaction has ended, so a progress write waiting for the
        database (SQLite's single writer) is never waited on while that transaction holds the lock.
        """
        self._handle.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _replayed(req: ActionRequest, output: Any) -> ActionResult:
    """The result of an attempt answered from the ledger (counted as ``replayed``)."""
    metrics.observe_action(req.action_id, "replayed")
    return ActionResult(output=output, replayed=True)


def event_signal(row: RuntimeEvent) -> dict[str, Any]:
    """The signal payload of a stored inbound event."""
    return {
        "eventId": row.event_id, "eventName": row.event_name, "correlationKey": row.correlation_key,
        "payload": row.payload, "receivedAt": row.received_at.isoformat(),
    }


def _rows(req: ActionRequest, status: str, started: Any, error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The attempt's buffered rows followed by its own step row."""
    return [*req.projections, _step_row(req, status, started, error)]


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
