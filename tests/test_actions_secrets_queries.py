"""Actions from entry points, secret handling, and the interpreter's queries — on real runs."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.actions import ActionRegistry
from runtime_core.contract import QUERY_CURRENT_STEP, QUERY_INTERPRETER_SUMMARY
from runtime_core.persistence import ActionInvocation, Database
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view

from .conftest import isolated_namespace, running_stack


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def _run(stack: Stack, definition: dict[str, Any], payload: dict[str, Any] | None = None) -> dict[str, Any]:
    tenant = _tenant()
    outcome = await publish_definitions(stack.database, stack.registry, tenant, [definition])
    assert outcome.published, outcome.errors
    launched = await stack.launcher.launch(tenant, definition["id"], payload or {})
    try:
        await stack.client.get_workflow_handle(launched.temporal_workflow_id).result()
    except Exception:
        pass
    view = await run_view(stack.database, launched.run_id)
    assert view is not None
    return view


def _install_fake_distribution(root: Path) -> None:
    (root / "acme_actions").mkdir()
    (root / "acme_actions" / "__init__.py").write_text(
        "async def hello(ctx, data):\n    return {'hello': data.get('name'), 'attempt': ctx.attempt, 'tenant': ctx.tenant}\n\n"
        "def register(registry):\n    registry.register('acme.hello', 2, hello)\n"
    )
    dist = root / "acme_actions-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-actions\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[runtime_core.actions]\nacme = acme_actions:register\n")


async def test_user_package_adds_actions_through_entry_points(temporal_server: DevServer, tmp_path: Path) -> None:
    """An installed package registers an action via the runtime_core.actions entry point; runs use it."""
    _install_fake_distribution(tmp_path)
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        registry = ActionRegistry.default()
        assert registry.is_registered("acme.hello", 2) and registry.is_registered("core.echo", 1)
        definition = {"id": "uses-acme", "version": 1, "name": "acme", "steps": [
            {"id": "hi", "type": "action.call", "config": {"actionId": "acme.hello", "version": 2, "inputMapping": {"name": "ada"}, "saveAs": "greeting"}}]}
        with isolated_namespace() as namespace:
            async with running_stack(temporal_server, namespace, Database(f"sqlite:///{tmp_path / 'ep.db'}"), registry) as stack:
                view = await _run(stack, definition)
        assert view["status"] == "SUCCEEDED"
        assert view["vars"]["greeting"]["hello"] == "ada" and view["vars"]["greeting"]["attempt"] == 1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_actions", None)


async def test_secrets_resolve_only_in_activities_and_are_redacted(stack: Stack, monkeypatch: Any) -> None:
    """The secret value reaches the action but never history, projections or the ledger."""
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("WFR_SECRET_API_TOKEN", secret)
    definition = {"id": "uses-secret", "version": 1, "name": "s", "steps": [
        {"id": "call", "type": "action.call", "config": {"actionId": "core.echo", "version": 1,
         "inputMapping": {"token": {"$secret": "API_TOKEN"}, "header": {"$expr": "'Bearer ' & 'x'"}}, "saveAs": "echoed"}}]}
    view = await _run(stack, definition)
    assert view["status"] == "SUCCEEDED"
    assert view["vars"]["echoed"] == {"token": "[REDACTED]", "header": "Bearer x"}
    history = await stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{view['runId']}").fetch_history()
    assert secret not in history.to_json()
    from sqlalchemy import select

    async with stack.database.sessions() as session:
        row = (await session.execute(select(ActionInvocation).where(ActionInvocation.run_id == view["runId"]))).scalar_one()
    assert row.input == {"token": "[REDACTED]", "header": "Bearer x"}
    assert secret not in json.dumps(row.output)


async def test_missing_secret_is_a_validation_error_naming_it(stack: Stack) -> None:
    """An unknown secret fails the step with a ValidationError that names the secret."""
    os.environ.pop("WFR_SECRET_NOPE", None)
    definition = {"id": "missing-secret", "version": 1, "name": "s", "steps": [
        {"id": "call", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"t": {"$secret": "NOPE"}}}}]}
    view = await _run(stack, definition)
    assert view["status"] == "FAILED"
    assert view["error"]["category"] == "ValidationError" and "'NOPE'" in view["error"]["message"]


async def test_queries_show_the_current_step_and_scopes(stack: Stack) -> None:
    """While an action runs, the queries name it and show the scopes so far."""
    tenant = _tenant()
    definition = {"id": "slow", "version": 1, "name": "slow", "steps": [
        {"id": "prep", "type": "transform.assign", "config": {"assign": {"ready": {"$expr": "true"}}}},
        {"id": "nap", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": 1500}}}]}
    assert (await publish_definitions(stack.database, stack.registry, tenant, [definition])).published
    launched = await stack.launcher.launch(tenant, "slow", {"x": 1})
    handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
    current = None
    for _ in range(100):
        current = await handle.query(QUERY_CURRENT_STEP)
        if current and current["stepId"] == "nap":
            break
        await asyncio.sleep(0.05)
    assert current == {"seq": 2, "stepId": "nap", "stepPath": "root.steps[1]", "type": "action.call"}
    summary = await handle.query(QUERY_INTERPRETER_SUMMARY)
    assert summary["status"] == "RUNNING" and summary["vars"] == {"ready": True} and summary["payload"] == {"x": 1}
    await handle.result()
    assert (await handle.query(QUERY_INTERPRETER_SUMMARY))["status"] == "SUCCEEDED"


async def test_cancel_propagates_to_children(stack: Stack) -> None:
    """Cancelling a parent cancels its running child first; both end CANCELED with their rows."""
    tenant = _tenant()
    parent = {"id": "cparent", "version": 1, "name": "p", "steps": [{"id": "call", "type": "control.callWorkflow", "workflowId": "cchild", "workflowVersion": 1}]}
    child = {"id": "cchild", "version": 1, "name": "c", "steps": [
        {"id": "nap", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": 20000}}}]}
    assert (await publish_definitions(stack.database, stack.registry, tenant, [parent, child])).published
    launched = await stack.launcher.launch(tenant, "cparent", {})
    handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
    view = None
    for _ in range(200):
        view = await run_view(stack.database, launched.run_id)
        if view and view["children"] and view["children"][0]["steps"]:
            break
        await asyncio.sleep(0.05)
    assert view and view["children"], "the child never started"
    await handle.cancel()
    try:
        await asyncio.wait_for(handle.result(), 30)
    except Exception:
        pass
    view = await run_view(stack.database, launched.run_id)
    assert view is not None
    assert view["status"] == "CANCELED" and view["error"]["category"] == "Cancellation"
    assert [(s["stepId"], s["status"]) for s in view["steps"]] == [("call", "CANCELED")]
    (kid,) = view["children"]
    assert kid["status"] == "CANCELED"
    assert [(s["stepId"], s["status"]) for s in kid["steps"]] == [("nap", "CANCELED")]
