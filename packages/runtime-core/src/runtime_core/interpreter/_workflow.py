"""The interpreter workflow: one deterministic Temporal workflow that runs any published definition.

Temporal's sandbox re-imports this module into a fresh sandbox for every run, so it stays thin:
it binds the engine (``runtime_core.interpreter._engine``, a sandbox passthrough loaded once per
process) to the workflow type, its signals and its queries. The design notes are in the engine's
module and in docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from runtime_core.contract import (
        CHILD_STATUS_SIGNAL,
        EVENT_SIGNAL,
        HUMAN_TASK_SIGNAL,
        QUERY_CURRENT_STEP,
        QUERY_CURRENT_WAIT,
        QUERY_INTERPRETER_SUMMARY,
        WORKFLOW_TYPE,
        RunInput,
        RunResult,
    )
    from runtime_core.interpreter._engine import CHILD_WAITING_PATCH, LOCAL_ACTIONS_PATCH, LOCAL_PROJECTIONS_PATCH, InterpreterEngine

__all__ = ["CHILD_WAITING_PATCH", "LOCAL_ACTIONS_PATCH", "LOCAL_PROJECTIONS_PATCH", "InterpreterWorkflow"]


@workflow.defn(name=WORKFLOW_TYPE)
class InterpreterWorkflow(InterpreterEngine):
    """Runs one authored run (root or child) of a pinned definition."""

    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        """Interpret the run's pinned definition to its end (or continue-as-new)."""
        return await super().run(inp)

    @workflow.query(name=QUERY_CURRENT_STEP)
    def current_step(self) -> dict[str, Any] | None:
        """The step executing now (id, path, type, seq), if any."""
        return super().current_step()

    @workflow.query(name=QUERY_CURRENT_WAIT)
    def current_wait(self) -> dict[str, Any] | None:
        """The most recently opened wait that is still open, if any."""
        return super().current_wait()

    @workflow.query(name=QUERY_INTERPRETER_SUMMARY)
    def summary(self) -> dict[str, Any]:
        """Status, step count and the current scopes of the run."""
        return super().summary()

    @workflow.signal(name=EVENT_SIGNAL)
    def on_event(self, event: dict[str, Any]) -> None:
        """An inbound event for this run: resumes the oldest matching open wait, else is kept."""
        super().on_event(event)

    @workflow.signal(name=HUMAN_TASK_SIGNAL)
    def on_task_response(self, message: dict[str, Any]) -> None:
        """A validated response to one of this run's open tasks."""
        super().on_task_response(message)

    @workflow.signal(name=CHILD_STATUS_SIGNAL)
    def on_child_status(self, message: dict[str, Any]) -> None:
        """A child run awaited by this run reports that it is WAITING, or RUNNING again."""
        super().on_child_status(message)
