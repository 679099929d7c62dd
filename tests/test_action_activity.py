"""The action activity against a real database: one transaction per fast action, a progress row for
slow ones, and data-store actions that stay correct under concurrency (SQLite and PostgreSQL).

These call the activity method directly (no Temporal needed to exercise the database side);
the same paths run end to end in the scenario and stack tests.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from runtime_core.actions import ActionContext, ActionFailure, ActionRegistry
from runtime_core.activities import RuntimeActivities
from runtime_core.contract import ActionRequest
from runtime_core.persistence import ActionInvocation, Database, DataStoreEntry, RunRow, StepRow, upgrade, utcnow

from .conftest import BACKENDS, new_database


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A migrated, empty database of each backend."""
    db = await new_database(request.param, tmp_path)
    await upgrade(db)
    yield db
    await db.dispose()


def _request(run_id: str, seq: int, action_id: str, data: Any, *, tenant: str = "t1", key: str | None = None, projections: list[dict[str, Any]] | None = None) -> ActionRequest:
    return ActionRequest(
        run_id=run_id, tenant=tenant, seq=seq, step_id=f"s{seq}", step_path=f"root.steps[{seq}]", item_index=None, loop_indices=[],
        action_id=action_id, action_version=1, input=data, attempt=1, idempotency_key=key or f"{run_id}:{seq}", started_at=utcnow().isoformat(),
        projections=projections or [],
    )


async def _steps(db: Database, run_id: str) -> dict[int, StepRow]:
    async with db.sessions() as session:
        return {row.seq: row for row in (await session.execute(select(StepRow).where(StepRow.run_id == run_id))).scalars()}


async def test_concurrent_increments_of_one_key_lose_nothing(database: Database) -> None:
    """30 runs increment one new key at once: the counter ends at 30 and every run saw a distinct value."""
    activities = RuntimeActivities(database, ActionRegistry.default())
    results = await asyncio.gather(
        *(activities.run_action(_request(uuid.uuid4().hex, 1, "data.increment", {"key": "hits"})) for _ in range(30))
    )
    assert sorted(r.output["value"] for r in results) == list(range(1, 31))
    async with database.sessions() as session:
        assert (await session.execute(select(DataStoreEntry.value).where(DataStoreEntry.key == "hits"))).scalar_one() == 30


async def test_concurrent_sets_of_one_new_key_all_succeed(database: Database) -> None:
    """Two writers of the same new key used to collide on the unique constraint; an upsert does not."""
    activities = RuntimeActivities(database, ActionRegistry.default())
    results = await asyncio.gather(*(activities.run_action(_request(uuid.uuid4().hex, 1, "data.set", {"key": "k", "value": i})) for i in range(20)))
    assert all(not r.replayed for r in results)
    got = await activities.run_action(_request(uuid.uuid4().hex, 1, "data.get", {"key": "k"}))
    assert got.output["found"] is True and got.output["value"] in range(20)


async def test_data_store_is_per_tenant_and_expires(database: Database) -> None:
    """A key of one tenant is invisible to another; an expired key reads as missing and counts from 0."""
    activities = RuntimeActivities(database, ActionRegistry.default())
    await activities.run_action(_request("r1", 1, "data.set", {"key": "k", "value": 41}, tenant="a"))
    other = await activities.run_action(_request("r2", 1, "data.get", {"key": "k", "default": "none"}, tenant="b"))
    assert other.output == {"key": "k", "value": "none", "found": False}
    await activities.run_action(_request("r3", 1, "data.set", {"key": "n", "value": 5, "ttlMs": 1}, tenant="a"))
    await asyncio.sleep(0.05)
    assert (await activities.run_action(_request("r4", 1, "data.get", {"key": "n"}, tenant="a"))).output["found"] is False
    assert (await activities.run_action(_request("r5", 1, "data.increment", {"key": "n", "by": 2}, tenant="a"))).output["value"] == 2
    deleted = await activities.run_action(_request("r6", 1, "data.delete", {"key": "k"}, tenant="a"))
    assert deleted.output == {"key": "k", "deleted": True}


async def test_increment_of_a_non_number_is_refused_and_writes_nothing(database: Database) -> None:
    """The refusal is a ValidationError; the attempt's transaction rolls back (no ledger row)."""
    activities = RuntimeActivities(database, ActionRegistry.default())
    await activities.run_action(_request("r1", 1, "data.set", {"key": "k", "value": "text"}))
    with pytest.raises(ApplicationError) as caught:
        await activities.run_action(_request("r2", 1, "data.increment", {"key": "k"}))
    assert caught.value.type == "ValidationError" and "'k' is not a number" in str(caught.value)
    async with database.sessions() as session:
        assert (await session.execute(select(ActionInvocation).where(ActionInvocation.run_id == "r2"))).first() is None
        assert (await session.execute(select(DataStoreEntry.value).where(DataStoreEntry.key == "k"))).scalar_one() == "text"
    row = (await _steps(database, "r2"))[1]
    assert row.status == "STARTED" and row.error is not None and row.error["category"] == "ValidationError"


