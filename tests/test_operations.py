"""The operations layer on real runs: reads, launch keys, cancel, replay, reconcile, diagnosis, events, tasks, definitions, tokens, redaction."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from sqlalchemy import update

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.contract import TASK_QUEUE, WORKFLOW_TYPE, RunInput
from runtime_core.dsl import definition_hash
from runtime_core.operations import (
    BulkCancelRequest,
    CompleteTaskRequest,
    Conflict,
    Forbidden,
    Invalid,
    LaunchRequest,
    NotFound,
    Operations,
    Principal,
    RedactionRuleRequest,
    RunFilter,
    SendEventRequest,
    Unauthorized,
    require_role,
)
from runtime_core.persistence import Database, RunRow, utcnow

from .conftest import new_database, running_stack


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


ECHO = {"id": "echo", "version": 1, "name": "Echo", "payloadSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "steps": [{"id": "say", "name": "Say it", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "payload.n"}, "card": {"$expr": "payload.card"}}, "saveAs": "vars.said"}}]}
WAIT = {"id": "wait", "version": 1, "name": "Wait", "steps": [
    {"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.key"}, "assign": {"vars.got": {"$expr": "vars.event"}}}}]}
ASK = {"id": "ask", "version": 1, "name": "Ask", "steps": [{"id": "t", "type": "human.task", "config": {
    "taskType": "approve", "title": {"$expr": "'Approve ' & payload.what"}, "contextData": {"what": {"$expr": "payload.what"}},
    "formSchema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}}]}


async def _ops(stack: Stack, tenant: str) -> Operations:
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    await ops.publish(tenant, [ECHO, WAIT, ASK])
    return ops


async def _end(stack: Stack, run_id: str, timeout: float = 60) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").result(), timeout)


async def test_runs_are_read_redacted_and_paged(stack: Stack) -> None:
    """Launch, list (pages, filters), read a run, its steps and invocations, redacted by the tenant's rules."""
    tenant = _tenant()
    ops = await _ops(stack, tenant)
    await ops.add_redaction_rule(tenant, RedactionRuleRequest(kind="key", pattern="card"), actor="test")
    runs = [(await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": i, "card": "4111"})))[0] for i in range(5)]
    for run in runs:
        await _end(stack, run.runId)
    page = await ops.list_runs(tenant, RunFilter(status=["SUCCEEDED"]), limit=2)
    assert len(page.items) == 2 and page.nextCursor
    seen = [r.runId for r in page.items]
    while page.nextCursor:
        page = await ops.list_runs(tenant, RunFilter(status=["SUCCEEDED"]), limit=2, cursor=page.nextCursor)
        seen += [r.runId for r in page.items]
    assert seen == [r.runId for r in reversed(runs)]
    detail = await ops.get_run(tenant, runs[0].runId)
    assert detail.status == "SUCCEEDED" and detail.payload == {"n": 0, "card": "[REDACTED]"} and detail.vars["said"] == {"n": 0, "card": "[REDACTED]"}
    assert detail.output == {"payload": detail.payload, "vars": detail.vars} and detail.diagnosis is None
    (step,) = await ops.run_steps(tenant, runs[0].runId)
    assert step.name == "Say it" and step.input == {"n": 0, "card": "[REDACTED]"} and step.output == {"n": 0, "card": "[REDACTED]"}
    (invocation,) = await ops.run_invocations(tenant, runs[0].runId)
    assert invocation.actionId == "core.echo" and invocation.input["card"] == "[REDACTED]"
    with pytest.raises(NotFound):
        await ops.get_run(_tenant(), runs[0].runId)
    with pytest.raises(Invalid):
        await ops.list_runs(tenant, RunFilter(status=["BOGUS"]))
    with pytest.raises(Invalid):
        await ops.list_runs(tenant, cursor="not-a-cursor")
    exported = await ops.export_run(tenant, runs[0].runId)
    assert exported["definition"]["definition"]["id"] == "echo" and len(exported["steps"]) == 1


async def test_launch_keys_are_idempotent(stack: Stack) -> None:
    """The same key and body give the same run; another body is a conflict; racing launches make one run."""
    tenant = _tenant()
    ops = await _ops(stack, tenant)
    first, created = await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 1}), idempotency_key="k1")
    again, created_again = await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 1}), idempotency_key="k1")
    assert created and not created_again and again.runId == first.runId
    with pytest.raises(Conflict):
        await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 2}), idempotency_key="k1")
    raced = await asyncio.gather(*(ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 3}), idempotency_key="k2") for _ in range(5)))
    assert len({r.runId for r, _ in raced}) == 1 and sum(c for _, c in raced) >= 1
    with pytest.raises(Invalid) as invalid:
        await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": "x"}))
    assert invalid.value.errors[0]["path"] == "payload.n"
    with pytest.raises(Invalid):
        await ops.launch_run(tenant, LaunchRequest(workflowId="nope", payload={}))


