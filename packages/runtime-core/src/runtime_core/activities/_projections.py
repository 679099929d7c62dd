"""Applying the interpreter's buffered projection rows.

Every write is a single upsert statement (``INSERT … ON CONFLICT``), so activity retries, a
concurrent slow-action progress write and concurrent runs never race on "read, then insert".
The statements are built once per dialect and executed with parameters: building SQLAlchemy
constructs per call cost more CPU than the database work itself (see docs/performance.md).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, literal_column, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from runtime_core.persistence import RunRow, RunSnapshot, Statement, StepRow, TaskRow, WaitRow, execute_statements, utcnow
from runtime_core.persistence._upsert import dialect_of, greatest, insert_for, table_of
from runtime_core.secrets import redact

__all__ = ["TERMINAL", "apply_projections", "parse_instant", "projection_statements"]

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
_STEPS = table_of(StepRow)
_WAITS = table_of(WaitRow)
_RUNS = table_of(RunRow)
_TASKS = table_of(TaskRow)
_WAIT_OPTIONAL = (("stepSeq", "step_seq"), ("stepId", "step_id"), ("eventName", "event_name"), ("key", "correlation_key"), ("dueAt", "due_at"))


def parse_instant(value: str | None) -> datetime | None:
    """Parse an RFC 3339 instant written by the interpreter."""
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def apply_projections(session: AsyncSession | AsyncConnection, tenant: str, run_id: str, rows: list[dict[str, Any]]) -> None:
    """Upsert buffered rows; a terminal step or wait status is never moved back.

    Activity retries may re-deliver rows, so every write is idempotent: steps and waits are
    keyed by ``(run_id, seq)``, a child's run row by its id.
    """
    await execute_statements(session, projection_statements(dialect_of(session), tenant, run_id, rows))


def projection_statements(dialect: str, tenant: str, run_id: str, rows: list[dict[str, Any]]) -> list[Statement]:
    """The statements :func:`apply_projections` executes for ``rows``, in order.

    Built once and run by whoever holds the transaction: an async connection, or
    :meth:`runtime_core.persistence.Database.write` (one thread hand-off on SQLite).
    """
    if not rows:
        return []
    now = utcnow()
    out: list[Statement] = []
    steps: dict[int, dict[str, Any]] = {}
    snapshots: list[dict[str, Any]] = []
    for data in rows:
        kind = data.get("kind")
        if kind == "step":
            _merge_step(steps, data)
        elif kind == "run-create":
            out.append((_create_run(dialect), _run_values(tenant, data, now)))
        elif kind == "snapshot":
            snapshots.append({"tenant": tenant, "run_id": run_id, "kind": data["snapshotKind"], "snapshot": redact(data["snapshot"]), "taken_at": parse_instant(data["takenAt"]) or now})
    if snapshots:
        out.append((insert(table_of(RunSnapshot)), snapshots))
    if steps:
        out.append((_upsert_steps(dialect), [_step_values(tenant, run_id, d) for d in steps.values()]))
    for data in rows:
        kind = data.get("kind")
        if kind == "wait":
            present = tuple(column for key, column in _WAIT_OPTIONAL if key in data and (key != "dueAt" or data[key] is not None))
            out.append((_upsert_wait(dialect, present), _wait_values(tenant, run_id, data, now)))
        elif kind == "task":
            canceled = data["status"] == "CANCELED"
            out.append((_update_task(canceled), {"p_task": data["taskId"], "p_status": data["status"], **({"p_at": parse_instant(data.get("at"))} if canceled else {})}))
        elif kind == "run":
            out.append((_update_run_status(), {"p_run": run_id, "p_status": data["status"], "p_now": now}))
    return out


def _merge_step(merged: dict[int, dict[str, Any]], data: dict[str, Any]) -> None:
    """Fold one step row into the batch, in order (a terminal status is never moved back)."""
    prev = merged.get(data["seq"])
    if prev is None:
        merged[data["seq"]] = data
    elif not (prev["status"] in TERMINAL and data["status"] not in TERMINAL):
        merged[data["seq"]] = {**data, "attempts": max(prev.get("attempts", 0), data.get("attempts", 0)), "startedAt": data.get("startedAt") or prev.get("startedAt")}


def _step_values(tenant: str, run_id: str, d: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant": tenant, "run_id": run_id, "seq": d["seq"], "step_id": d["stepId"], "step_path": d["stepPath"], "step_type": d["type"],
        "status": d["status"], "attempts": d.get("attempts", 0), "item_index": d.get("itemIndex"), "loop_indices": d.get("loopIndices") or None,
        "started_at": parse_instant(d.get("startedAt")), "ended_at": parse_instant(d.get("endedAt")), "duration_ms": d.get("durationMs"),
        "error": d.get("error"),
    }


def _run_values(tenant: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    started = parse_instant(data["startedAt"]) or now
    return {
        "run_id": data["runId"], "tenant": tenant, "workflow_id": data["workflowId"], "workflow_version": data["workflowVersion"],
        "status": "RUNNING", "engine": "temporal", "temporal_workflow_id": data["temporalWorkflowId"], "temporal_run_id": data["temporalRunId"],
        "definition_hash": data["definitionHash"], "semantics_version": data["semanticsVersion"], "parent_run_id": data["parentRunId"],
        "root_run_id": data["rootRunId"], "input": redact(data["input"]), "trigger": {"parentStepSeq": data["parentStepSeq"]},
        "created_at": started, "started_at": started, "updated_at": now,
    }


def _wait_values(tenant: str, run_id: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "tenant": tenant, "run_id": run_id, "seq": data["seq"], "wait_type": data["type"], "created_at": parse_instant(data["createdAt"]) or now,
        "status": data["status"], "resolved_at": parse_instant(data.get("resolvedAt")), "resolution": redact(data.get("resolution")),
        "step_seq": data.get("stepSeq"), "step_id": data.get("stepId"), "event_name": data.get("eventName"), "correlation_key": data.get("key"),
        "due_at": parse_instant(data.get("dueAt")),
    }


def _not_terminal(column: Any) -> Any:
    """``column NOT IN (terminal statuses)`` with the statuses inlined: an expanding ``IN``
    parameter cannot be used with executemany."""
    return and_(*(column != literal_column(f"'{status}'") for status in sorted(TERMINAL)))


@functools.cache
def _create_run(dialect: str) -> Any:
    """A child run's row, written by its own first projection (a root's comes from the launcher)."""
    return insert_for(dialect, _RUNS).on_conflict_do_nothing(index_elements=["run_id"])


@functools.cache
def _upsert_steps(dialect: str) -> Any:
    stmt = insert_for(dialect, _STEPS)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "seq"],
        set_={
            "step_id": new.step_id, "step_path": new.step_path, "step_type": new.step_type, "status": new.status,
            "attempts": greatest(dialect, _STEPS.c.attempts, new.attempts), "item_index": new.item_index, "loop_indices": new.loop_indices,
            "started_at": func.coalesce(new.started_at, _STEPS.c.started_at), "ended_at": new.ended_at, "duration_ms": new.duration_ms, "error": new.error,
        },
        where=or_(_not_terminal(_STEPS.c.status), ~_not_terminal(new.status)),
    )


@functools.cache
def _upsert_wait(dialect: str, present: tuple[str, ...]) -> Any:
    """A wait row; once it has left WAITING it is never changed again. Absent fields keep their value."""
    stmt = insert_for(dialect, _WAITS)
    new = stmt.excluded
    set_ = {"status": new.status, "resolved_at": new.resolved_at, "resolution": new.resolution, **{column: new[column] for column in present}}
    return stmt.on_conflict_do_update(index_elements=["run_id", "seq"], set_=set_, where=_WAITS.c.status == "WAITING")


@functools.cache
def _update_task(canceled: bool) -> Any:
    values: dict[str, Any] = {"status": bindparam("p_status")}
    if canceled:
        values["completed_at"] = bindparam("p_at")
    return update(_TASKS).where(_TASKS.c.task_id == bindparam("p_task"), _TASKS.c.status == "PENDING").values(values)


@functools.cache
def _update_run_status() -> Any:
    return update(_RUNS).where(_RUNS.c.run_id == bindparam("p_run"), _not_terminal(_RUNS.c.status)).values(status=bindparam("p_status"), updated_at=bindparam("p_now"))
