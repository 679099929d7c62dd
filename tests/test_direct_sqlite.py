"""The hot paths' SQLite access (``Database.first`` / ``Database.write``) and the contract's own decoding.

On SQLite, ``Database.write`` runs a whole transaction as one function in a worker thread on a
plain ``sqlite3`` connection (one thread hand-off instead of aiosqlite's one per statement), behind
the same in-process writer gate as every other writer. These tests hold it to the async path's
results on a real SQLite file, and to the gate.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from temporalio.converter import value_to_type

from runtime_core.actions import ActionRegistry
from runtime_core.activities import RuntimeActivities
from runtime_core.activities._projections import projection_statements
from runtime_core.contract import ActionRequest, ActionResult, MockSpec
from runtime_core.persistence import ActionInvocation, Database, StepRow, ignore_outcomes, upgrade, utcnow
from runtime_core.persistence._upsert import table_of


@pytest.fixture
async def database(tmp_path: Path) -> Any:
    db = Database(f"sqlite:///{tmp_path / 'direct.db'}")
    await upgrade(db)
    yield db
    await db.dispose()


def _request(run_id: str, seq: int, **overrides: Any) -> ActionRequest:
    fields: dict[str, Any] = {
        "run_id": run_id, "tenant": "acme", "seq": seq, "step_id": f"s{seq}", "step_path": f"s{seq}", "item_index": None, "loop_indices": [],
        "action_id": "core.echo", "action_version": 1, "input": {"n": seq, "nested": [1, {"a": None}]}, "attempt": 1,
        "idempotency_key": f"{run_id}:{seq}", "started_at": "2026-11-26T10:00:00.000Z",
    }
    fields.update(overrides)
    return ActionRequest(**fields)


def test_file_databases_get_the_direct_path_and_memory_ones_do_not(tmp_path: Path) -> None:
    """Only a SQLite file is opened a second way (an in-memory database exists per connection)."""
    assert Database(f"sqlite:///{tmp_path / 'x.db'}").direct is not None
    assert Database("sqlite://").direct is None
    assert Database("sqlite:///:memory:").direct is None
    assert Database("postgresql://u@127.0.0.1:1/x").direct is None


async def test_the_direct_path_writes_what_the_async_path_writes(database: Database) -> None:
    """A ledger row and a step row written through ``Database.write`` read back through the ORM
    exactly as the same statements run on an aiosqlite connection."""
    now = utcnow()
    rows = [{"kind": "step", "seq": 1, "stepId": "s1", "stepPath": "s1", "type": "action.call", "status": "SUCCEEDED", "attempts": 2,
             "itemIndex": None, "loopIndices": [3, 4], "startedAt": "2026-11-26T10:00:00.000Z", "endedAt": "2026-11-26T10:00:01.500Z",
             "durationMs": 1500, "error": {"category": "ActionError", "message": "é ☃"}},
            {"kind": "step", "seq": 2, "stepId": "s2", "stepPath": "s2", "type": "action.call", "status": "RUNNING", "error": None, "loopIndices": []}]
    ledger = {"tenant": "acme", "idempotency_key": "k", "run_id": "R", "step_seq": 1, "step_path": "s1", "action_id": "core.echo", "action_version": 1,
              "attempt": 2, "mocked": True, "input": {"a": [1, 2.5, None, "x"]}, "output": {"ok": True}, "created_at": now}
    await database.write([(insert(table_of(ActionInvocation)), ledger), *projection_statements("sqlite", "acme", "R", rows)])
    async with database.engine.begin() as conn:
        await conn.execute(insert(table_of(ActionInvocation)), {**ledger, "idempotency_key": "k2", "run_id": "R2"})
        for statement, parameters in projection_statements("sqlite", "acme", "R2", rows):
            await conn.execute(statement, parameters)
    async with database.sessions() as session:
        direct, via_async = (await session.execute(select(ActionInvocation).order_by(ActionInvocation.idempotency_key))).scalars().all()
        steps = (await session.execute(select(StepRow).order_by(StepRow.seq, StepRow.run_id))).scalars().all()
    assert len(steps) == 4
    for a, b in ((direct, via_async), (steps[0], steps[1]), (steps[2], steps[3])):
        columns = [c.key for c in a.__table__.columns if c.key not in ("id", "idempotency_key", "run_id")]
        assert {c: getattr(a, c) for c in columns} == {c: getattr(b, c) for c in columns}
    assert direct.input == {"a": [1, 2.5, None, "x"]} and direct.mocked is True and steps[0].loop_indices == [3, 4]
    assert direct.created_at.replace(tzinfo=None) == now.replace(tzinfo=None) and steps[2].error is None and steps[2].started_at is None
    ledger_table = table_of(ActionInvocation)
    assert await database.first(select(ledger_table.c.output).where(ledger_table.c.idempotency_key == "k"), {}) == ({"ok": True},)
    await database.write([(insert(ledger_table), {**ledger, "idempotency_key": "none", "output": None, "mocked": False})])
    row = await database.first(select(ledger_table.c.output, ledger_table.c.mocked).where(ledger_table.c.idempotency_key == "none"), {})
    assert row == (None, False) and row.output is None and row.mocked is False  # named, like SQLAlchemy's rows
    assert await database.first(select(ledger_table.c.output).where(ledger_table.c.idempotency_key == "absent"), {}) is None


async def test_a_direct_write_queues_behind_an_async_writer(database: Database) -> None:
    """The direct path takes the process's writer gate: it waits for an open aiosqlite write
    transaction instead of meeting 'database is locked', and then commits."""
    order: list[str] = []
    statements = projection_statements("sqlite", "acme", "G", [{"kind": "step", "seq": 1, "stepId": "a", "stepPath": "a", "type": "action.call", "status": "RUNNING"}])
    async with database.engine.begin() as conn:
        await conn.execute(insert(table_of(ActionInvocation)), {"tenant": "acme", "idempotency_key": "g", "run_id": "G", "step_seq": 1, "step_path": "a",
                                                                  "action_id": "core.echo", "action_version": 1, "attempt": 1, "mocked": False,
                                                                  "input": {}, "output": {}, "created_at": utcnow()})
        waiting = asyncio.create_task(database.write(statements))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the direct write did not wait for the gate"
        order.append("async commit")
    await waiting
    order.append("direct commit")
    assert order == ["async commit", "direct commit"]

    # the gate alone (no SQLite lock held) holds it back: it is the gate, not SQLite's busy wait
    assert database.writer_gate is not None
    gate = await database.writer_gate.acquire()
    held = asyncio.create_task(database.write(statements))
    await asyncio.sleep(0.3)
    assert not held.done(), "the direct write did not take the writer gate"
    gate.release()
    await asyncio.wait_for(held, 5)
    async with database.sessions() as session:
        assert (await session.execute(select(StepRow.status).where(StepRow.run_id == "G"))).scalar_one() == "RUNNING"


async def test_a_failed_direct_write_leaves_nothing(database: Database) -> None:
    """A transaction that fails half-way (a duplicate ledger key) rolls back its earlier statements too."""
    ledger = {"tenant": "acme", "idempotency_key": "dup", "run_id": "D", "step_seq": 1, "step_path": "a", "action_id": "core.echo", "action_version": 1,
              "attempt": 1, "mocked": False, "input": {}, "output": {}, "created_at": utcnow()}
    await database.write([(insert(table_of(ActionInvocation)), ledger)])
    step = projection_statements("sqlite", "acme", "D", [{"kind": "step", "seq": 7, "stepId": "a", "stepPath": "a", "type": "action.call", "status": "RUNNING"}])
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        await database.write([*step, (insert(table_of(ActionInvocation)), ledger)])
    async with database.sessions() as session:
        assert (await session.execute(select(StepRow).where(StepRow.run_id == "D"))).first() is None


async def test_another_process_holding_the_lock_is_database_unavailable(database: Database, tmp_path: Path) -> None:
    """A lock held elsewhere ends in SQLAlchemy's ``OperationalError`` (an infrastructure failure
    Temporal retries, no SQL parameters in it), and the next write after the lock goes works."""
    import sqlite3

    from runtime_core.activities import is_database_unavailable

    assert database.direct is not None
    database.direct.busy_timeout = 0.2
    statements = projection_statements("sqlite", "acme", "L", [{"kind": "step", "seq": 1, "stepId": "a", "stepPath": "a", "type": "action.call", "status": "RUNNING"}])
    holder = sqlite3.connect(str(tmp_path / "direct.db"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Exception) as caught:
            await database.write(statements)
        assert is_database_unavailable(caught.value) and "locked" in str(caught.value)
        assert "acme" not in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await database.write(statements)
    assert await database.first(select(StepRow.status).where(StepRow.run_id == "L"), {}) == ("RUNNING",)


async def test_a_gate_held_too_long_is_sqlalchemys_operational_error(database: Database) -> None:
    """This process's other writers holding the gate past its timeout ends in SQLAlchemy's
    ``OperationalError``, as on the async path (the reliability suite's SQLite-lock test found it
    escaping as ``sqlite3``'s own, which the activity logged as a bookkeeping bug with a traceback)."""
    from sqlalchemy.exc import OperationalError

    from runtime_core.activities import is_database_unavailable

    assert database.writer_gate is not None
    database.writer_gate.timeout = 0.2
    gate = await database.writer_gate.acquire()
    try:
        with pytest.raises(OperationalError, match="other writers held it") as caught:
            await database.write(projection_statements("sqlite", "acme", "T", [{"kind": "step", "seq": 1, "stepId": "a", "stepPath": "a", "type": "action.call", "status": "RUNNING"}]))
        assert is_database_unavailable(caught.value)
    finally:
        gate.release()


async def test_the_database_works_again_after_dispose(database: Database) -> None:
    """``dispose`` stops the threads and closes the connections; the next use brings them back."""
    await database.dispose()
    await database.write(projection_statements("sqlite", "acme", "Z", [{"kind": "step", "seq": 1, "stepId": "a", "stepPath": "a", "type": "action.call", "status": "RUNNING"}]))
    assert await database.first(select(StepRow.status).where(StepRow.run_id == "Z"), {}) == ("RUNNING",)


async def test_an_action_attempt_through_the_direct_path_is_exactly_once(database: Database) -> None:
    """The action activity on the direct path: the second attempt with the same key is answered
    from the ledger (one row), with the step row SUCCEEDED."""
    activities = RuntimeActivities(database, ActionRegistry.default(), progress_after=None)
    first = await activities.run_action(dataclasses.asdict(_request("X", 1)))
    again = await activities.run_action(_request("X", 1, attempt=2))
    assert first == ActionResult(output={"n": 1, "nested": [1, {"a": None}]}) and again.replayed and again.output == first.output
    async with database.sessions() as session:
        assert len((await session.execute(select(ActionInvocation).where(ActionInvocation.run_id == "X"))).scalars().all()) == 1
        assert (await session.execute(select(StepRow.status).where(StepRow.run_id == "X"))).scalar_one() == "SUCCEEDED"


@pytest.mark.parametrize("overrides", [
    {},
    {"mock": MockSpec(output={"x": 1})},
    {"mock": MockSpec(error={"category": "ActionError", "message": "m"})},
    {"item_index": 3, "loop_indices": [1, 2], "secret_paths": [["a", 0]], "projections": [{"kind": "step", "seq": 0, "status": "SUCCEEDED"}]},
    {"secret_paths": None, "input": None},
])
def test_request_decoding_equals_the_sdk_conversion(overrides: dict[str, Any]) -> None:
    """``ActionRequest.to_json``/``from_json`` give what ``asdict`` and the SDK's reflective conversion gave; unknown keys are ignored."""
    request = _request("R", 1, **overrides)
    wire = dataclasses.asdict(request)
    assert request.to_json() == wire  # what the interpreter sends: the same JSON, without asdict's deep copy
    assert ActionRequest.from_json(wire) == value_to_type(ActionRequest, wire)
    assert ActionRequest.from_json({**wire, "addedLater": 1}) == value_to_type(ActionRequest, wire)
    result = {"output": {"a": [1]}, "replayed": True}
    assert ActionResult.from_json(result) == value_to_type(ActionResult, result)
    assert ActionResult.from_json({"output": None}) == ActionResult(output=None)


def test_request_decoding_refuses_what_is_not_a_request() -> None:
    """A missing field or a non-object is a TypeError naming the problem, as the SDK's was."""
    wire = dataclasses.asdict(_request("R", 1))
    del wire["idempotency_key"]
    with pytest.raises(TypeError, match="idempotency_key"):
        ActionRequest.from_json(wire)
    with pytest.raises(TypeError, match="JSON object"):
        ActionRequest.from_json([1])
    with pytest.raises(TypeError, match="output"):
        ActionResult.from_json({"replayed": True})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_plan_reads_writes_and_rolls_back_on_both_databases(backend: str, tmp_path: Path) -> None:
    """``Database.transaction``: one plan, sent each statement's outcome (a row or a row count),
    committed when it returns and rolled back when it raises, on SQLite's direct path and on
    PostgreSQL's async connection alike."""
    from tests.conftest import new_database

    database = await new_database(backend, tmp_path)
    await upgrade(database)
    steps = table_of(StepRow)
    row = {"kind": "step", "seq": 1, "stepId": "a", "stepPath": "a", "type": "action.call", "status": "RUNNING"}
    try:
        def plan(fail: bool) -> Any:
            yield from ignore_outcomes(projection_statements(database.dialect, "acme", "P", [row]))
            found = yield (select(steps.c.status).where(steps.c.run_id == "P"), {})
            changed = yield (steps.update().where(steps.c.run_id == "P").values(status="SUCCEEDED"), {})
            if fail:
                raise RuntimeError("the plan failed")
            return found, changed

        with pytest.raises(RuntimeError, match="the plan failed"):
            await database.transaction(lambda: plan(True))
        assert await database.first(select(steps.c.status).where(steps.c.run_id == "P"), {}) is None
        found, changed = await database.transaction(lambda: plan(False))
        assert found.status == "RUNNING" and changed == 1
        assert await database.first(select(steps.c.status).where(steps.c.run_id == "P"), {}) == ("SUCCEEDED",)
        assert await database.write([(steps.update().where(steps.c.run_id == "nobody").values(status="x"), {})]) == [0]
    finally:
        await database.dispose()
