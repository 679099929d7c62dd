"""Durable event delivery: isolated storing, retried deliveries, crash recovery, shared dispatchers.

Each test runs on SQLite and PostgreSQL against the real dev server. Stacks here run without the
usual in-process dispatcher, so each test decides when (and which) dispatchers deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from temporalio.client import Client

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.delivery import Dispatcher, delivering
from runtime_core.ingress import EventIngress, IngressError
from runtime_core.persistence import EventDelivery, RunRow, RuntimeEvent, WaitRow, utcnow
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view
from runtime_core.worker import temporal_runtime

from .conftest import BACKENDS, isolated_namespace, new_database, running_stack
from .test_events import _wait_open

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _waiter(wf_id: str) -> dict[str, Any]:
    return {"id": wf_id, "version": 1, "name": wf_id, "steps": [
        {"id": "w", "type": "event.wait", "config": {"eventName": "paid", "correlationKey": {"$expr": "payload.key"},
                                                      "assign": {"vars.amount": {"$expr": "vars.event.amount"}}}},
        {"id": "count", "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": {"$expr": "'resumed-' & payload.key"}}}}]}


def _triggered(wf_id: str) -> dict[str, Any]:
    return {"id": wf_id, "version": 1, "name": wf_id, "trigger": {"type": "event", "eventName": "order.created", "payloadMapping": {"order": {"$expr": "event.correlationKey"}}},
            "steps": [{"id": "count", "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": {"$expr": "'started-' & payload.order"}}}}]}


@contextlib.asynccontextmanager
async def _stack(backend: str, server: DevServer, tmp_path: Path) -> AsyncIterator[Stack]:
    database = await new_database(backend, tmp_path)
    with isolated_namespace() as namespace:
        async with running_stack(server, namespace, database, deliver=False) as stack:
            yield stack


async def _publish(stack: Stack, tenant: str, *definitions: dict[str, Any]) -> None:
    outcome = await publish_definitions(stack.database, stack.registry, tenant, list(definitions))
    assert outcome.published, outcome.errors


async def _finish(stack: Stack, run_id: str, timeout: float = 60) -> dict[str, Any]:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").result(), timeout)
    view = await run_view(stack.database, run_id)
    assert view is not None
    return view


async def _counter(stack: Stack, tenant: str, key: str) -> Any:
    from runtime_core.persistence import DataStoreEntry

    async with stack.database.sessions() as session:
        return (await session.execute(select(DataStoreEntry.value).where(DataStoreEntry.tenant == tenant, DataStoreEntry.key == key))).scalar_one_or_none()


async def _deliveries(stack: Stack, tenant: str) -> list[EventDelivery]:
    async with stack.database.sessions() as session:
        return list((await session.execute(select(EventDelivery).where(EventDelivery.tenant == tenant).order_by(EventDelivery.id))).scalars())


async def test_malformed_events_are_refused_and_nothing_is_stored(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """Each malformed field is named; nothing reaches the table."""
    async with _stack(backend, temporal_server, tmp_path) as stack:
        ingress = EventIngress(stack.database)
        tenant = _tenant()
        cases: list[tuple[dict[str, Any], str]] = [
            ({"event_name": ""}, "eventName must be a non-empty string"),
            ({"event_name": 7}, "eventName must be a non-empty string"),
            ({"correlation_key": 5}, "correlationKey must be a string or absent"),
            ({"correlation_key": "k" * 501}, "correlationKey is 501 characters long"),
            ({"event_id": "e" * 201}, "eventId is 201 characters long"),
            ({"payload": {"a": "x\x00y"}}, "payload.a: contains the NUL character"),
            ({"payload": {"a": "\ud800"}}, "payload.a: contains a lone surrogate"),
            ({"payload": {"a": float("nan")}}, "payload.a: is nan"),
            ({"payload": "x" * 600_000}, "over the limit of 512.0 KB"),
            ({"event_name": "bad\x00name"}, "eventName: contains the NUL character"),
        ]
        for override, message in cases:
            args: dict[str, Any] = {"event_name": "paid", "correlation_key": "k", "payload": {}, **override}
            with pytest.raises(IngressError, match=message.replace("(", r"\(").replace(".", r"\.")):
                await ingress.send(tenant, args["event_name"], args["correlation_key"], args["payload"], event_id=args.get("event_id"), wait=None)
        with pytest.raises(IngressError, match="tenant"):
            await ingress.send("", "paid", "k", {}, wait=None)
        async with stack.database.sessions() as session:
            assert (await session.execute(select(func.count()).select_from(RuntimeEvent).where(RuntimeEvent.tenant == tenant))).scalar_one() == 0


async def test_one_unstorable_event_never_fails_the_others(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """Sent together, 20 good events are stored and delivered even though the database refuses a 21st."""
    async with _stack(backend, temporal_server, tmp_path) as stack:
        # the database itself refuses the poisoned row (a trigger), as PostgreSQL refused "\u0000"
        async with stack.database.engine.begin() as conn:
            if backend == "sqlite":
                await conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON workflow_runtime_events WHEN NEW.event_name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"))
            else:
                await conn.execute(text("CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.event_name = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
                await conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON workflow_runtime_events FOR EACH ROW EXECUTE FUNCTION poison()"))
        tenant = _tenant()
        await _publish(stack, tenant, _waiter("iso"))
        runs = [await stack.launcher.launch(tenant, "iso", {"key": f"k{i}"}) for i in range(20)]
        await _wait_open(stack, [r.run_id for r in runs])
        ingress = EventIngress(stack.database)
        async with delivering(stack.client, stack.database, poll_interval=0.2):
            sends = [ingress.send(tenant, "paid", f"k{i}", {"amount": i}) for i in range(20)]
            sends.insert(7, ingress.send(tenant, "poison", "k", {}))
            results = await asyncio.gather(*sends, return_exceptions=True)
            poisoned = results.pop(7)
            assert isinstance(poisoned, Exception) and "poisoned" in str(poisoned)
            assert all(not isinstance(r, BaseException) and r.signalled == [runs[i].run_id] for i, r in enumerate(results)), results
            views = [await _finish(stack, r.run_id) for r in runs]
        assert [v["vars"]["amount"] for v in views] == list(range(20))


async def test_a_failed_signal_is_retried_until_delivered(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """A signal that fails after its event is stored is retried with backoff, recorded, and lands once."""
    async with _stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        await _publish(stack, tenant, _waiter("retry"))
        run = await stack.launcher.launch(tenant, "retry", {"key": "k"})
        await _wait_open(stack, [run.run_id])
        # a dispatcher whose Temporal cannot reach the run (another namespace): every signal fails
        wrong = await Client.connect(temporal_server.address, namespace="wfr-misc", runtime=temporal_runtime())
        async with delivering(wrong, stack.database, poll_interval=0.1, max_backoff=0.5):
            first = await EventIngress(stack.database).send(tenant, "paid", "k", {"amount": 5}, event_id="E1", wait=5)
            assert first.signalled == [] and len(first.failed) == 1 and first.failed[0]["status"] == "PENDING"
            assert first.failed[0]["runId"] == run.run_id and "NOT_FOUND" in first.failed[0]["error"].upper().replace(" ", "_")
            await asyncio.sleep(1.5)
        (pending,) = await _deliveries(stack, tenant)
        assert pending.status == "PENDING" and pending.attempts >= 2, "the failed signal was not retried"
        again = await EventIngress(stack.database).send(tenant, "paid", "k", {"amount": 5}, event_id="E1")
        assert again.duplicate  # re-sending is still a duplicate: the stored delivery is what gets retried
        async with delivering(stack.client, stack.database, poll_interval=0.1, max_backoff=0.5):
            view = await _finish(stack, run.run_id)
        assert view["status"] == "SUCCEEDED" and view["vars"]["amount"] == 5
        (delivered,) = await _deliveries(stack, tenant)
        assert delivered.status == "DELIVERED" and delivered.attempts == pending.attempts + 1 and delivered.delivered_at is not None
        assert await _counter(stack, tenant, "resumed-k") == 1


async def test_nothing_is_lost_when_no_dispatcher_ran_or_one_died_mid_delivery(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """Events stored while no dispatcher ran, and deliveries a crashed dispatcher left leased, are delivered once later."""
    async with _stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        await _publish(stack, tenant, _waiter("late"), _triggered("on-order"))
        runs = [await stack.launcher.launch(tenant, "late", {"key": f"k{i}"}) for i in range(3)]
        await _wait_open(stack, [r.run_id for r in runs])
        ingress = EventIngress(stack.database)
        # no dispatcher at all: stored, pending, nothing started
        for i in range(3):
            sent = await ingress.send(tenant, "order.created", f"O{i}", {}, event_id=f"order-{i}", wait=0.3)
            assert sent.pending and sent.started_runs == []
        # a dispatcher that writes the deliveries, then "dies" before attempting them
        crashed = Dispatcher(stack.client, stack.database, lease=timedelta(seconds=1))
        await ingress.send(tenant, "paid", "k0", {"amount": 0}, event_id="pay-0", wait=None)
        leased, _dispatched = await crashed._dispatch_events()
        assert {w.kind for w in leased} == {"signal", "trigger"}
        await ingress.send(tenant, "paid", "k1", {"amount": 1}, event_id="pay-1", wait=None)
        await ingress.send(tenant, "paid", "k2", {"amount": 2}, event_id="pay-2", wait=None)
        async with delivering(stack.client, stack.database, poll_interval=0.1):
            views = [await _finish(stack, r.run_id) for r in runs]
            for _ in range(100):
                if [await _counter(stack, tenant, f"started-O{i}") for i in range(3)] == [1, 1, 1]:
                    break
                await asyncio.sleep(0.1)
            # the same events again: duplicates, no second run
            for i in range(3):
                assert (await ingress.send(tenant, "order.created", f"O{i}", {}, event_id=f"order-{i}")).duplicate
            await asyncio.sleep(0.5)
        assert [v["vars"]["amount"] for v in views] == [0, 1, 2]
        assert [await _counter(stack, tenant, f"started-O{i}") for i in range(3)] == [1, 1, 1]
        assert [await _counter(stack, tenant, f"resumed-k{i}") for i in range(3)] == [1, 1, 1]
        async with stack.database.sessions() as session:
            started = (await session.execute(select(func.count()).select_from(RunRow).where(RunRow.tenant == tenant, RunRow.workflow_id == "on-order"))).scalar_one()
        assert started == 3
        rows = await _deliveries(stack, tenant)
        assert len(rows) == 6 and {r.status for r in rows} == {"DELIVERED"}


async def test_several_dispatchers_deliver_each_event_once(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """Three dispatchers on one database: 60 waiting runs and 20 triggers, every delivery made once."""
    async with _stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        await _publish(stack, tenant, _waiter("shared"), _triggered("on-order"))
        runs = [await stack.launcher.launch(tenant, "shared", {"key": f"k{i}"}) for i in range(60)]
        await _wait_open(stack, [r.run_id for r in runs])
        ingress = EventIngress(stack.database)
        async with delivering(stack.client, stack.database, batch=7, poll_interval=0.05), \
                delivering(stack.client, stack.database, batch=7, poll_interval=0.05), \
                delivering(stack.client, stack.database, batch=7, poll_interval=0.05):
            await asyncio.gather(*(ingress.send(tenant, "paid", f"k{i}", {"amount": i}, wait=None) for i in range(60)),
                                 *(ingress.send(tenant, "order.created", f"O{i}", {}, wait=None) for i in range(20)))
            views = [await _finish(stack, r.run_id) for r in runs]
            for _ in range(200):
                rows = await _deliveries(stack, tenant)
                if len(rows) == 80 and all(r.status == "DELIVERED" for r in rows):
                    break
                await asyncio.sleep(0.1)
        assert [v["vars"]["amount"] for v in views] == list(range(60))
        assert len(rows) == 80 and all(r.status == "DELIVERED" and r.attempts == 1 for r in rows)
        assert [await _counter(stack, tenant, f"resumed-k{i}") for i in range(60)] == [1] * 60
        assert [await _counter(stack, tenant, f"started-O{i}") for i in range(20)] == [1] * 20


async def test_a_delivery_to_an_ended_run_is_skipped(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """A run that ended after its wait was projected is not retried for ever: its delivery is SKIPPED."""
    async with _stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        await _publish(stack, tenant, _waiter("gone"))
        run = await stack.launcher.launch(tenant, "gone", {"key": "k"})
        await _wait_open(stack, [run.run_id])
        await stack.launcher.cancel(tenant, run.run_id)
        await _finish(stack, run.run_id)
        async with stack.database.sessions.begin() as session:  # a wait row left open, as if its projection lagged
            await session.execute(WaitRow.__table__.update().where(WaitRow.run_id == run.run_id).values(status="WAITING"))
        async with delivering(stack.client, stack.database, poll_interval=0.1):
            sent = await EventIngress(stack.database).send(tenant, "paid", "k", {"amount": 1})
        assert sent.signalled == [] and sent.failed == []
        (row,) = await _deliveries(stack, tenant)
        assert row.status == "SKIPPED" and row.attempts == 1 and row.last_error == "the run had already ended"


async def test_a_delivery_whose_outcome_was_lost_is_recorded_delivered_not_skipped(backend: str, temporal_server: DevServer, tmp_path: Path) -> None:
    """A dispatcher killed between the signal and recording it leaves the delivery PENDING; once
    the run has ended, the retry finds the run received the event: DELIVERED, not SKIPPED.

    Found by the deployment test (tests/reliability/test_deployment.py): before the fix the retry
    recorded a delivered event as skipped ("the run had already ended").
    """
    async with _stack(backend, temporal_server, tmp_path) as stack:
        tenant = _tenant()
        await _publish(stack, tenant, _waiter("lost"))
        run = await stack.launcher.launch(tenant, "lost", {"key": "k"})
        await _wait_open(stack, [run.run_id])
        async with delivering(stack.client, stack.database, poll_interval=0.1):
            sent = await EventIngress(stack.database).send(tenant, "paid", "k", {"amount": 3})
        assert sent.signalled == [run.run_id]
        assert (await _finish(stack, run.run_id))["status"] == "SUCCEEDED"
        async with stack.database.sessions.begin() as session:  # as if its dispatcher died before recording the outcome
            await session.execute(EventDelivery.__table__.update().where(EventDelivery.tenant == tenant).values(
                status="PENDING", delivered_at=None, claimed_by="dead", claimed_until=utcnow() - timedelta(seconds=1), next_attempt_at=utcnow()))
        assert await Dispatcher(stack.client, stack.database).run_once()
        (row,) = await _deliveries(stack, tenant)
        assert row.status == "DELIVERED" and row.run_id == run.run_id and row.delivered_at is not None and row.last_error is None
        assert await _counter(stack, tenant, "resumed-k") == 1

