"""Why a run makes no progress, in words an operator understands, found from Temporal.

A RUNNING run whose last step progress is older than ``stuck_after_seconds`` is examined:

* ``NO_WORKER``: no poller on ``workflow-runtime-v2`` (DescribeTaskQueue);
* ``EXECUTION_GONE``: its Temporal execution is closed or missing while the row is open;
* ``WORKFLOW_TASK_FAILING``: its pending workflow task has been attempted more than once (the
  last failure, from the history, in ``detail``);
* ``ACTIVITY_RETRYING``: a pending activity has been attempted more than once (its last failure);
* ``BACKLOG``: workers poll, but the queue holds more than ``backlog_threshold`` tasks.

What Temporal says is cached for ``cache_seconds`` (the queue once for all runs, each execution
once), so listing 200 runs makes a handful of calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingWorkflowTaskState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.contract import TASK_QUEUE
from runtime_core.operations._base import iso
from runtime_core.operations._schemas import Diagnosis
from runtime_core.persistence import RunRow
from runtime_core.values import safe_text

if TYPE_CHECKING:
    from runtime_core.operations._runs import RunReads

__all__ = ["Diagnoser"]


class _Cache:
    """Answers kept for a few seconds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[str, tuple[float, Any]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._values.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.seconds:
            return hit[1]
        value = await fetch()
        self._values[key] = (now, value)
        if len(self._values) > 10_000:
            self._values = {k: v for k, v in self._values.items() if now - v[0] < self.seconds}
        return value


class Diagnoser:
    """Diagnoses runs that make no progress."""

    def __init__(self, ops: Any, *, stuck_after_seconds: float, cache_seconds: float, backlog_threshold: int) -> None:
        """Configure thresholds; ``ops`` is the operations object (database, client, progress)."""
        self.ops: RunReads = ops
        self.stuck_after = timedelta(seconds=stuck_after_seconds)
        self.backlog_threshold = backlog_threshold
        self._cache = _Cache(cache_seconds)

    async def for_rows(self, rows: list[RunRow]) -> dict[str, Diagnosis]:
        """Diagnoses of the RUNNING runs among ``rows`` that made no progress for too long."""
        running = [r for r in rows if r.status == "RUNNING"]
        if not running or self.ops._client is None:
            return {}
        progress = await self.ops.last_progress(running)
        now = datetime.now(UTC)
        stale = [(r, progress[r.run_id]) for r in running if now - _aware(progress[r.run_id]) > self.stuck_after]
        if not stale:
            return {}
        found = await asyncio.gather(*(self.diagnose(row, since) for row, since in stale))
        return {row.run_id: d for (row, _), d in zip(stale, found, strict=True) if d is not None}

    async def diagnose(self, row: RunRow, since: datetime) -> Diagnosis | None:
        """The diagnosis of one run that made no progress since ``since``, or ``None``."""
        at = iso(_aware(since)) or ""
        try:
            return await self._diagnose(row, at)
        except RPCError as err:  # Temporal itself is unreachable: say so rather than fail the read
            return Diagnosis(since=at, reason="NO_WORKER", detail=f"Temporal could not be asked about this run ({safe_text(err.message, 200)}); check that Temporal is reachable")

    async def _diagnose(self, row: RunRow, at: str) -> Diagnosis | None:
        pollers, backlog = await self._cache.get("queue", self._queue)
        if not pollers:
            return Diagnosis(since=at, reason="NO_WORKER",
                             detail=f"no worker is polling {TASK_QUEUE}: start workflow-worker (with WFR_TEMPORAL_NAMESPACE={self.ops.client.namespace})")
        described = await self._cache.get(f"run:{row.temporal_workflow_id}", lambda: self._describe(row.temporal_workflow_id))
        if described is None:
            return Diagnosis(since=at, reason="EXECUTION_GONE",
                             detail="Temporal has no execution for this run (deleted, or past its retention): reconcile it (wfr runs reconcile)")
        status, pending_task, activities = described
        if status != WorkflowExecutionStatus.RUNNING:
            return Diagnosis(since=at, reason="EXECUTION_GONE",
                             detail=f"its Temporal execution is {status.name} while the run is still open: reconcile it (wfr runs reconcile)")
        if pending_task is not None and pending_task["attempt"] > 1:
            failure = await self._cache.get(f"wft:{row.temporal_workflow_id}", lambda: self._last_task_failure(row.temporal_workflow_id))
            return Diagnosis(since=at, reason="WORKFLOW_TASK_FAILING",
                             detail=f"its workflow task failed {pending_task['attempt'] - 1} time(s), last: {failure}; fix the cause (see the worker's log) and it retries")
        for activity in activities:
            if activity["attempt"] > 1:
                return Diagnosis(since=at, reason="ACTIVITY_RETRYING",
                                 detail=f"activity {activity['type']} is on attempt {activity['attempt']}, last failure: {activity['failure'] or 'timed out'}; "
                                        "it is retried until the cause (database, worker, Temporal) is fixed")
        if backlog > self.backlog_threshold:
            return Diagnosis(since=at, reason="BACKLOG",
                             detail=f"workers poll {TASK_QUEUE}, but {backlog} tasks wait in its backlog: add workflow-worker processes")
        return None

    async def _queue(self) -> tuple[int, int]:
        """Pollers of the authored queue's workflow tasks and its approximate backlog."""
        request = DescribeTaskQueueRequest(
            namespace=self.ops.client.namespace, task_queue=TaskQueue(name=TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, report_stats=True,
        )
        response = await self.ops.client.workflow_service.describe_task_queue(request)
        backlog = int(response.stats.approximate_backlog_count) if response.HasField("stats") else 0
        return len(response.pollers), backlog

    async def _describe(self, workflow_id: str) -> tuple[WorkflowExecutionStatus, dict[str, Any] | None, list[dict[str, Any]]] | None:
        request = DescribeWorkflowExecutionRequest(namespace=self.ops.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id))
        try:
            response = await self.ops.client.workflow_service.describe_workflow_execution(request)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        status = WorkflowExecutionStatus(response.workflow_execution_info.status)
        task = None
        if response.HasField("pending_workflow_task") and response.pending_workflow_task.state != PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_UNSPECIFIED:
            task = {"attempt": response.pending_workflow_task.attempt}
        activities = [
            {"type": a.activity_type.name, "attempt": a.attempt, "failure": safe_text(a.last_failure.message, 300) if a.HasField("last_failure") else ""}
            for a in response.pending_activities
        ]
        return status, task, activities

    async def _last_task_failure(self, workflow_id: str) -> str:
        """The message of the execution's last failed workflow task."""
        request = GetWorkflowExecutionHistoryReverseRequest(namespace=self.ops.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id), maximum_page_size=50)
        response = await self.ops.client.workflow_service.get_workflow_execution_history_reverse(request)
        for event in response.history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return safe_text(event.workflow_task_failed_event_attributes.failure.message, 300) or "no message"
        return "not in its recent history"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