async def test_a_launch_that_crashed_half_way_is_finished_by_its_retry(stack: Stack) -> None:
    """Row written, workflow never started: the same key starts it, once."""
    from runtime_core.launcher import launch_fingerprint, run_id_for_key

    tenant = _tenant()
    ops = await _ops(stack, tenant)
    run_id = run_id_for_key(tenant, "crashy")
    now = utcnow()
    async with stack.database.sessions.begin() as session:
        session.add(RunRow(run_id=run_id, tenant=tenant, workflow_id="echo", workflow_version=1, status="RUNNING", engine="temporal",
                           temporal_workflow_id=f"workflow-runtime-v2:run:{run_id}", definition_hash="x", semantics_version=1, root_run_id=run_id,
                           input={"n": 9}, launch_payload={"n": 9}, launch_key="crashy", launch_fingerprint=launch_fingerprint("echo", None, {"n": 9}),
                           created_at=now, started_at=now, updated_at=now))
    run, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 9}), idempotency_key="crashy")
    assert run.runId == run_id
    await _end(stack, run_id)
    assert (await ops.get_run(tenant, run_id)).vars["said"]["n"] == 9


async def test_cancel_records_who_and_why_and_refuses_ended_runs(stack: Stack) -> None:
    """Cancel with actor and reason (in the history); bulk cancel with a dry run; ended runs refused."""
    tenant = _tenant()
    ops = await _ops(stack, tenant)
    runs = [(await ops.launch_run(tenant, LaunchRequest(workflowId="wait", payload={"key": f"k{i}"})))[0] for i in range(3)]
    await asyncio.sleep(1)
    result = await ops.cancel_run(tenant, runs[0].runId, actor="alice", reason="wrong customer")
    assert result == {"runId": runs[0].runId, "status": "CANCEL_REQUESTED"}
    await _end(stack, runs[0].runId)
    detail = await ops.get_run(tenant, runs[0].runId)
    assert detail.status == "CANCELED" and [(h.action, h.actor, h.reason) for h in detail.history] == [("cancel", "alice", "wrong customer")]
    with pytest.raises(Conflict):
        await ops.cancel_run(tenant, runs[0].runId, actor="alice", reason=None)
    dry = await ops.bulk_cancel(tenant, BulkCancelRequest(filter=RunFilter(workflowId="wait"), dryRun=True), actor="bob")
    assert dry.dryRun and set(dry.canceled) == {runs[1].runId, runs[2].runId}
    done = await ops.bulk_cancel(tenant, BulkCancelRequest(runIds=[runs[1].runId, runs[2].runId, runs[0].runId, "nope"], reason="cleanup"), actor="bob")
    assert set(done.canceled) == {runs[1].runId, runs[2].runId}
    assert {s["runId"] for s in done.skipped} == {runs[0].runId, "nope"}
    for run in runs[1:]:
        await _end(stack, run.runId)


