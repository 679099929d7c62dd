"""Resume: a FAILED run continues from its failed step, as the same run, through Temporal's reset.

Each definition increments a counter before the failure: the counter must stay exact (nothing
before the failed step runs again), and `core.fail` with `succeedOnAttempt: 2` (no retry policy)
must succeed on the resumed attempt (the attempt count continues).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from runtime_bootstrap._stack import Stack
from runtime_core.operations import Conflict, LaunchRequest, Operations
from runtime_core.persistence import DataStoreEntry


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _inc(step_id: str, key: str) -> dict[str, Any]:
    return {"id": step_id, "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": key}}}


def _fail(step_id: str) -> dict[str, Any]:
    return {"id": step_id, "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": "boom", "succeedOnAttempt": 2}}}


SEQUENCE = {"id": "seq", "version": 1, "name": "seq", "steps": [_inc("before", "before"), _fail("boom"), _inc("after", "after")]}
LOOP = {"id": "loop", "version": 1, "name": "loop", "steps": [
    {"id": "each", "type": "control.forEach", "items": {"$expr": "[1, 2, 3]"}, "itemVar": "n", "body": [
        {"id": "count", "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": {"$expr": "'item-' & $string(n)"}}}},
        {"id": "two", "type": "control.if", "condition": {"$expr": "n = 2"}, "then": [_fail("boom")]},
    ]},
    _inc("after", "after"),
]}
TRY = {"id": "try", "version": 1, "name": "try", "steps": [
    {"id": "guard", "type": "control.tryCatch", "try": [
        {"id": "first", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": "always"}}}],
     "catch": [_inc("before", "before"), _fail("boom")]},
    _inc("after", "after"),
]}
CHILD = {"id": "child", "version": 1, "name": "child", "steps": [_inc("before", "child-before"), _fail("boom")]}
PARENT = {"id": "parent", "version": 1, "name": "parent", "steps": [{"id": "call", "type": "control.callWorkflow", "workflowId": "child", "workflowVersion": 1}]}
BAD_EXPR = {"id": "bad", "version": 1, "name": "bad", "steps": [_inc("before", "before"), {"id": "x", "type": "transform.assign", "config": {"assign": {"y": {"$expr": "$number('x')"}}}}]}


async def _finish(stack: Stack, run_id: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").result(), 60)


async def _counters(stack: Stack, tenant: str) -> dict[str, Any]:
    async with stack.database.sessions() as session:
        return {k: v for k, v in await session.execute(select(DataStoreEntry.key, DataStoreEntry.value).where(DataStoreEntry.tenant == tenant))}


@pytest.mark.parametrize(("definition", "counters", "failed_path"), [
    (SEQUENCE, {"before": 1, "after": 1}, "root.steps[1]"),
    (LOOP, {"item-1": 1, "item-2": 1, "item-3": 1, "after": 1}, "root.steps[0].body.steps[1].then.steps[0]"),
    (TRY, {"before": 1, "after": 1}, "root.steps[0].catch.steps[1]"),
], ids=["sequence", "loop-body", "catch-block"])
async def test_resume_continues_from_the_failed_step(stack: Stack, definition: dict[str, Any], counters: dict[str, int], failed_path: str) -> None:
    """FAILED, resumed, SUCCEEDED as the same run; earlier steps not run again; the attempt count continues."""
    tenant = _tenant()
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    await ops.publish(tenant, [definition])
    run, _ = await ops.launch_run(tenant, LaunchRequest(workflowId=definition["id"], payload={}))
    await _finish(stack, run.runId)
    failed = await ops.get_run(tenant, run.runId)
    assert failed.status == "FAILED" and failed.error is not None and failed.error["nodePath"] == failed_path
    resumed = await ops.resume_run(tenant, run.runId, actor="frank", reason="the mail server is back")
    assert resumed.runId == run.runId and resumed.status == "RUNNING"
    await _finish(stack, run.runId)
    done = await ops.get_run(tenant, run.runId)
    assert done.status == "SUCCEEDED", done.error
    assert await _counters(stack, tenant) == counters
    steps = await ops.run_steps(tenant, run.runId)
    boom = [s for s in steps if s.stepId == "boom"]
    assert [(s.status, s.attempts) for s in boom] == [("SUCCEEDED", 2)]  # the same row, its attempts continued
    assert all(s.status == "SUCCEEDED" for s in steps if s.stepId != "first"), [(s.stepId, s.status) for s in steps]
    (action,) = done.history
    assert (action.action, action.actor, action.reason) == ("resume", "frank", "the mail server is back") and action.detail["attempt"] == 2
    described = await stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run.runId}").describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    invocations = await ops.run_invocations(tenant, run.runId)
    assert sorted(i.attempt for i in invocations if i.actionId == "core.fail") == [2]


async def test_resume_refuses_what_it_cannot_continue(stack: Stack) -> None:
    """A run failed by its child, by an expression, or not FAILED: 409 with the reason."""
    tenant = _tenant()
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    await ops.publish(tenant, [CHILD, PARENT, BAD_EXPR, SEQUENCE])
    parent, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="parent", payload={}))
    bad, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="bad", payload={}))
    for run in (parent, bad):
        await _finish(stack, run.runId)
    with pytest.raises(Conflict, match="child"):
        await ops.resume_run(tenant, parent.runId, actor="x", reason=None)
    (child,) = await ops.run_children(tenant, parent.runId)
    with pytest.raises(Conflict, match="child of run"):
        await ops.resume_run(tenant, child.runId, actor="x", reason=None)
    with pytest.raises(Conflict, match="ExpressionError"):
        await ops.resume_run(tenant, bad.runId, actor="x", reason=None)
    ok, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="seq", payload={}))
    await _finish(stack, ok.runId)
    await ops.resume_run(tenant, ok.runId, actor="x", reason=None)
    await _finish(stack, ok.runId)
    with pytest.raises(Conflict, match="SUCCEEDED"):
        await ops.resume_run(tenant, ok.runId, actor="x", reason=None)
    assert (await _counters(stack, tenant))["child-before"] == 1
