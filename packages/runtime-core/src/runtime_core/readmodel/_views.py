"""Read-model views of runs, as the CLI, API and scenario outcomes show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from runtime_core.persistence import Database, RunRow, StepRow, TaskRow, WaitRow

__all__ = ["TERMINAL_STATUSES", "run_view"]

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})


async def run_view(database: Database, run_id: str, *, tenant: str | None = None, include_children: bool = True) -> dict[str, Any] | None:
    """The run with its steps (by sequence), waits, tasks and children (by start).

    Args:
        database: The read model.
        run_id: Run to show.
        tenant: When given, a run of another tenant is reported as missing.
        include_children: Recurse into child runs.

    Returns:
        The view, or ``None`` when there is no such run (for this tenant).
    """
    async with database.sessions() as session:
        run = await session.get(RunRow, run_id)
        if run is None or (tenant is not None and run.tenant != tenant):
            return None
        steps = (await session.execute(select(StepRow).where(StepRow.run_id == run_id).order_by(StepRow.seq))).scalars().all()
        waits = (await session.execute(select(WaitRow).where(WaitRow.run_id == run_id).order_by(WaitRow.seq))).scalars().all()
        tasks = (await session.execute(select(TaskRow).where(TaskRow.run_id == run_id).order_by(TaskRow.created_at))).scalars().all()
        child_ids = (await session.execute(select(RunRow.run_id).where(RunRow.parent_run_id == run_id).order_by(RunRow.created_at))).scalars().all()
    result = run.result or {}
    view: dict[str, Any] = {
        "runId": run.run_id,
        "tenant": run.tenant,
        "workflowId": run.workflow_id,
        "workflowVersion": run.workflow_version,
        "status": run.status,
        "payload": result.get("payload", run.input),
        "vars": result.get("vars", {}),
        "meta": result.get("meta", {}),
        "error": run.error,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "endedAt": run.ended_at.isoformat() if run.ended_at else None,
        "steps": [
            {
                "seq": s.seq, "stepId": s.step_id, "stepPath": s.step_path, "type": s.step_type, "status": s.status,
                "attempts": s.attempts, "itemIndex": s.item_index, "durationMs": s.duration_ms, "error": s.error,
            }
            for s in steps
        ],
        "waits": [{"type": w.wait_type, "status": w.status, "eventName": w.event_name, "key": w.correlation_key} for w in waits],
        "tasks": [{"taskId": t.task_id, "taskType": t.task_type, "status": t.status, "title": t.title} for t in tasks],
        "children": [],
    }
    if include_children:
        for child_id in child_ids:
            child = await run_view(database, child_id, tenant=tenant)
            if child is not None:
                view["children"].append(child)
    return view