async def test_replay_sends_the_original_input_not_the_redacted_one(stack: Stack) -> None:
    """A replay of a run whose shown input is redacted gets the input as launched; an edited payload is validated."""
    tenant = _tenant()
    ops = await _ops(stack, tenant)
    await ops.add_redaction_rule(tenant, RedactionRuleRequest(kind="path", pattern="payload.card"), actor="test")
    run, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 5, "card": "4111 1111"}))
    await _end(stack, run.runId)
    assert (await ops.get_run(tenant, run.runId)).payload["card"] == "[REDACTED]"
    replay = await ops.replay_run(tenant, run.runId, payload=None, actor="carol", reason="retry")
    await _end(stack, replay.runId)
    replayed = await ops.get_run(tenant, replay.runId)
    assert replayed.replayOfRunId == run.runId and replayed.workflowVersion == 1
    async with stack.database.sessions() as session:
        row = await session.get(RunRow, replay.runId)
    assert row is not None and row.launch_payload == {"n": 5, "card": "4111 1111"} and row.result["vars"]["said"]["card"] == "4111 1111"
    original = await ops.get_run(tenant, run.runId)
    assert [(h.action, h.actor, h.detail["newRunId"]) for h in original.history] == [("replay", "carol", replay.runId)]
    with pytest.raises(Invalid):
        await ops.replay_run(tenant, run.runId, payload={"n": "five"}, actor="carol", reason=None)
    edited = await ops.replay_run(tenant, run.runId, payload={"n": 6}, actor="carol", reason=None)
    await _end(stack, edited.runId)
    assert (await ops.get_run(tenant, edited.runId)).vars["said"]["n"] == 6


async def test_reconcile_ends_a_run_terminated_outside_the_runtime(stack: Stack) -> None:
    """`temporal workflow terminate` leaves the row open; reconcile (and cancel) end it with Temporal's reason."""
    tenant = _tenant()
    ops = await _ops(stack, tenant)
    one, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="wait", payload={"key": "a"}))
    two, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="wait", payload={"key": "b"}))
    await asyncio.sleep(1)
    for run in (one, two):
        await stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run.runId}").terminate(reason="ops clean-up")
    assert (await ops.get_run(tenant, one.runId)).status in ("RUNNING", "WAITING")
    result = await ops.reconcile(tenant, [one.runId], actor="dave")
    assert result.checked == 1 and result.reconciled[0]["status"] == "CANCELED" and result.reconciled[0]["temporalStatus"] == "TERMINATED"
    detail = await ops.get_run(tenant, one.runId)
    assert detail.status == "CANCELED" and detail.error is not None and "ops clean-up" in detail.error["message"]
    waits = await ops.run_waits(tenant, one.runId)
    assert [w.status for w in waits] == ["CANCELED"]
    # cancelling the other reconciles it instead of failing
    assert (await ops.cancel_run(tenant, two.runId, actor="dave", reason="stuck"))["status"] == "CANCELED"