async def test_fast_action_writes_its_rows_once_with_the_outcome(database: Database) -> None:
    """Buffered rows, the ledger row and the SUCCEEDED row commit together; a repeat is a ledger replay."""
    activities = RuntimeActivities(database, ActionRegistry.default())
    assign = {"kind": "step", "seq": 1, "stepId": "a", "stepPath": "root.steps[0]", "type": "transform.assign", "status": "SUCCEEDED", "attempts": 1,
              "startedAt": utcnow().isoformat(), "endedAt": utcnow().isoformat(), "durationMs": 0}
    first = await activities.run_action(_request("r1", 2, "core.echo", {"x": 1}, projections=[assign]))
    again = await activities.run_action(_request("r1", 2, "core.echo", {"x": 2}, projections=[assign]))
    assert first.output == {"x": 1} and not first.replayed
    assert again.output == {"x": 1} and again.replayed
    steps = await _steps(database, "r1")
    assert steps[1].status == "SUCCEEDED" and steps[1].step_type == "transform.assign"
    assert steps[2].status == "SUCCEEDED" and steps[2].ended_at is not None and steps[2].duration_ms is not None


async def test_slow_action_shows_started_while_it_runs(database: Database) -> None:
    """An action still running after ``progress_after`` has its STARTED row (and the rows before it) visible."""
    gate = asyncio.Event()

    async def slow(ctx: ActionContext, data: Any) -> Any:
        await gate.wait()
        return {"done": True}

    registry = ActionRegistry.default()
    registry.register("test.slow", 1, slow)
    activities = RuntimeActivities(database, registry, progress_after=0.05)
    child = {"kind": "run-create", "runId": "c1", "workflowId": "w", "workflowVersion": 1, "startedAt": utcnow().isoformat(), "temporalWorkflowId": "c1",
             "temporalRunId": "x", "definitionHash": "h", "semanticsVersion": 1, "parentRunId": "p", "rootRunId": "p", "input": {}, "parentStepSeq": 3}
    task = asyncio.create_task(activities.run_action(_request("c1", 1, "test.slow", {}, projections=[child])))
    for _ in range(100):
        if 1 in await _steps(database, "c1"):
            break
        await asyncio.sleep(0.02)
    steps = await _steps(database, "c1")
    assert steps[1].status == "STARTED"
    async with database.sessions() as session:
        assert (await session.get(RunRow, "c1")) is not None
    gate.set()
    assert (await task).output == {"done": True}
    assert (await _steps(database, "c1"))[1].status == "SUCCEEDED"


async def test_slow_failing_action_keeps_its_error_on_the_row(database: Database) -> None:
    """The progress write never overwrites the failed attempt's error that follows it."""

    async def slow_fail(ctx: ActionContext, data: Any) -> Any:
        await asyncio.sleep(0.2)
        raise ActionFailure("remote said no", code="E42")

    registry = ActionRegistry.default()
    registry.register("test.slowfail", 1, slow_fail)
    activities = RuntimeActivities(database, registry, progress_after=0.05)
    with pytest.raises(ApplicationError):
        await activities.run_action(_request("r9", 1, "test.slowfail", {}))
    row = (await _steps(database, "r9"))[1]
    assert row.status == "STARTED" and row.error is not None and row.error["message"] == "remote said no" and row.error["code"] == "E42"


async def test_action_writes_roll_back_with_a_failed_attempt(database: Database) -> None:
    """What an action wrote through its session is undone when the attempt fails after writing."""

    async def write_then_fail(ctx: ActionContext, data: Any) -> Any:
        ctx.session.add(DataStoreEntry(tenant=ctx.tenant, key="half", value=1, expires_at=None, updated_at=utcnow()))
        await ctx.session.flush()
        raise ActionFailure("changed my mind")

    registry = ActionRegistry.default()
    registry.register("test.half", 1, write_then_fail)
    activities = RuntimeActivities(database, registry)
    with pytest.raises(ApplicationError):
        await activities.run_action(_request("r1", 1, "test.half", {}))
    async with database.sessions() as session:
        assert (await session.execute(select(DataStoreEntry).where(DataStoreEntry.key == "half"))).first() is None
