"""Publishing (immutable versions) and launching (payload validation, nothing half-written)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from runtime_bootstrap._stack import Stack
from runtime_core.launcher import LaunchError
from runtime_core.persistence import RunRow
from runtime_core.publishing import publish_definitions

DEF = {"id": "pay", "version": 1, "name": "pay", "payloadSchema": {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}},
       "steps": [{"id": "r", "type": "control.return"}]}


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def test_versions_are_immutable(stack: Stack) -> None:
    """Identical republish is a no-op; different content under the same version is refused."""
    tenant = _tenant()
    first = await publish_definitions(stack.database, stack.registry, tenant, [DEF])
    same = await publish_definitions(stack.database, stack.registry, tenant, [dict(DEF)])
    changed = await publish_definitions(stack.database, stack.registry, tenant, [{**DEF, "name": "other"}])
    assert first.published and first.versions[0].created
    assert same.published and not same.versions[0].created
    assert not changed.published and changed.errors[0]["code"] == "VERSION_IMMUTABLE"
    assert "version 2" in changed.errors[0]["message"]


async def test_invalid_payload_creates_nothing(stack: Stack) -> None:
    """A payload failing payloadSchema is refused with its path; no run row is written."""
    tenant = _tenant()
    assert (await publish_definitions(stack.database, stack.registry, tenant, [DEF])).published
    with pytest.raises(LaunchError) as caught:
        await stack.launcher.launch(tenant, "pay", {"amount": "ten"})
    assert caught.value.problems == [{"path": "payload.amount", "message": "'ten' is not of type 'number'"}]
    async with stack.database.sessions() as session:
        count = (await session.execute(select(func.count()).select_from(RunRow).where(RunRow.tenant == tenant))).scalar_one()
    assert count == 0


async def test_unpublished_and_cross_tenant_launch_refused(stack: Stack) -> None:
    """A tenant cannot launch another tenant's workflow."""
    owner, other = _tenant(), _tenant()
    assert (await publish_definitions(stack.database, stack.registry, owner, [DEF])).published
    with pytest.raises(LaunchError, match="not published for tenant"):
        await stack.launcher.launch(other, "pay", {"amount": 1})


async def test_launch_pins_hash_and_latest_version(stack: Stack) -> None:
    """Without a version the latest is launched; the run row pins its hash and semantics version."""
    tenant = _tenant()
    v2 = {**DEF, "version": 2}
    outcome = await publish_definitions(stack.database, stack.registry, tenant, [DEF, v2])
    launched = await stack.launcher.launch(tenant, "pay", {"amount": 5})
    await stack.client.get_workflow_handle(launched.temporal_workflow_id).result()
    async with stack.database.sessions() as session:
        run = await session.get(RunRow, launched.run_id)
    assert run is not None and run.workflow_version == 2 and run.engine == "temporal"
    assert run.definition_hash == next(v.definition_hash for v in outcome.versions if v.version == 2)
    assert run.status == "SUCCEEDED" and run.temporal_run_id


async def test_tampered_definition_fails_fast(stack: Stack) -> None:
    """A stored definition changed behind publishing's back is refused at launch, and the
    interpreter refuses a run whose definition does not match its pinned hash."""
    from sqlalchemy import update
    from temporalio.client import WorkflowFailureError

    from runtime_core.contract import SEMANTICS_VERSION, TASK_QUEUE, WORKFLOW_TYPE, RunInput
    from runtime_core.persistence import DefinitionVersion

    tenant = _tenant()
    outcome = await publish_definitions(stack.database, stack.registry, tenant, [DEF])
    tampered = {**DEF, "description": "edited in the database"}
    async with stack.database.sessions.begin() as session:
        await session.execute(update(DefinitionVersion).where(DefinitionVersion.tenant == tenant).values(document=tampered))
    with pytest.raises(LaunchError, match="no longer matches its pinned hash"):
        await stack.launcher.launch(tenant, "pay", {"amount": 1})

    run_input = RunInput(run_id=uuid.uuid4().hex, tenant=tenant, workflow_id="pay", workflow_version=1, definition=tampered,
                         definition_hash=outcome.versions[0].definition_hash, semantics_version=SEMANTICS_VERSION, payload={}, started_at="2026-01-01T00:00:00.000Z")
    with pytest.raises(WorkflowFailureError) as caught:
        await stack.client.execute_workflow(WORKFLOW_TYPE, run_input, id=f"tamper-{run_input.run_id}", task_queue=TASK_QUEUE)
    assert getattr(caught.value.cause, "type", None) == "InterpreterCorruption"


async def test_concurrent_publishes_of_one_version_store_one(stack: Stack) -> None:
    """Two different definitions racing for the same (id, version): exactly one is stored."""
    import asyncio

    tenant = _tenant()
    a, b = {**DEF, "name": "first"}, {**DEF, "name": "second"}
    results = await asyncio.gather(*(publish_definitions(stack.database, stack.registry, tenant, [d]) for d in (a, b)))
    assert sorted(r.published for r in results) == [False, True]
    loser = next(r for r in results if not r.published)
    assert loser.errors[0]["code"] in ("VERSION_IMMUTABLE", "CONCURRENT_PUBLISH")


async def test_batch_may_list_parent_before_child_and_warnings_do_not_block(stack: Stack) -> None:
    """A parent may precede the child it calls in one batch; warnings are reported, not blocking."""
    tenant = _tenant()
    parent = {"id": "parent", "version": 1, "name": "p", "steps": [
        {"id": "call", "type": "control.callWorkflow", "workflowId": "kid", "workflowVersion": 1},
        {"id": "r", "type": "control.return"}, {"id": "late", "type": "state.set", "config": {"state": "x"}}]}
    child = {"id": "kid", "version": 1, "name": "k", "steps": []}
    outcome = await publish_definitions(stack.database, stack.registry, tenant, [parent, child])
    assert outcome.published
    assert [(p["workflowId"], p["severity"], p["code"], p["stepPath"]) for p in outcome.problems] == [("parent", "warning", "UNREACHABLE_STEP", "root.steps[2]")]
    alone = await publish_definitions(stack.database, stack.registry, _tenant(), [parent])
    assert not alone.published and alone.errors[0]["code"] == "WORKFLOW_NOT_PUBLISHED"