async def test_diagnosis_finds_no_worker_and_a_failing_workflow_task(temporal_server: DevServer, tmp_path: Any) -> None:
    """No poller on the queue: NO_WORKER; a workflow task that keeps failing: WORKFLOW_TASK_FAILING; both listed as stuck."""
    from temporalio.client import Client

    from runtime_core.worker import temporal_runtime

    database = await new_database("sqlite", tmp_path)
    with contextlib.nullcontext("wfr-no-worker") as namespace:  # never polled before this test (see conftest)
        client = await Client.connect(temporal_server.address, namespace=namespace, runtime=temporal_runtime())
        from runtime_core.persistence import upgrade

        await upgrade(database)
        tenant = _tenant()
        ops = Operations(database, client, stuck_after_seconds=0.5, diagnosis_cache_seconds=0)
        await ops.publish(tenant, [ECHO])
        alone, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="echo", payload={"n": 1}))
        await asyncio.sleep(1)
        diagnosis = (await ops.get_run(tenant, alone.runId)).diagnosis
        assert diagnosis is not None and diagnosis.reason == "NO_WORKER" and TASK_QUEUE in diagnosis.detail
        async with running_stack(temporal_server, namespace, database) as stack:
            await _end(stack, alone.runId)
            # a run whose definition does not parse in the workflow: its task fails on every attempt
            broken = {"id": "broken", "version": 1, "name": "b", "steps": [{"id": "x", "type": "no.such.step"}]}
            run_id = uuid.uuid4().hex
            now = utcnow()
            async with database.sessions.begin() as session:
                session.add(RunRow(run_id=run_id, tenant=tenant, workflow_id="broken", workflow_version=1, status="RUNNING", engine="temporal",
                                   temporal_workflow_id=f"workflow-runtime-v2:run:{run_id}", definition_hash=definition_hash(broken), semantics_version=1,
                                   root_run_id=run_id, input={}, created_at=now, started_at=now, updated_at=now))
            await client.start_workflow(WORKFLOW_TYPE, RunInput(run_id=run_id, tenant=tenant, workflow_id="broken", workflow_version=1, definition=broken,
                                                                definition_hash=definition_hash(broken), semantics_version=1, payload={}, started_at="2026-01-01T00:00:00.000Z"),
                                        id=f"workflow-runtime-v2:run:{run_id}", task_queue=TASK_QUEUE)
            found = None
            for _ in range(60):
                found = (await ops.get_run(tenant, run_id)).diagnosis
                if found is not None and found.reason == "WORKFLOW_TASK_FAILING":
                    break
                await asyncio.sleep(0.5)
            assert found is not None and found.reason == "WORKFLOW_TASK_FAILING", found
            stuck = await ops.list_runs(tenant, RunFilter(stuck=True))
            assert [r.runId for r in stuck.items] == [run_id]
            await client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").terminate()
    await database.dispose()


async def test_events_and_tasks(stack: Stack) -> None:
    """Send an event (202 semantics), list it with its delivery; list, read and answer tasks (schema errors listed)."""
    tenant = _tenant()
    ops = await _ops(stack, tenant)
    waiting, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="wait", payload={"key": "K"}))
    asking, _ = await ops.launch_run(tenant, LaunchRequest(workflowId="ask", payload={"what": "invoice"}))
    for _ in range(100):
        if [w.status for w in await ops.run_waits(tenant, waiting.runId)] == ["WAITING"] and (await ops.list_tasks(tenant)).items:
            break
        await asyncio.sleep(0.1)
    accepted = await ops.send_event(tenant, SendEventRequest(eventName="go", correlationKey="K", eventId="E1", payload={"x": 1}))
    assert accepted.eventId == "E1" and not accepted.duplicate
    assert (await ops.send_event(tenant, SendEventRequest(eventName="go", correlationKey="K", eventId="E1", payload={}))).duplicate
    await _end(stack, waiting.runId)
    event = await ops.get_event(tenant, "E1")
    assert event.dispatched and [(d.kind, d.runId, d.status) for d in event.deliveries] == [("signal", waiting.runId, "DELIVERED")]
    assert [e.eventId for e in await ops.run_events(tenant, waiting.runId)] == ["E1"]
    assert (await ops.list_events(tenant)).items[0].eventId == "E1"
    with pytest.raises(Invalid):
        await ops.send_event(tenant, SendEventRequest(eventName="go", payload={"bad": "\x00"}))
    (task,) = (await ops.list_tasks(tenant)).items
    detail = await ops.get_task(tenant, task.taskId)
    assert detail.title == "Approve invoice" and detail.contextData == {"what": "invoice"} and detail.formSchema is not None
    with pytest.raises(Invalid) as invalid:
        await ops.complete_task(tenant, task.taskId, CompleteTaskRequest(response={"ok": "yes"}), actor="erin")
    assert invalid.value.errors == [{"path": "response.ok", "code": "SCHEMA", "message": "'yes' is not of type 'boolean'"}]
    done = await ops.complete_task(tenant, task.taskId, CompleteTaskRequest(response={"ok": True}), actor="erin")
    assert done.status == "COMPLETED"
    with pytest.raises(Conflict):
        await ops.complete_task(tenant, task.taskId, CompleteTaskRequest(response={"ok": True}), actor="erin")
    with pytest.raises(NotFound):
        await ops.get_task(_tenant(), task.taskId)
    await _end(stack, asking.runId)


