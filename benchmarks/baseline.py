"""Hand-written Temporal code doing the same work as the authored definitions, with no interpreter
and no projections: the baseline side of every benchmark pair."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

BASELINE_QUEUE = "bench-baseline"
#: The same workflows run directly (no sandbox), for the ratio against our direct interpreter.
DIRECT_QUEUE = "bench-baseline-direct"


def baseline_runner() -> WorkflowRunner:
    """The hand-written side's runner: the SDK's default, Temporal's workflow sandbox."""
    return SandboxedWorkflowRunner()


@activity.defn(name="benchNoop")
async def noop(data: dict[str, Any]) -> dict[str, Any]:
    """The trivial async action both sides run."""
    return data


@activity.defn(name="benchStamp")
async def stamp() -> float:
    """When the first activity started (wall clock), for launch latency."""
    return time.time()


@workflow.defn(name="benchSequential")
class SequentialWorkflow:
    """N sequential activities."""

    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_activity(noop, {"i": i}, start_to_close_timeout=timedelta(seconds=30))
        return steps


@workflow.defn(name="benchSequentialLocal")
class SequentialLocalWorkflow:
    """N sequential local activities: the hand-written counterpart of short actions."""

    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_local_activity(noop, {"i": i}, start_to_close_timeout=timedelta(seconds=30))
        return steps


@workflow.defn(name="benchFirstActivity")
class FirstActivityWorkflow:
    """One activity that reports when it started."""

    @workflow.run
    async def run(self) -> float:
        return await workflow.execute_activity(stamp, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name="benchWaiter")
class WaiterWorkflow:
    """Waits for one signal."""

    def __init__(self) -> None:
        self.got: dict[str, Any] | None = None

    @workflow.signal(name="go")
    def go(self, payload: dict[str, Any]) -> None:
        self.got = payload

    @workflow.run
    async def run(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.got is not None)
        assert self.got is not None
        return self.got


@activity.defn(name="benchFailOnce")
async def fail_once(attempt: int) -> int:
    """Fails on the first call of a workflow (the workflow passes its own attempt number)."""
    if attempt == 1:
        raise ApplicationError("first attempt fails", non_retryable=True, category=ApplicationErrorCategory.BENIGN)  # BENIGN: not logged as a failure
    return attempt


@workflow.defn(name="benchSleep")
class SleepWorkflow:
    """``workflow.sleep(ms)``; returns the workflow time it took, in ms."""

    @workflow.run
    async def run(self, ms: int) -> float:
        before = workflow.now()
        await workflow.sleep(timedelta(milliseconds=ms))
        return (workflow.now() - before).total_seconds() * 1000


@workflow.defn(name="benchRetryAfterSleep")
class RetryAfterSleepWorkflow:
    """An activity that fails, ``workflow.sleep(ms)``, the activity again: a hand-written step retry."""

    @workflow.run
    async def run(self, ms: int) -> int:
        attempt = 1
        while True:
            try:
                return int(await workflow.execute_activity(fail_once, attempt, start_to_close_timeout=timedelta(seconds=30)))
            except Exception:
                attempt += 1
                await workflow.sleep(timedelta(milliseconds=ms))


WORKFLOWS = [SequentialWorkflow, SequentialLocalWorkflow, FirstActivityWorkflow, WaiterWorkflow, SleepWorkflow, RetryAfterSleepWorkflow]
ACTIVITIES = [noop, stamp, fail_once]
