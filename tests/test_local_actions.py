"""Short actions run as Temporal local activities (issue 15, part 1), pinned per run by the launcher.

The behaviour of a run must not depend on the kind: the same definition gives the same steps,
counters, ledger and result whether its actions run as local or as regular activities; only the
history's shape differs (one marker a step instead of six events).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from runtime_bootstrap._stack import Stack
from runtime_core.actions import ActionContext, ActionRegistry
from runtime_core.contract import RunOptions
from runtime_core.interpreter._workflow import LOCAL_ACTIONS_PATCH
from runtime_core.launcher import Launcher
from runtime_core.persistence import ActionInvocation, DataStoreEntry, RunRow, StepRow
from runtime_core.publishing import publish_definitions


def _inc(step_id: str, key: str) -> dict[str, Any]:
    return {"id": step_id, "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": key}}}


def _chain(workflow_id: str, steps: int) -> dict[str, Any]:
    return {"id": workflow_id, "version": 1, "name": workflow_id, "steps": [_inc(f"s{i}", "n") for i in range(steps)]}


MIXED = {"id": "mixed", "version": 1, "name": "mixed", "steps": [
    _inc("a", "m"),
    {"id": "nap", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": 10}}},
    {"id": "flaky", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"succeedOnAttempt": 2, "category": "TransientError"},
                                                      "saveAs": "vars.flaky"}, "retry": {"maxAttempts": 3, "backoffMs": 1}},
    {"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"category": "ValidationError", "message": "no"}},
     "onError": {"policy": "continue"}},
    _inc("b", "m"),
]}


async def _run(stack: Stack, launcher: Launcher, tenant: str, workflow_id: str) -> tuple[str, list[Any]]:
    launched = await launcher.launch(tenant, workflow_id, {})
    handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
    await asyncio.wait_for(handle.result(), 60)
    history = await handle.fetch_history()
    return launched.run_id, list(history.events)


def _count(events: list[Any], kind: int) -> int:
    return sum(1 for e in events if e.event_type == kind)


async def _outcome(stack: Stack, tenant: str, run_id: str) -> dict[str, Any]:
    async with stack.database.sessions() as session:
        run = await session.get(RunRow, run_id)
        assert run is not None
        steps = (await session.execute(select(StepRow.step_id, StepRow.status, StepRow.attempts).where(StepRow.run_id == run_id).order_by(StepRow.seq))).all()
        ledger = (await session.execute(select(ActionInvocation.step_path, ActionInvocation.attempt).where(ActionInvocation.run_id == run_id).order_by(ActionInvocation.id))).all()
        store = dict((await session.execute(select(DataStoreEntry.key, DataStoreEntry.value).where(DataStoreEntry.tenant == tenant))).all())
    return {"status": run.status, "vars": (run.result or {}).get("vars"), "steps": [tuple(s) for s in steps], "ledger": [tuple(r) for r in ledger], "store": store}


def test_registry_marks_short_actions() -> None:
    """Built-ins that finish at once are short; ``core.delay`` and a user's action (by default) are not."""
    registry = ActionRegistry.default()
    assert registry.short_actions() == ["core.echo@1", "core.fail@1", "data.delete@1", "data.get@1", "data.increment@1", "data.set@1"]

    async def quick(ctx: ActionContext, payload: Any) -> Any:
        return payload

    registry.register("acme.quick", 1, quick, short=True)
    registry.register("acme.slow", 1, quick)
    assert "acme.quick@1" in registry.short_actions() and "acme.slow@1" not in registry.short_actions()


async def test_short_actions_cost_one_marker_each_and_behave_like_regular_ones(sqlite_stack: Stack) -> None:
    """A chain of short actions records one marker a step (≤ 2 history events a step); the same
    definitions with every action regular give the same steps, attempts, ledger, store and result."""
    stack = sqlite_stack
    outcomes = {}
    for kind, launcher in (("local", stack.launcher), ("regular", Launcher(stack.client, stack.database, RunOptions()))):
        tenant = f"t-{kind}-{uuid.uuid4().hex[:6]}"
        assert (await publish_definitions(stack.database, stack.registry, tenant, [_chain("c10", 10), _chain("c20", 20), MIXED])).published
        _, ten = await _run(stack, launcher, tenant, "c10")
        _, twenty = await _run(stack, launcher, tenant, "c20")
        per_step = (len(twenty) - len(ten)) / 10
        scheduled = _count(twenty, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        if kind == "local":
            assert per_step <= 2, f"{per_step} history events per short action step"
            assert scheduled == 0
            markers = [e for e in twenty if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
            assert any(LOCAL_ACTIONS_PATCH.encode() in e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
                       for e in markers if e.marker_recorded_event_attributes.marker_name == "core_patch")
        else:
            assert scheduled == 20 and per_step >= 6
        run_id, events = await _run(stack, launcher, tenant, "mixed")
        # core.delay is never short: one regular activity in both kinds
        assert _count(events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == (1 if kind == "local" else 6)
        outcomes[kind] = await _outcome(stack, tenant, run_id)
    assert outcomes["local"] == outcomes["regular"]
    local = outcomes["local"]
    assert local["status"] == "SUCCEEDED" and local["store"] == {"n": 30, "m": 2}
    assert local["vars"]["flaky"] == {"attempt": 2}
    assert local["steps"] == [("a", "SUCCEEDED", 1), ("nap", "SUCCEEDED", 1), ("flaky", "SUCCEEDED", 2), ("boom", "FAILED", 1), ("b", "SUCCEEDED", 1)]
