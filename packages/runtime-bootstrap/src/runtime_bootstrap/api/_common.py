"""What the routers share: path and paging parameters, and whole lists as one page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypeVar

from fastapi import Path, Query

from runtime_core.operations import Page

__all__ = ["Cursor", "Limit", "RunId", "TaskId", "whole"]

T = TypeVar("T")

RunId = Annotated[str, Path(alias="runId", description="The run's id.")]
TaskId = Annotated[str, Path(alias="taskId", description="The task's id.")]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1–200).")]
Cursor = Annotated[str | None, Query(max_length=1000, description="`nextCursor` of the previous page (opaque).")]


def whole(items: Sequence[T]) -> Page[T]:
    """A list the operation returns whole (a run's steps, a workflow's versions) as one page."""
    return Page[T](items=list(items), nextCursor=None)
