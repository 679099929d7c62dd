"""Applying the interpreter's buffered projection rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from runtime_core.persistence import RunRow, RunSnapshot, StepRow, TaskRow, WaitRow, utcnow
from runtime_core.secrets import redact

__all__ = ["apply_projections", "parse_instant"]

_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})


def parse_instant(value: str | None) -> datetime | None:
    """Parse an RFC 3339 instant written by the interpreter."""
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def apply_projections(session: AsyncSession, tenant: str, run_id: str, rows: list[dict[str, Any]]) -> None:
    """Upsert buffered rows; a terminal step status is never moved back to STARTED.

    Activity retries may re-deliver rows, so every write is an idempotent upsert keyed by
    ``(run_id, seq)``.
    """
    for data in rows:
        if data.get("kind") == "run-create" and await session.get(RunRow, data["runId"]) is None:
            started = parse_instant(data["startedAt"]) or utcnow()
            session.add(
                RunRow(
                    run_id=data["runId"], tenant=tenant, workflow_id=data["workflowId"], workflow_version=data["workflowVersion"],
                    status="RUNNING", engine="temporal", temporal_workflow_id=data["temporalWorkflowId"], temporal_run_id=data["temporalRunId"],
                    definition_hash=data["definitionHash"], semantics_version=data["semanticsVersion"], parent_run_id=data["parentRunId"],
                    root_run_id=data["rootRunId"], input=redact(data["input"]), trigger={"parentStepSeq": data["parentStepSeq"]},
                    created_at=started, started_at=started, updated_at=utcnow(),
                )
            )
            await session.flush()
        elif data.get("kind") == "snapshot":
            session.add(RunSnapshot(tenant=tenant, run_id=run_id, kind=data["snapshotKind"], snapshot=redact(data["snapshot"]), taken_at=parse_instant(data["takenAt"]) or utcnow()))
    steps = [r for r in rows if r.get("kind") == "step"]
    if steps:
        seqs = [r["seq"] for r in steps]
        existing = {
            row.seq: row
            for row in (await session.execute(select(StepRow).where(StepRow.run_id == run_id, StepRow.seq.in_(seqs)))).scalars()
        }
        for data in steps:
            row = existing.get(data["seq"])
            if row is None:
                row = StepRow(tenant=tenant, run_id=run_id, seq=data["seq"])
                session.add(row)
                existing[data["seq"]] = row
            elif row.status in _TERMINAL and data["status"] not in _TERMINAL:
                continue
            row.step_id = data["stepId"]
            row.step_path = data["stepPath"]
            row.step_type = data["type"]
            row.status = data["status"]
            row.attempts = max(row.attempts or 0, data.get("attempts", 0))
            row.item_index = data.get("itemIndex")
            row.loop_indices = data.get("loopIndices") or None
            row.started_at = parse_instant(data.get("startedAt")) or row.started_at
            row.ended_at = parse_instant(data.get("endedAt"))
            row.duration_ms = data.get("durationMs")
            row.error = data.get("error")
    for data in rows:
        if data.get("kind") == "wait":
            wait = (await session.execute(select(WaitRow).where(WaitRow.run_id == run_id, WaitRow.seq == data["seq"]))).scalar_one_or_none()
            if wait is None:
                wait = WaitRow(tenant=tenant, run_id=run_id, seq=data["seq"], wait_type=data["type"], created_at=parse_instant(data["createdAt"]) or utcnow())
                session.add(wait)
            elif wait.status != "WAITING":
                continue
            wait.status = data["status"]
            wait.step_seq = data.get("stepSeq", wait.step_seq)
            wait.step_id = data.get("stepId", wait.step_id)
            wait.event_name = data.get("eventName", wait.event_name)
            wait.correlation_key = data.get("key", wait.correlation_key)
            wait.due_at = parse_instant(data.get("dueAt")) or wait.due_at
            wait.resolved_at = parse_instant(data.get("resolvedAt"))
            wait.resolution = redact(data.get("resolution"))
        elif data.get("kind") == "task":
            task = await session.get(TaskRow, data["taskId"])
            if task is not None and task.status == "PENDING":
                task.status = data["status"]
                if data["status"] == "CANCELED":
                    task.completed_at = parse_instant(data.get("at"))
        elif data.get("kind") == "run":
            run = await session.get(RunRow, run_id)
            if run is not None and run.status not in _TERMINAL:
                run.status = data["status"]
                run.updated_at = utcnow()
