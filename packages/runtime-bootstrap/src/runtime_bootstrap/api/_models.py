"""Response shapes of the API that the operations return as plain dictionaries.

Everything else is a model of :mod:`runtime_core.operations` (shared with the CLI's ``--json``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime_core.operations import (
    EventView,
    InvocationView,
    RunDetail,
    RunSummary,
    StepView,
    TaskView,
    VersionDetail,
    WaitView,
)

__all__ = ["CancelAccepted", "Health", "Readiness", "RunExport", "TaskTypeRegistered"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancelAccepted(_Out):
    """A cancel was requested (the run ends CANCELED shortly), or the run was reconciled instead."""

    runId: str
    status: str = Field(description="`CANCEL_REQUESTED`, or the status reconciliation gave a run whose Temporal execution had already ended.")


class RunExport(_Out):
    """Everything about a run and its definition version, for a bug report."""

    exportedAt: str
    run: RunDetail
    steps: list[StepView]
    waits: list[WaitView]
    tasks: list[TaskView]
    invocations: list[InvocationView]
    events: list[EventView]
    children: list[RunSummary]
    definition: VersionDetail | None = Field(description="The pinned definition version (null if it is no longer stored).")


class TaskTypeRegistered(_Out):
    """A task type whose form schema was registered (or replaced)."""

    taskType: str


class Health(_Out):
    """The process is up."""

    status: Literal["ok"] = "ok"


class Readiness(_Out):
    """Every dependency answered."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(description="Each check and what it found (`database`, `temporal`).")