async def test_definitions_validate_publish_and_read(stack: Stack) -> None:
    """Validate stores nothing; publish lists every problem; versions and their documents are read back."""
    tenant = _tenant()
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    bad = {"id": "bad", "version": 1, "name": "b", "steps": [{"id": "x", "type": "action.call", "config": {"actionId": "nope", "version": 1}}]}
    result = await ops.validate_definitions(tenant, [ECHO, bad])
    assert not result.valid and [p.code for p in result.problems] == ["ACTION_NOT_REGISTERED"]
    assert await ops.list_definitions(tenant) == []
    with pytest.raises(Invalid) as invalid:
        await ops.publish(tenant, [ECHO, bad])
    assert invalid.value.errors[0]["code"] == "ACTION_NOT_REGISTERED"
    published = await ops.publish(tenant, [ECHO])
    assert [(v.workflowId, v.version, v.created) for v in published.published] == [("echo", 1, True)]
    assert [d.workflowId for d in await ops.list_definitions(tenant)] == ["echo"]
    assert [v.version for v in await ops.list_versions(tenant, "echo")] == [1]
    assert (await ops.get_version(tenant, "echo", 1)).definition["name"] == "Echo"
    with pytest.raises(NotFound):
        await ops.list_versions(_tenant(), "echo")


async def test_tokens_roles_and_redaction_rules(tmp_path: Any) -> None:
    """Tokens are shown once and stored hashed; roles are ordered; revoked tokens are refused; rules are checked."""
    database: Database = await new_database("sqlite", tmp_path)
    from runtime_core.persistence import ApiToken, upgrade

    await upgrade(database)
    ops = Operations(database, None)
    created = await ops.create_token("acme", "operator", "ci")
    assert created.token.startswith("wfr_") and len(created.token) > 40
    async with database.sessions() as session:
        stored = (await session.execute(ApiToken.__table__.select())).all()
    assert created.token not in str(stored)
    principal = await ops.authenticate(created.token)
    assert principal == Principal(tenant="acme", role="operator", actor="token:ci")
    require_role(principal, "viewer")
    with pytest.raises(Forbidden, match="author"):
        require_role(principal, "author")
    with pytest.raises(Conflict):
        await ops.create_token("acme", "viewer", "ci")
    with pytest.raises(Invalid):
        await ops.create_token("acme", "root", "x")
    await ops.revoke_token("ci", tenant="acme")
    with pytest.raises(Unauthorized):
        await ops.authenticate(created.token)
    with pytest.raises(Unauthorized):
        await ops.authenticate(None)
    with pytest.raises(Invalid):
        await ops.add_redaction_rule("acme", RedactionRuleRequest(kind="path", pattern="nowhere.x"), actor=None)
    rule = await ops.add_redaction_rule("acme", RedactionRuleRequest(kind="path", pattern="vars.*.ssn"), actor="admin")
    assert [r.pattern for r in await ops.list_redaction_rules("acme")] == ["vars.*.ssn"]
    redactor = await ops.redactor("acme")
    assert redactor.apply({"a": {"ssn": 1, "k": {"$secret": "X"}}, "b": [{"ssn": 2}]}, "vars") == {"a": {"ssn": "[REDACTED]", "k": "[REDACTED]"}, "b": [{"ssn": 2}]}
    await ops.remove_redaction_rule("acme", rule.id)
    with pytest.raises(NotFound):
        await ops.remove_redaction_rule("acme", rule.id)
    async with database.sessions.begin() as session:
        await session.execute(update(ApiToken).values(revoked_at=None))
    await database.dispose()
