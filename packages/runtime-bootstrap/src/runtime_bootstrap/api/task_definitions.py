"""Task definitions: a human task type and the JSON Schema its responses must fit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runtime_bootstrap.api._deps import Author, Ops
from runtime_bootstrap.api._models import TaskTypeRegistered
from runtime_core.operations import TaskDefinitionRequest

__all__ = ["router"]

router = APIRouter(tags=["task-definitions"])


@router.post("/task-definitions", status_code=201, response_model=TaskTypeRegistered)
async def register_task_definition(body: TaskDefinitionRequest, who: Author, ops: Ops) -> Any:
    """Register (or replace) a task type's form schema (422 when the schema cannot be used)."""
    return await ops.register_task_type(who.tenant, body)
