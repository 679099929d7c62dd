"""A parent blocked on a WAITING child is WAITING too (DSL.md, "Run and projection statuses").

Every test runs on the real Temporal dev server and a real database (SQLite and PostgreSQL) and
reads the run rows the interpreter projects.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from runtime_bootstrap._stack import Stack
from runtime_core.ingress import EventIngress
from runtime_core.persistence import RunRow
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view

TIMEOUT = 60.0


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _waiter(wf_id: str, *, timeout_ms: int | None = None, after_ms: int = 0) -> dict[str, Any]:
    """A definition that waits on the event ``go`` keyed by ``payload.key`` (then maybe sleeps)."""
    config: dict[str, Any] = {"eventName": "go", "correlationKey": {"$expr": "payload.key"}, "assign": {"vars.got": {"$expr": "vars.event.n"}}}
    if timeout_ms is not None:
        config["timeoutMs"] = timeout_ms
    steps: list[dict[str, Any]] = [{"id": "w", "type": "event.wait", "config": config}]
    if after_ms:
        steps.append({"id": "busy", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": after_ms}}})
    return {"id": wf_id, "version": 1, "name": wf_id, "steps": steps}


def _caller(wf_id: str, child: str, **step: Any) -> dict[str, Any]:
    """A definition whose only step calls ``child`` with the same key."""
    call = {"id": "call", "type": "control.callWorkflow", "workflowId": child, "workflowVersion": 1, "inputMapping": {"key": {"$expr": "payload.key"}},
            "outputMapping": {"vars.got": {"$expr": "childRun.vars.got"}}, **step}
    return {"id": wf_id, "version": 1, "name": wf_id, "steps": [call]}


async def _statuses(stack: Stack, root_run_id: str) -> dict[str, str]:
    """Status of every run of a tree, keyed by workflow id (one run per workflow here)."""
    async with stack.database.sessions() as session:
        rows = (await session.execute(select(RunRow.workflow_id, RunRow.status).where((RunRow.run_id == root_run_id) | (RunRow.root_run_id == root_run_id)))).all()
    return {wf: status for wf, status in rows}


async def _until(stack: Stack, root_run_id: str, check: Callable[[dict[str, str]], bool], what: str, timeout: float = TIMEOUT) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = await _statuses(stack, root_run_id)
        if check(seen):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {what}; last seen {seen}")


async def _result(stack: Stack, run_id: str) -> dict[str, Any]:
    try:
        await asyncio.wait_for(stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").result(), TIMEOUT)
    except Exception:
        pass
    view = await run_view(stack.database, run_id)
    assert view is not None
    return view


async def test_parent_of_a_waiting_child_is_waiting(stack: Stack) -> None:
    """The parent is WAITING while its child waits, RUNNING again while the child works, then both succeed."""
    tenant = _tenant()
    defs = [_caller("parent", "child"), _waiter("child", after_ms=1500)]
    assert (await publish_definitions(stack.database, stack.registry, tenant, defs)).published
    launched = await stack.launcher.launch(tenant, "parent", {"key": "K1"})
    await _until(stack, launched.run_id, lambda s: s.get("child") == "WAITING" and s.get("parent") == "WAITING", "parent and child WAITING")
    await EventIngress(stack.database).send(tenant, "go", "K1", {"n": 7})
    # the child resumed and sleeps 1.5 s in core.delay: both runs are RUNNING again
    await _until(stack, launched.run_id, lambda s: s.get("child") == "RUNNING" and s.get("parent") == "RUNNING", "parent RUNNING after the child resumed")
    view = await _result(stack, launched.run_id)
    assert view["status"] == "SUCCEEDED" and view["vars"]["got"] == 7
    assert [c["status"] for c in view["children"]] == ["SUCCEEDED"]


async def test_grandchild_waiting_makes_the_whole_tree_waiting(stack: Stack) -> None:
    """A waiting grandchild makes its parent WAITING, and that one its own parent."""
    tenant = _tenant()
    defs = [_caller("top", "middle"), _caller("middle", "leaf"), _waiter("leaf")]
    assert (await publish_definitions(stack.database, stack.registry, tenant, defs)).published
    launched = await stack.launcher.launch(tenant, "top", {"key": "K2"})
    await _until(stack, launched.run_id, lambda s: s == {"top": "WAITING", "middle": "WAITING", "leaf": "WAITING"}, "the three runs WAITING")
    await EventIngress(stack.database).send(tenant, "go", "K2", {"n": 3})
    view = await _result(stack, launched.run_id)
    assert view["status"] == "SUCCEEDED" and view["vars"]["got"] == 3
    assert await _statuses(stack, launched.run_id) == {"top": "SUCCEEDED", "middle": "SUCCEEDED", "leaf": "SUCCEEDED"}


async def test_concurrent_branch_still_running_keeps_the_parent_running(stack: Stack) -> None:
    """One branch blocked on a WAITING child, one in core.delay: RUNNING until the delay ends, then WAITING."""
    tenant = _tenant()
    delay_ms = 3000
    loop = {
        "id": "loop", "type": "control.forEach", "items": {"$expr": "['child', 'busy']"}, "itemVar": "k", "concurrency": 2,
        "body": [{
            "id": "which", "type": "control.if", "condition": {"$expr": "k = 'child'"},
            "then": [{"id": "call", "type": "control.callWorkflow", "workflowId": "child", "workflowVersion": 1, "inputMapping": {"key": {"$expr": "payload.key"}}}],
            "else": [{"id": "busy", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": delay_ms}}}],
        }],
    }
    defs = [{"id": "fan", "version": 1, "name": "fan", "steps": [loop]}, _waiter("child")]
    assert (await publish_definitions(stack.database, stack.registry, tenant, defs)).published
    started = time.monotonic()
    launched = await stack.launcher.launch(tenant, "fan", {"key": "K3"})
    seen = await _until(stack, launched.run_id, lambda s: s.get("child") == "WAITING", "the child WAITING")
    if time.monotonic() - started < delay_ms / 1000 - 0.5:  # the other branch is certainly still in core.delay
        assert seen["fan"] == "RUNNING", seen
    await _until(stack, launched.run_id, lambda s: s.get("fan") == "WAITING", "the parent WAITING once the busy branch ended")
    assert time.monotonic() - started >= delay_ms / 1000  # never before the busy branch ended
    await EventIngress(stack.database).send(tenant, "go", "K3", {"n": 1})
    view = await _result(stack, launched.run_id)
    assert view["status"] == "SUCCEEDED"
    assert [c["status"] for c in view["children"]] == ["SUCCEEDED"]


async def test_cancel_of_a_parent_whose_child_waits(stack: Stack) -> None:
    """Cancelling a WAITING parent cancels its WAITING child: both CANCELED, the child's wait too."""
    tenant = _tenant()
    assert (await publish_definitions(stack.database, stack.registry, tenant, [_caller("p-cancel", "c-cancel"), _waiter("c-cancel")])).published
    launched = await stack.launcher.launch(tenant, "p-cancel", {"key": "K4"})
    await _until(stack, launched.run_id, lambda s: s == {"p-cancel": "WAITING", "c-cancel": "WAITING"}, "both runs WAITING")
    await stack.launcher.cancel(tenant, launched.run_id)
    view = await _result(stack, launched.run_id)
    assert view["status"] == "CANCELED"
    (child,) = view["children"]
    assert child["status"] == "CANCELED"
    assert child["waits"] == [{"type": "event", "status": "CANCELED", "eventName": "go", "key": "K4"}]
    assert await _statuses(stack, launched.run_id) == {"p-cancel": "CANCELED", "c-cancel": "CANCELED"}


