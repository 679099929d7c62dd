"""Long runs: continue-as-new at safe points, resuming exactly where the run stood."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType

from runtime_bootstrap._stack import Stack
from runtime_core.contract import RunOptions
from runtime_core.launcher import Launcher
from runtime_core.persistence import RunSnapshot
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view


def _assign(step_id: str, **exprs: str) -> dict[str, Any]:
    return {"id": step_id, "type": "transform.assign", "config": {"assign": {k: {"$expr": v} for k, v in exprs.items()}}}


async def _run(stack: Stack, definition: dict[str, Any], payload: dict[str, Any], cap: int) -> tuple[dict[str, Any], int]:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(stack.database, stack.registry, tenant, [definition])).published
    launcher = Launcher(stack.client, stack.database, RunOptions(continue_as_new_after_steps=cap, flush_every_rows=25))
    launched = await launcher.launch(tenant, definition["id"], payload)
    handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
    await handle.result()
    view = await run_view(stack.database, launched.run_id)
    assert view is not None
    runs = 0
    async for _ in stack.client.list_workflows(f"WorkflowId = '{launched.temporal_workflow_id}'"):
        runs += 1
    return view, runs


async def test_nested_loops_continue_as_new_and_resume_in_place(stack: Stack) -> None:
    """A loop in a try in a loop, with an if, continues-as-new many times and ends as if it never had."""
    definition = {"id": "long-nested", "version": 1, "name": "n", "steps": [
        _assign("init", count="0", trail="[]"),
        {"id": "outer", "type": "control.forEach", "items": {"$expr": "[1..6]"}, "itemVar": "o", "collect": {"$expr": "vars.count"}, "saveAs": "vars.counts", "body": [
            {"id": "guard", "type": "control.tryCatch", "captureErrorAs": "err", "try": [
                {"id": "inner", "type": "control.forEach", "items": {"$expr": "[1..5]"}, "itemVar": "i", "body": [
                    _assign("bump", count="vars.count + 1"),
                    {"id": "odd", "type": "control.if", "condition": {"$expr": "o = 3 and i = 4"}, "then": [
                        {"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": "o3i4"}}}]},
                ]}],
             "catch": [_assign("caught", trail="$append(vars.trail, [vars.err.message & '@' & $string(o)])")]},
        ]},
        _assign("done", finished="true"),
    ]}
    view, runs = await _run(stack, definition, {}, cap=7)
    assert view["status"] == "SUCCEEDED", view["error"]
    assert view["vars"]["count"] == 29  # 30 bumps but o=3 stops at i=4
    assert view["vars"]["counts"] == [5, 10, 14, 19, 24, 29]
    assert view["vars"]["trail"] == ["o3i4@3"]
    assert view["vars"]["finished"] is True
    assert runs > 5, "the run should have continued-as-new several times"
    seqs = [s["seq"] for s in view["steps"]]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "one row per step execution, sequence continued"
    assert [s["status"] for s in view["steps"] if s["stepId"] in ("outer", "guard", "inner")].count("STARTED") == 0
    async with stack.database.sessions() as session:
        from sqlalchemy import func, select

        snapshots = (await session.execute(select(func.count()).select_from(RunSnapshot).where(RunSnapshot.run_id == view["runId"]))).scalar_one()
    assert snapshots == runs - 1


async def test_ten_thousand_iterations_keep_history_bounded(stack: Stack) -> None:
    """A 10,000-iteration loop completes; no single run's history grows past a few hundred events."""
    definition = {"id": "long-10k", "version": 1, "name": "n", "steps": [
        _assign("init", count="0"),
        {"id": "loop", "type": "control.forEach", "items": {"$expr": "[1..10000]"}, "itemVar": "i", "body": [_assign("bump", count="vars.count + 1")]},
    ]}
    view, runs = await _run(stack, definition, {}, cap=2000)
    assert view["status"] == "SUCCEEDED"
    assert view["vars"]["count"] == 10000
    assert len(view["steps"]) == 10002
    longest = 0
    async for execution in stack.client.list_workflows(f"WorkflowId = 'workflow-runtime-v2:run:{view['runId']}'"):
        events = [e async for e in stack.client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history_events()]
        longest = max(longest, len(events))
        assert sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events) < 100
    assert runs >= 5 and longest < 500


async def _event_count(stack: Stack, steps: list[dict[str, Any]]) -> int:
    definition = {"id": f"cost-{uuid.uuid4().hex[:6]}", "version": 1, "name": "cost", "steps": steps}
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(stack.database, stack.registry, tenant, [definition])).published
    launched = await stack.launcher.launch(tenant, definition["id"], {})
    handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
    await handle.result()
    return len([e async for e in handle.fetch_history_events()])


async def test_history_cost_per_step(stack: Stack) -> None:
    """An action step costs at most 7 history events (an activity is 6); assign and if steps cost none."""
    echo = {"type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"a": 1}}}
    empty = await _event_count(stack, [])
    controls = await _event_count(stack, [
        *(_assign(f"a{i}", x=str(i)) for i in range(10)),
        *({"id": f"if{i}", "type": "control.if", "condition": {"$expr": "true"}, "then": [_assign(f"t{i}", y="1")]} for i in range(5)),
    ])
    actions = await _event_count(stack, [{"id": f"e{i}", **echo} for i in range(5)])
    assert controls == empty
    assert (actions - empty) / 5 <= 7
