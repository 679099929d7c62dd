"""Human tasks: list, read with the form schema, complete (validated), admin override."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from runtime_bootstrap.api._common import Cursor, Limit, TaskId
from runtime_bootstrap.api._deps import Admin, Operator, Ops, Viewer
from runtime_core.operations import CompleteTaskRequest, OverrideTaskRequest, Page, TaskDetail, TaskView

__all__ = ["router"]

router = APIRouter(tags=["tasks"])

_NOT_PENDING: dict[int | str, dict[str, Any]] = {409: {"description": "The task is not PENDING (answered or cancelled)."}}


@router.get("/tasks", response_model=Page[TaskView])
async def list_tasks(
    who: Viewer,
    ops: Ops,
    status: Annotated[Literal["PENDING", "COMPLETED", "CANCELED", "ALL"], Query(description="Tasks of this status; `ALL` for every task.")] = "PENDING",
    task_type: Annotated[str | None, Query(alias="taskType", max_length=200)] = None,
    run_id: Annotated[str | None, Query(alias="runId", max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskView]:
    """The tenant's human tasks, newest first (PENDING ones unless `status` says otherwise)."""
    return await ops.list_tasks(who.tenant, status=None if status == "ALL" else status, task_type=task_type, run_id=run_id, limit=limit, cursor=cursor)


@router.get("/tasks/{taskId}", response_model=TaskDetail)
async def get_task(task_id: TaskId, who: Viewer, ops: Ops) -> TaskDetail:
    """One task with its form schema, context (redacted) and answer."""
    return await ops.get_task(who.tenant, task_id)


@router.post("/tasks/{taskId}/complete", response_model=TaskDetail, responses=_NOT_PENDING)
async def complete_task(task_id: TaskId, body: CompleteTaskRequest, who: Operator, ops: Ops) -> TaskDetail:
    """Answer a task: the response is validated against its form schema (422 lists every violation; the task stays open)."""
    return await ops.complete_task(who.tenant, task_id, body, actor=who.actor)


@router.post("/tasks/{taskId}/override", response_model=TaskDetail, responses=_NOT_PENDING)
async def override_task(task_id: TaskId, body: OverrideTaskRequest, who: Admin, ops: Ops) -> TaskDetail:
    """An admin's answer that skips the form schema; the actor and reason are recorded in the run's history."""
    return await ops.override_task(who.tenant, task_id, body, actor=who.actor)