async def test_child_wait_timing_out_fails_the_child_and_the_parent_catches_it(stack: Stack) -> None:
    """A child whose wait times out fails; the parent is WAITING meanwhile and its tryCatch handles the failure as before."""
    tenant = _tenant()
    guard = {
        "id": "guard", "type": "control.tryCatch", "captureErrorAs": "e",
        "try": [{"id": "call", "type": "control.callWorkflow", "workflowId": "c-late", "workflowVersion": 1, "inputMapping": {"key": {"$expr": "payload.key"}}}],
        "catch": [{"id": "note", "type": "transform.assign", "config": {"assign": {"caught": {"$expr": "vars.e.category"}}}}],
    }
    defs = [{"id": "p-late", "version": 1, "name": "p-late", "steps": [guard]}, _waiter("c-late", timeout_ms=2500)]
    assert (await publish_definitions(stack.database, stack.registry, tenant, defs)).published
    launched = await stack.launcher.launch(tenant, "p-late", {"key": "K5"})
    await _until(stack, launched.run_id, lambda s: s == {"p-late": "WAITING", "c-late": "WAITING"}, "both runs WAITING")
    view = await _result(stack, launched.run_id)
    assert view["status"] == "SUCCEEDED" and view["vars"]["caught"] == "ChildWorkflowError"
    (child,) = view["children"]
    assert child["status"] == "FAILED"
    assert child["waits"] == [{"type": "event", "status": "TIMED_OUT", "eventName": "go", "key": "K5"}]
    assert [(s["stepId"], s["status"]) for s in view["steps"]] == [("guard", "SUCCEEDED"), ("call", "FAILED"), ("note", "SUCCEEDED")]
