"""Schedule and recurring triggers on Temporal Schedules: publish-time checks, reconcile, fires.

Real Temporal dev server, real SQLite and PostgreSQL; a domain worker on the domain queue of the
test's namespace runs the fire workflow, an authored worker runs the launched runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import Client, ScheduleOverlapPolicy, ScheduleUpdate, ScheduleUpdateInput
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.actions import ActionRegistry
from runtime_core.contract import DOMAIN_TASK_QUEUE, ScheduledLaunchRequest
from runtime_core.dsl import cron_problem
from runtime_core.housekeeping import HousekeepingActivities, HousekeepingWorkflow
from runtime_core.operations import Operations
from runtime_core.persistence import Database, RunRow
from runtime_core.publishing import publish_definitions
from runtime_core.schedules import (
    ScheduledLaunchActivities,
    ScheduledLaunchWorkflow,
    desired_schedule,
    launch_fire,
    launch_key,
    parse_schedule_id,
    reconcile_schedules,
    schedule_id,
)
from runtime_core.worker import domain_workflow_runner, temporal_runtime

from .conftest import BACKENDS, isolated_namespace, new_database, running_stack


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _definition(wf_id: str, version: int = 1, trigger: dict[str, Any] | None = None, marker: str = "v1") -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": wf_id, "version": version, "name": wf_id,
        "steps": [{"id": "echo", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"marker": marker}}}],
    }
    if trigger is not None:
        document["trigger"] = trigger
    return document


@contextlib.asynccontextmanager
async def _scheduling_stack(backend: str, server: DevServer, tmp_path: Path, *, domain_worker: bool = True) -> AsyncIterator[Stack]:
    """An authored worker and (optionally) a domain worker running the fire workflow, on an isolated namespace."""
    database = await new_database(backend, tmp_path)
    with isolated_namespace() as namespace:
        async with running_stack(server, namespace, database, deliver=False) as stack:
            worker: Worker | None = None
            task: asyncio.Task[None] | None = None
            if domain_worker:
                worker = Worker(
                    stack.client, task_queue=DOMAIN_TASK_QUEUE, workflows=[HousekeepingWorkflow, ScheduledLaunchWorkflow],
                    activities=[HousekeepingActivities(database).sweep, *ScheduledLaunchActivities(stack.client, database).activities],
                    workflow_runner=domain_workflow_runner(),
                )
                task = asyncio.create_task(worker.run())
            try:
                yield stack
            finally:
                await _delete_all(stack.client)
                if worker is not None and task is not None:
                    await worker.shutdown()
                    with contextlib.suppress(Exception):
                        await task


async def _delete_all(client: Client) -> None:
    """Remove every runtime schedule of the namespace (the namespace is lent to the next test)."""
    async for entry in await client.list_schedules():
        if parse_schedule_id(entry.id) is not None:
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(entry.id).delete()


async def _runs(database: Database, tenant: str, wf_id: str) -> list[RunRow]:
    async with database.sessions() as session:
        return list((await session.execute(select(RunRow).where(RunRow.tenant == tenant, RunRow.workflow_id == wf_id).order_by(RunRow.created_at))).scalars())


async def _wait_runs(database: Database, tenant: str, wf_id: str, count: int, timeout: float = 45) -> list[RunRow]:
    deadline = time.monotonic() + timeout
    while True:
        runs = await _runs(database, tenant, wf_id)
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.5)


async def _exists(client: Client, sid: str) -> bool:
    try:
        await client.get_schedule_handle(sid).describe()
        return True
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise


def _instant(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- publish-time checks

RECURRING_OK = {"type": "recurring", "cron": "0 0 1 1 *", "timezone": "UTC"}

BAD_TRIGGERS = [
    ({"type": "schedule", "runAt": "whenever"}, "trigger.runAt", "INVALID_RUN_AT"),
    ({"type": "schedule", "runAt": "2026-11-25T10:00:00"}, "trigger.runAt", "INVALID_RUN_AT"),  # no offset
    ({"type": "schedule", "runAt": "2026-11-25"}, "trigger.runAt", "INVALID_RUN_AT"),
    ({"type": "schedule", "runAt": "2026-02-30T10:00:00Z"}, "trigger.runAt", "INVALID_RUN_AT"),
    ({"type": "schedule", "runAt": "2026-11-25 10:00:00Z"}, "trigger.runAt", "INVALID_RUN_AT"),
    ({"type": "schedule", "runAt": "2026-11-25T25:00:00Z"}, "trigger.runAt", "INVALID_RUN_AT"),
    ({"type": "schedule", "runAt": "tomorrow at noon"}, "trigger.runAt", "INVALID_RUN_AT"),
    ({"type": "schedule", "runAt": ""}, "trigger.runAt", "INVALID_RUN_AT"),
    ({**RECURRING_OK, "cron": "not a cron"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": ""}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "60 * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* 24 * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * 0 * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * 32 * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * * 13 *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * * * 7"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * * FOO *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "* * * * MONDAY"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "5-1 * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "*/0 * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "*/x * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "1,,2 * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "-1 * * * *"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "@sometimes"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "@every"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "@every 0s"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "@every 10 seconds"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "cron": "@every 500ms"}, "trigger.cron", "INVALID_CRON"),
    ({**RECURRING_OK, "timezone": "Mars/Olympus"}, "trigger.timezone", "INVALID_TIMEZONE"),
    ({**RECURRING_OK, "timezone": ""}, "trigger.timezone", "INVALID_TIMEZONE"),
    ({**RECURRING_OK, "timezone": "+02:00"}, "trigger.timezone", "INVALID_TIMEZONE"),
    ({**RECURRING_OK, "timezone": "../../etc/passwd"}, "trigger.timezone", "INVALID_TIMEZONE"),
    ({**RECURRING_OK, "timezone": "/usr/share/zoneinfo/UTC"}, "trigger.timezone", "INVALID_TIMEZONE"),
    ({**RECURRING_OK, "timezone": "Europe/Paris "}, "trigger.timezone", "INVALID_TIMEZONE"),
]


@pytest.mark.parametrize(("trigger", "path", "code"), BAD_TRIGGERS, ids=[f"{c}:{t.get('runAt', t.get('cron'))}:{t.get('timezone', '')}" for t, _, c in BAD_TRIGGERS])
async def test_bad_trigger_is_refused_with_its_path(trigger: dict[str, Any], path: str, code: str, tmp_path: Path) -> None:
    """Each bad runAt, cron or timezone is refused at publish, naming trigger.<field> and the fix; nothing is stored."""
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        from runtime_core.persistence import upgrade

        await upgrade(database)
        outcome = await publish_definitions(database, ActionRegistry.default(), "t", [_definition("wf", trigger=trigger)])
        assert not outcome.published
        found = [p for p in outcome.errors if p["stepPath"] == path]
        assert [p["code"] for p in found] == [code], outcome.problems
        assert any(word in found[0]["message"] for word in ("write", "use", "such as")), found[0]["message"]
        assert outcome.versions == []
    finally:
        await database.dispose()


@pytest.mark.parametrize(("field", "value"), [("overlap", "sometimes"), ("catchupWindowMs", 5000), ("catchupWindowMs", "60000"), ("unknown", 1)])
async def test_bad_policy_fields_are_refused(field: str, value: Any) -> None:
    """overlap must be skip/bufferOne/allow and catchupWindowMs an integer of at least 10,000."""
    from runtime_core.dsl import validate_definition

    model, problems = validate_definition(_definition("wf", trigger={**RECURRING_OK, field: value}))
    assert model is None
    assert any(field in p.message for p in problems if p.severity == "error"), problems


async def test_past_run_at_is_a_warning_and_publishes(tmp_path: Path) -> None:
    """A one-time trigger whose instant has passed publishes with a RUN_AT_IN_PAST warning."""
    from runtime_core.persistence import upgrade

    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        await upgrade(database)
        outcome = await publish_definitions(database, ActionRegistry.default(), "t", [_definition("wf", trigger={"type": "schedule", "runAt": "2020-01-01T00:00:00Z"})])
        assert outcome.published, outcome.problems
        assert [(p["severity"], p["stepPath"], p["code"]) for p in outcome.problems] == [("warning", "trigger.runAt", "RUN_AT_IN_PAST")]
        future = await publish_definitions(database, ActionRegistry.default(), "t", [_definition("wf2", trigger={"type": "schedule", "runAt": _instant(timedelta(days=1))})])
        assert future.published and future.problems == []
    finally:
        await database.dispose()


ACCEPTED_CRONS = [
    "* * * * *", "*/15 9-17 * * MON-FRI", "0 0 1 jan-dec/2 sun,sat", "5,10,20-30/5 0-23/2 1-31 1-12 0-6", "0 12 * * 1-5", "5/15 * * * *", "0 0 * * sun-sat",
    "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@every 10s", "@every 1h30m", "@every 2m",
]


@pytest.mark.parametrize("cron", ACCEPTED_CRONS)
def test_accepted_cron(cron: str) -> None:
    """The accepted syntax (docs/dsl.md): every form passes the publish-time check."""
    assert cron_problem(cron) is None


async def test_temporal_accepts_every_accepted_cron(temporal_server: DevServer) -> None:
    """What publishing accepts, Temporal accepts: each accepted cron (and zone) becomes a schedule."""
    client = await Client.connect(temporal_server.address, namespace="wfr-misc", runtime=temporal_runtime())
    tenant = _tenant()
    created = []
    try:
        for index, cron in enumerate(ACCEPTED_CRONS):
            want = desired_schedule(tenant, f"wf{index}", {"type": "recurring", "cron": cron, "timezone": "Europe/Paris"})
            handle = await client.create_schedule(want.schedule_id, want.schedule, memo=want.memo)
            created.append(handle)
            description = await handle.describe()
            assert description.info.next_action_times, cron
        one_time = desired_schedule(tenant, "once", {"type": "schedule", "runAt": "2030-05-06T07:08:09.5+02:00"})
        created.append(await client.create_schedule(one_time.schedule_id, one_time.schedule, memo=one_time.memo))
        assert (await created[-1].describe()).info.next_action_times == [datetime(2030, 5, 6, 5, 8, 10, tzinfo=UTC)]
    finally:
        for handle in created:
            await handle.delete()


def test_schedule_ids_round_trip() -> None:
    """The id contract: wfr:{tenant}:{workflowId}:{12 hex of the trigger's canonical JSON}; tenants may contain ':'."""
    trigger = {"type": "recurring", "cron": "@daily", "timezone": "UTC"}
    sid = schedule_id("acme:eu", "billing.run", trigger)
    assert sid.startswith("wfr:acme:eu:billing.run:") and len(sid.rsplit(":", 1)[1]) == 12
    assert parse_schedule_id(sid) == ("acme:eu", "billing.run", sid.rsplit(":", 1)[1])
    assert schedule_id("acme:eu", "billing.run", dict(reversed(list(trigger.items())))) == sid  # canonical: key order does not matter
    assert schedule_id("acme:eu", "billing.run", {**trigger, "overlap": "allow"}) != sid
    for other in ("wfr:t:wf", "x:t:wf:0123456789ab", "wfr:t:WF:0123456789ab", "wfr:t:wf:0123", "wfr::wf:0123456789ab"):
        assert parse_schedule_id(other) is None
    assert launch_key(sid, "2026-11-25T10:00:00.000Z") == f"{sid}@2026-11-25T10:00:00.000Z"
    long_key = launch_key(schedule_id("t" * 128, "w" * 200, trigger), "2026-11-25T10:00:00.000Z")
    assert len(long_key) <= 300 and long_key.startswith("schedule:")


# ----------------------------------------------------------------------------- reconcile


@pytest.mark.parametrize("backend", BACKENDS)
async def test_reconcile_is_idempotent_and_converges(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """Create, re-run (unchanged), repair a schedule deleted behind its back, restore changed policies
    (keeping the operator's pause), a changed cron replaces the schedule, a removed trigger deletes it."""
    async with _scheduling_stack(backend, temporal_server, tmp_path, domain_worker=False) as stack:
        tenant = _tenant()
        daily = {"type": "recurring", "cron": "0 3 * * *", "timezone": "Europe/Paris"}
        yearly = {"type": "recurring", "cron": "0 0 1 1 *", "timezone": "UTC", "overlap": "bufferOne", "catchupWindowMs": 300000}
        # published without reconcile: as after a crash between publish and reconcile
        outcome = await publish_definitions(stack.database, stack.registry, tenant, [_definition("a", trigger=daily), _definition("b", trigger=yearly), _definition("c")])
        assert outcome.published
        sid_a, sid_b = schedule_id(tenant, "a", daily), schedule_id(tenant, "b", yearly)

        first = await reconcile_schedules(stack.database, stack.client, tenant=tenant)
        assert sorted(first.created) == sorted([sid_a, sid_b]) and first.problems == [] and first.deleted == []
        description = await stack.client.get_schedule_handle(sid_b).describe()
        assert description.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
        assert description.schedule.policy.catchup_window == timedelta(minutes=5)
        assert await description.memo() == {"tenant": tenant, "workflowId": "b", "trigger": yearly, "triggerKey": sid_b.rsplit(":", 1)[1]}

        again = await reconcile_schedules(stack.database, stack.client, tenant=tenant)
        assert (again.created, again.updated, again.deleted, sorted(again.unchanged)) == ([], [], [], sorted([sid_a, sid_b]))

        # half-way: one schedule gone, another edited and paused by an operator
        await stack.client.get_schedule_handle(sid_a).delete()
        handle_b = stack.client.get_schedule_handle(sid_b)
        await handle_b.pause(note="held by an operator")

        def loosen(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule = current.description.schedule
            schedule.policy.overlap = ScheduleOverlapPolicy.ALLOW_ALL
            return ScheduleUpdate(schedule=schedule)

        await handle_b.update(loosen)
        repaired = await reconcile_schedules(stack.database, stack.client, tenant=tenant, workflow_id=["a", "b", "c"])
        assert (repaired.created, repaired.updated, repaired.deleted) == ([sid_a], [sid_b], [])
        description = await handle_b.describe()
        assert description.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
        assert description.schedule.state.paused and description.schedule.state.note == "held by an operator"

        # a changed cron is another schedule; a removed trigger deletes its schedule (Operations.publish reconciles)
        ops = Operations(stack.database, stack.client, registry=stack.registry)
        hourly = {**daily, "cron": "0 * * * *"}
        result = await ops.publish(tenant, [_definition("a", 2, trigger=hourly), _definition("b", 2)])
        assert [p for p in result.problems if p.severity != "warning" or p.code == "SCHEDULE_RECONCILE_FAILED"] == []
        sid_a2 = schedule_id(tenant, "a", hourly)
        assert await _exists(stack.client, sid_a2)
        assert not await _exists(stack.client, sid_a)
        assert not await _exists(stack.client, sid_b)
        final = await reconcile_schedules(stack.database, stack.client, tenant=tenant)
        assert (final.created, final.updated, final.deleted, final.unchanged) == ([], [], [], [sid_a2])


async def test_publish_succeeds_when_the_reconcile_fails(temporal_server: DevServer, tmp_path: Path) -> None:
    """Temporal refusing the schedule does not fail the publish: it is a warning problem."""
    from runtime_core.persistence import upgrade

    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        await upgrade(database)
        client = await Client.connect(temporal_server.address, namespace="wfr-no-such-namespace", runtime=temporal_runtime())
        ops = Operations(database, client)
        result = await ops.publish("t", [_definition("wf", trigger=RECURRING_OK)])
        assert [v.workflowId for v in result.published] == ["wf"]
        assert [(p.severity, p.code, p.path) for p in result.problems] == [("warning", "SCHEDULE_RECONCILE_FAILED", "trigger")]
        assert "periodic reconcile" in result.problems[0].message
    finally:
        await database.dispose()


# ----------------------------------------------------------------------------- fires


@pytest.mark.parametrize("backend", BACKENDS)
async def test_recurring_fires_rebinds_and_stops(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """@every 3s launches a run per occurrence with triggeredBy; republishing rebinds the next fire to
    the new version; a version without the trigger deletes the schedule and fires stop."""
    async with _scheduling_stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        trigger = {"type": "recurring", "cron": "@every 3s", "timezone": "UTC"}
        ops = Operations(stack.database, stack.client, registry=stack.registry)
        await ops.publish(tenant, [_definition("tick", 1, trigger=trigger, marker="v1")])
        sid = schedule_id(tenant, "tick", trigger)
        assert await _exists(stack.client, sid)

        runs = await _wait_runs(stack.database, tenant, "tick", 2)
        assert len(runs) >= 2, "two fires of @every 3s within 45 s"
        for run in runs:
            assert run.workflow_version == 1
            assert run.trigger is not None and run.trigger["type"] == "recurring" and run.trigger["scheduleId"] == sid
            scheduled = datetime.fromisoformat(run.trigger["scheduledAt"].replace("Z", "+00:00"))
            assert scheduled.second % 3 == 0 and scheduled.microsecond == 0  # the occurrence, not when it ran
            assert run.launch_key == f"{sid}@{run.trigger['scheduledAt']}"
        assert len({run.trigger["scheduledAt"] for run in runs if run.trigger}) == len(runs), "one run per occurrence"
        detail = await ops.get_run(tenant, runs[0].run_id)
        assert detail.triggeredBy == runs[0].trigger

        # republish: same trigger, same schedule; the next fire launches version 2
        result = await ops.publish(tenant, [_definition("tick", 2, trigger=trigger, marker="v2")])
        assert [p for p in result.problems if p.code == "SCHEDULE_RECONCILE_FAILED"] == []
        published_at = datetime.now(UTC)
        deadline = time.monotonic() + 45
        while True:
            later = [r for r in await _runs(stack.database, tenant, "tick") if r.created_at.replace(tzinfo=UTC) > published_at + timedelta(seconds=1)]
            if later or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert later and all(r.workflow_version == 2 for r in later)

        # remove the trigger: the schedule is deleted and nothing fires any more
        await ops.publish(tenant, [_definition("tick", 3, marker="v3")])
        assert not await _exists(stack.client, sid)
        await asyncio.sleep(1.5)  # a fire started just before the delete may still be launching
        count = len(await _runs(stack.database, tenant, "tick"))
        await asyncio.sleep(7)
        assert len(await _runs(stack.database, tenant, "tick")) == count
        assert all(r.workflow_version != 3 for r in await _runs(stack.database, tenant, "tick"))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_one_time_schedule_fires_once(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """A schedule trigger a few seconds ahead makes exactly one run, recorded as triggered by it."""
    async with _scheduling_stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        trigger = {"type": "schedule", "runAt": _instant(timedelta(seconds=4))}
        ops = Operations(stack.database, stack.client, registry=stack.registry)
        result = await ops.publish(tenant, [_definition("once", trigger=trigger)])
        assert result.problems == []
        sid = schedule_id(tenant, "once", trigger)
        runs = await _wait_runs(stack.database, tenant, "once", 1)
        assert len(runs) == 1
        assert runs[0].trigger == {"type": "schedule", "scheduleId": sid, "scheduledAt": trigger["runAt"].replace("Z", ".000Z")}
        await asyncio.sleep(5)
        assert len(await _runs(stack.database, tenant, "once")) == 1
        description = await stack.client.get_schedule_handle(sid).describe()
        assert description.schedule.state.remaining_actions == 0 and description.info.num_actions == 1
        # a later reconcile keeps the used schedule used
        again = await reconcile_schedules(stack.database, stack.client, tenant=tenant)
        assert again.unchanged == [sid] and again.created == again.updated == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_retried_fire_makes_one_run(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """The fire's launch run twice for the same schedule and scheduled time (a retry after a crash) makes one run;
    a fire of a trigger the latest version no longer has, or of an unpublished workflow, launches nothing."""
    async with _scheduling_stack(backend, temporal_server, tmp_path, domain_worker=False) as stack:
        tenant = _tenant()
        trigger = {"type": "recurring", "cron": "0 0 1 1 *", "timezone": "UTC"}
        assert (await publish_definitions(stack.database, stack.registry, tenant, [_definition("wf", trigger=trigger)])).published
        sid = schedule_id(tenant, "wf", trigger)
        request = ScheduledLaunchRequest(tenant=tenant, workflow_id="wf", schedule_id=sid, trigger_type="recurring", scheduled_at="2027-01-01T00:00:00.000Z")
        first, second = await asyncio.gather(launch_fire(stack.client, stack.database, request), launch_fire(stack.client, stack.database, request))
        third = await launch_fire(stack.client, stack.database, request)
        assert first["runId"] == second["runId"] == third["runId"]
        assert third["created"] is False  # (two racing first attempts may both say created: the launcher finishes the other's start)
        runs = await _runs(stack.database, tenant, "wf")
        executions = [e async for e in stack.client.list_workflows(f"WorkflowId = '{first['temporalWorkflowId']}'")]
        assert len(executions) <= 1  # visibility may lag; the describe below is authoritative
        assert (await stack.client.get_workflow_handle(first["temporalWorkflowId"]).describe()).run_id == runs[0].temporal_run_id
        assert len(runs) == 1 and runs[0].trigger == {"type": "recurring", "scheduleId": sid, "scheduledAt": "2027-01-01T00:00:00.000Z"}

        from temporalio.exceptions import ApplicationError

        other = ScheduledLaunchRequest(tenant=tenant, workflow_id="wf", schedule_id=schedule_id(tenant, "wf", {**trigger, "cron": "@daily"}),
                                       trigger_type="recurring", scheduled_at="2027-01-01T00:00:00.000Z")
        with pytest.raises(ApplicationError, match="no longer has this trigger") as refused:
            await launch_fire(stack.client, stack.database, other)
        assert refused.value.non_retryable
        gone = ScheduledLaunchRequest(tenant=tenant, workflow_id="nope", schedule_id=schedule_id(tenant, "nope", trigger), trigger_type="recurring", scheduled_at="2027-01-01T00:00:00.000Z")
        with pytest.raises(ApplicationError, match="not published"):
            await launch_fire(stack.client, stack.database, gone)
        assert len(await _runs(stack.database, tenant, "wf")) == 1


async def test_embedded_stack_fires_schedules(tmp_path: Path) -> None:
    """The embedded stack (what `wfr dev` runs) has an in-process domain worker: a recurring trigger
    published through the operations fires there; a trigger stored while it was stopped gets its
    schedule when it starts again (persisted state)."""
    from runtime_bootstrap._stack import open_stack
    from runtime_bootstrap.settings import AppSettings

    settings = AppSettings.from_env({})
    home = tmp_path / "home"
    trigger = {"type": "recurring", "cron": "@every 2s", "timezone": "UTC"}
    async with open_stack(settings, persist_dir=str(home)) as stack:
        assert stack.domain_worker is not None
        ops = Operations(stack.database, stack.client, registry=stack.registry, domain_task_queue=stack.domain_task_queue)
        await ops.publish("default", [_definition("tick", trigger=trigger)])
        runs = await _wait_runs(stack.database, "default", "tick", 1)
        assert runs and runs[0].trigger is not None and runs[0].trigger["scheduleId"] == schedule_id("default", "tick", trigger)
        # stored behind the stack's back (as `wfr publish` without WFR_TEMPORAL_ADDRESS does)
        assert (await publish_definitions(stack.database, stack.registry, "default", [_definition("later", trigger=trigger)])).published
        assert not await _exists(stack.client, schedule_id("default", "later", trigger))
    async with open_stack(settings, persist_dir=str(home)) as stack:
        assert await _exists(stack.client, schedule_id("default", "later", trigger))
        assert await _wait_runs(stack.database, "default", "later", 1)
        await _delete_all(stack.client)


async def test_wfr_publish_reconciles_when_temporal_is_configured(temporal_server: DevServer, tmp_path: Path) -> None:
    """`wfr publish` with WFR_TEMPORAL_ADDRESS creates the trigger's schedule and says so."""
    import json
    import os
    import subprocess
    import sys

    wfr = str(Path(sys.executable).with_name("wfr"))
    tenant = _tenant()
    trigger = {"type": "recurring", "cron": "0 0 1 1 *", "timezone": "UTC"}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(_definition("cli-wf", trigger=trigger)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env.update(WFR_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}", WFR_TEMPORAL_ADDRESS=temporal_server.address, WFR_TEMPORAL_NAMESPACE="wfr-misc")
    done = await asyncio.to_thread(subprocess.run, [wfr, "publish", "--tenant", tenant, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sid = schedule_id(tenant, "cli-wf", trigger)
    assert f"schedule created: {sid}" in done.stdout
    client = await Client.connect(temporal_server.address, namespace="wfr-misc", runtime=temporal_runtime())
    try:
        assert await _exists(client, sid)
    finally:
        await client.get_schedule_handle(sid).delete()


@pytest.mark.parametrize("overlap", ["skip", "allow"])
async def test_overlap_policy_applies_to_the_authored_runs(overlap: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """@every 2s over runs that take 5 s: `skip` never starts a run while the previous one is going
    (the fire waits for its run to end); `allow` does. (SQLite only: the database plays no part.)"""
    async with _scheduling_stack("sqlite", temporal_server, tmp_path) as stack:
        tenant = _tenant()
        trigger = {"type": "recurring", "cron": "@every 2s", "timezone": "UTC", "overlap": overlap}
        slow = {"id": "slow", "version": 1, "name": "slow", "trigger": trigger,
                "steps": [{"id": "nap", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": 5000}}}]}
        ops = Operations(stack.database, stack.client, registry=stack.registry)
        await ops.publish(tenant, [slow])
        await asyncio.sleep(13)
        await ops.publish(tenant, [{k: v for k, v in {**slow, "version": 2}.items() if k != "trigger"}])  # stop the fires
        runs = await _runs(stack.database, tenant, "slow")
        assert len(runs) >= 2, [r.trigger for r in runs]
        overlapping = 0
        for previous, current in itertools.pairwise(runs):
            if previous.ended_at is None or current.created_at < previous.ended_at:
                overlapping += 1
        if overlap == "skip":
            assert overlapping == 0, [(r.created_at, r.ended_at) for r in runs]
            assert len(runs) <= 3
        else:
            assert overlapping >= 1 and len(runs) >= 5, [(r.created_at, r.ended_at) for r in runs]
