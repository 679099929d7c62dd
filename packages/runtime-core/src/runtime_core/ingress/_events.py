"""Event ingress: check an inbound event, store it once with its delivery intent, report delivery.

Storing is all an ingress does to an event: the row is written ``PENDING`` (its delivery intent,
in the same transaction) and a dispatcher (:mod:`runtime_core.delivery`, run by the
workflow-worker process) signals the waiting runs and starts triggered runs, retrying until each
delivery succeeds or its run has ended. A sender may wait for the outcome of the first attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from runtime_core.delivery import NOTIFY_CHANNEL, expect, forget, has_local_dispatcher, progress, wake_local
from runtime_core.persistence import Database, EventDelivery, RuntimeEvent, utcnow
from runtime_core.persistence._upsert import insert_for, table_of
from runtime_core.values import ValueProblem, check_value

__all__ = ["EventIngress", "IngressError", "IngressResult"]

log = logging.getLogger(__name__)
_EVENTS = table_of(RuntimeEvent)
#: Events stored in one transaction at most.
_BATCH = 500
#: Longest accepted field values (the columns' sizes).
_LIMITS = {"tenant": 128, "eventId": 200, "eventName": 200, "correlationKey": 500, "source": 64}


class IngressError(ValueError):
    """An event refused before anything was stored; the message names the field and the fix."""


@dataclass(frozen=True, eq=False)
class _Inbound:
    """One event on its way into the store."""

    tenant: str
    event_id: str
    event_name: str
    correlation_key: str | None
    payload: Any
    source: str | None
    received: datetime


@dataclass
class IngressResult:
    """What one inbound event did (as far as its deliveries had got when ``send`` returned)."""

    event_id: str
    duplicate: bool = False
    #: Runs signalled.
    signalled: list[str] = field(default_factory=list)
    #: Deliveries not (yet) done: ``{runId or workflow, status, attempts, error}``. ``PENDING`` ones
    #: are retried by the dispatcher; ``FAILED`` ones can never succeed.
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: Runs started by event triggers.
    started_runs: list[str] = field(default_factory=list)
    #: The event was stored but no dispatcher had handled it when ``send`` stopped waiting.
    pending: bool = False


def _check_text(value: Any, name: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise IngressError(f"{name} must be a non-empty string" if required else f"{name} must be a string or absent")
    if len(value) > _LIMITS[name]:
        raise IngressError(f"{name} is {len(value)} characters long; at most {_LIMITS[name]} are accepted")
    try:
        check_value(value, name)
    except ValueProblem as problem:
        raise IngressError(str(problem)) from None
    return value


class EventIngress:
    """Accepts inbound events for a tenant."""

    def __init__(self, database: Database) -> None:
        """Bind to the database where events are stored and deliveries recorded.

        Args:
            database: The runtime database.
        """
        self.database = database
        self._queue: list[tuple[_Inbound, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def send(
        self,
        tenant: str,
        event_name: str,
        correlation_key: str | None,
        payload: Any,
        *,
        event_id: str | None = None,
        source: str | None = None,
        wait: float | None = 30.0,
    ) -> IngressResult:
        """Check and store the event (once per ``event_id``); optionally wait for its deliveries.

        Every run of ``tenant`` with an open wait on this name and key is signalled and every
        definition with an ``event`` trigger on the name starts a run, by a dispatcher, durably.
        A duplicate ``event_id`` is accepted and has no further effect.

        Args:
            tenant: Whose event.
            event_name: The event's name.
            correlation_key: The key runs wait on (``None`` for none).
            payload: Any JSON value (at most 512 KB).
            event_id: Idempotency id, unique per tenant (generated when absent).
            source: Where it came from (``api``, ``cli`` …), for operators.
            wait: Seconds to wait for the first delivery attempts (``None``: do not wait).

        Raises:
            IngressError: The event is malformed (the message says which field); nothing stored.
        """
        _check_text(tenant, "tenant", required=True)
        _check_text(event_name, "eventName", required=True)
        _check_text(correlation_key, "correlationKey", required=False)
        _check_text(source, "source", required=False)
        event_id = _check_text(event_id, "eventId", required=False) or uuid.uuid4().hex
        try:
            check_value(payload, "payload", what="event payload")
        except ValueProblem as problem:
            raise IngressError(str(problem)) from None
        result = IngressResult(event_id=event_id)
        # a dispatcher of this process tells us the outcome itself (registered before the event
        # exists, so it cannot be dispatched unseen); otherwise the deliveries table is polled
        told = expect(self.database, tenant, event_id) if wait is not None and has_local_dispatcher(self.database) else None
        try:
            if not await self._store(_Inbound(tenant, event_id, event_name, correlation_key, payload, source, utcnow())):
                result.duplicate = True
                return result
            wake_local(self.database)
            if told is not None:
                with contextlib.suppress(TimeoutError):
                    _fill(result, await asyncio.wait_for(asyncio.shield(told), wait))
                    return result
                wait = 0.0  # not told in time: report what the table says now
            if wait is not None:
                await self._await_delivery(tenant, event_id, wait, result)
            return result
        finally:
            if told is not None:
                forget(self.database, tenant, event_id)

    async def _await_delivery(self, tenant: str, event_id: str, timeout: float, result: IngressResult) -> None:
        """Wait until the event is dispatched and each of its deliveries was attempted once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self.database.sessions() as session:
                status = (await session.execute(select(RuntimeEvent.dispatch_status).where(RuntimeEvent.tenant == tenant, RuntimeEvent.event_id == event_id))).scalar_one()
                rows = (await session.execute(
                    select(EventDelivery).where(EventDelivery.tenant == tenant, EventDelivery.event_id == event_id).order_by(EventDelivery.id)
                )).scalars().all()
            settled = status == "DISPATCHED" and all(r.attempts > 0 or r.status != "PENDING" for r in rows)
            remaining = deadline - loop.time()
            if settled or remaining <= 0:
                result.pending = status != "DISPATCHED"
                _fill(result, [{"kind": r.kind, "target": r.target, "status": r.status, "runId": r.run_id, "attempts": r.attempts, "error": r.last_error or ""} for r in rows])
                return
            await progress(min(remaining, 0.1))  # a dispatcher of this process says when; else poll

    async def _store(self, event: _Inbound) -> bool:
        """Store the event with whatever else is being sent now; ``False`` for a duplicate.

        Concurrent ``send`` calls queue here; whoever finds no store in progress writes the whole
        queue in one transaction (group commit), so a burst of events costs a few transactions
        instead of one each, and a lone event waits for nothing. If that transaction fails, each
        event of the batch is stored on its own, so one unstorable event never fails another
        caller's.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((event, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
            try:
                inserted = await self._insert([event for event, _ in batch])
            except Exception as err:
                if len(batch) == 1:
                    _settle(batch[0][1], err)
                    continue
                log.info("storing %d events together failed (%s); storing them one by one", len(batch), type(err).__name__)
                for event, done in batch:
                    try:
                        _settle(done, (event.tenant, event.event_id) in await self._insert([event]))
                    except Exception as single:
                        _settle(done, single)
                continue
            except BaseException as err:
                for _, done in batch:
                    _settle(done, err)
                raise
            seen: set[tuple[str, str]] = set()
            for event, done in batch:
                key = (event.tenant, event.event_id)
                _settle(done, key in inserted and key not in seen)  # a repeat within the batch is a duplicate
                seen.add(key)

    async def _insert(self, events: list[_Inbound]) -> set[tuple[str, str]]:
        """Insert new events as ``PENDING`` in one transaction; return the keys actually inserted."""
        first: dict[tuple[str, str], _Inbound] = {}
        for event in events:
            first.setdefault((event.tenant, event.event_id), event)
        async with self.database.engine.begin() as conn:
            stmt = insert_for(conn.dialect.name, _EVENTS).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
            rows = await conn.execute(
                stmt.returning(_EVENTS.c.tenant, _EVENTS.c.event_id),
                [
                    {"tenant": e.tenant, "event_id": e.event_id, "event_name": e.event_name, "correlation_key": e.correlation_key, "payload": e.payload,
                     "source": e.source, "received_at": e.received, "dispatch_status": "PENDING"}
                    for e in first.values()
                ],
            )
            inserted = {(row.tenant, row.event_id) for row in rows}
            if inserted and conn.dialect.name == "postgresql":
                # delivered on commit: wakes the dispatchers of every process at once
                await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
        return inserted


def _fill(result: IngressResult, deliveries: list[dict[str, Any]]) -> None:
    """Sort an event's deliveries into the result: signalled runs, started runs, the rest."""
    for delivery in deliveries:
        if delivery["kind"] == "signal" and delivery["status"] == "DELIVERED":
            result.signalled.append(delivery["target"])
        elif delivery["kind"] == "trigger" and delivery["status"] == "DELIVERED" and delivery["runId"]:
            result.started_runs.append(delivery["runId"])
        elif delivery["status"] in ("PENDING", "FAILED"):
            target = {"runId": delivery["target"]} if delivery["kind"] == "signal" else {"workflow": delivery["target"]}
            result.failed.append({**target, "status": delivery["status"], "attempts": delivery["attempts"], "error": delivery["error"]})


def _settle(done: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
