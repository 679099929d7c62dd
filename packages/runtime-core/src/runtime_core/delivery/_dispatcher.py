"""Durable event delivery: the dispatcher that the workflow-worker process runs.

An event is stored with its delivery intent (``dispatch_status = PENDING``) in one transaction
by :class:`runtime_core.ingress.EventIngress`. A dispatcher then, in one transaction, marks a
batch of pending events ``DISPATCHED`` and writes one ``workflow_event_deliveries`` row per
delivery: a signal to every run of the tenant with an open wait on the event's name and key, and
a start of every definition whose latest version has an ``event`` trigger on the name. A crash
before that commit leaves the events pending for the next dispatcher; after it, the rows are.

Each delivery is then attempted and its outcome recorded (status, attempts, last error):
``DELIVERED``; ``SKIPPED`` when the run has ended; ``FAILED`` when it can never succeed (a
triggered payload the workflow refuses); otherwise it stays ``PENDING`` and is retried with
backoff (1 s, doubling, at most a minute) by whichever dispatcher is free. A delivery being
attempted is leased, so several workflow-worker processes share the work safely; a signal sent
twice (a lease that expired mid-attempt) is dropped by the workflow, which keeps one effect per
event id, and a triggered start is idempotent per event and trigger (its run id is derived from
them).

The dispatcher wakes at once when an event is stored in the same process (``wake_local``), on
PostgreSQL also through ``LISTEN``/``NOTIFY`` from any process, and otherwise polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, tuple_, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from runtime_core import metrics
from runtime_core.contract import EVENT_SIGNAL, workflow_id_for_run
from runtime_core.errors import RunError
from runtime_core.expressions import ExpressionEngine
from runtime_core.launcher import Launcher, LaunchError
from runtime_core.logs import log_context
from runtime_core.persistence import Database, DefinitionVersion, EventDelivery, RunRow, RuntimeEvent, WaitRow, WorkflowDefinitionRow, utcnow
from runtime_core.persistence._upsert import insert_for, table_of
from runtime_core.secrets import redact
from runtime_core.values import safe_text

__all__ = [
    "NOTIFY_CHANNEL", "Dispatcher", "delivering", "event_signal_payload", "expect", "forget", "has_local_dispatcher", "progress", "trigger_key", "wake_local",
]

log = logging.getLogger(__name__)

#: PostgreSQL channel on which ingress announces a stored event.
NOTIFY_CHANNEL = "wfr_events"

_EVENTS = table_of(RuntimeEvent)
_DELIVERIES = table_of(EventDelivery)
_WAITS = table_of(WaitRow)
_VERSIONS = table_of(DefinitionVersion)
_DEFINITIONS = table_of(WorkflowDefinitionRow)
_ENGINE = ExpressionEngine()

#: Open event waits on one of the batch's names; matched to each event's exact key in Python.
_OPEN_WAITS = select(_WAITS.c.tenant, _WAITS.c.event_name, _WAITS.c.correlation_key, _WAITS.c.run_id).where(
    _WAITS.c.tenant.in_(bindparam("p_tenants", expanding=True)), _WAITS.c.wait_type == "event", _WAITS.c.status == "WAITING",
    _WAITS.c.event_name.in_(bindparam("p_names", expanding=True)),
    or_(_WAITS.c.correlation_key.in_(bindparam("p_keys", expanding=True)), _WAITS.c.correlation_key.is_(None)),
)
#: The latest version of every definition triggered by one of the batch's event names.
_TRIGGERED = (
    select(_VERSIONS.c.tenant, _VERSIONS.c.trigger_event_name, _VERSIONS.c.workflow_id, _VERSIONS.c.version)
    .join(_DEFINITIONS, (_DEFINITIONS.c.tenant == _VERSIONS.c.tenant) & (_DEFINITIONS.c.workflow_id == _VERSIONS.c.workflow_id)
          & (_DEFINITIONS.c.latest_version == _VERSIONS.c.version))
    .where(_VERSIONS.c.tenant.in_(bindparam("p_tenants", expanding=True)), _VERSIONS.c.trigger_type == "event",
           _VERSIONS.c.trigger_event_name.in_(bindparam("p_names", expanding=True)))
    .order_by(_VERSIONS.c.workflow_id)
)

# Dispatchers of this process by database URL, so that ingress in the same process wakes them.
_LOCAL: dict[str, weakref.WeakSet[Dispatcher]] = {}
# Senders in this process waiting for a delivery's outcome, woken after each dispatch round.
_PROGRESS: list[asyncio.Future[None]] = []
# Senders in this process waiting for one event's first delivery attempts, by (database URL,
# tenant, event id): resolved by the dispatcher that handled the event, with no database read.
_EXPECTED: dict[tuple[str, str, str], asyncio.Future[list[dict[str, Any]]]] = {}


def has_local_dispatcher(database: Database) -> bool:
    """Whether a dispatcher of this process serves ``database``."""
    return bool(_LOCAL.get(database.url))


def expect(database: Database, tenant: str, event_id: str) -> asyncio.Future[list[dict[str, Any]]]:
    """Register interest in an event's first delivery attempts (before it is stored).

    The future receives one ``{kind, target, status, runId, attempts, error}`` per delivery once a
    dispatcher of this process has dispatched the event and attempted each delivery once.
    """
    fut: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
    _EXPECTED[(database.url, tenant, event_id)] = fut
    return fut


def forget(database: Database, tenant: str, event_id: str) -> None:
    """Drop the interest registered by :func:`expect`."""
    _EXPECTED.pop((database.url, tenant, event_id), None)


def wake_local(database: Database) -> None:
    """Wake every dispatcher of this process that serves ``database`` (a new event is stored)."""
    for dispatcher in list(_LOCAL.get(database.url, ())):
        dispatcher.wake()


async def progress(timeout: float) -> None:
    """Wait until a dispatcher of this process finished a round, or ``timeout`` seconds."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _PROGRESS.append(fut)
    try:
        await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        pass
    finally:
        with contextlib.suppress(ValueError):
            _PROGRESS.remove(fut)


def _announce_progress() -> None:
    waiting = list(_PROGRESS)
    _PROGRESS.clear()
    for fut in waiting:
        if not fut.done():
            fut.set_result(None)


def trigger_key(event_id: str, workflow_id: str) -> str:
    """The launch idempotency key of the run an event trigger starts: one run per event and trigger."""
    return f"event-trigger:{event_id}:{workflow_id}"


def event_signal_payload(tenant: str, event_id: str, event_name: str, correlation_key: str | None, payload: Any, received_at: datetime) -> dict[str, Any]:
    """The ``workflowRuntimeV2Event`` signal of a stored event."""
    return {"eventId": event_id, "eventName": event_name, "correlationKey": correlation_key, "payload": payload,
            "receivedAt": received_at.isoformat(), "tenant": tenant}


@dataclass
class _Work:
    """One delivery to attempt, with its event."""

    id: int
    tenant: str
    event_id: str
    kind: str
    target: str
    attempts: int
    event: dict[str, Any]


class Dispatcher:
    """Delivers stored events to waiting runs and event triggers, durably.

    Run :meth:`run` in the workflow-worker process (one per process; any number of processes).
    """

    def __init__(
        self,
        client: Client,
        database: Database,
        launcher: Launcher | None = None,
        *,
        batch: int = 500,
        concurrency: int = 64,
        lease: timedelta = timedelta(seconds=60),
        poll_interval: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        """Bind to Temporal and the database.

        Args:
            client: Temporal client of the authored namespace.
            database: Where events and deliveries are stored.
            launcher: Starts triggered runs (one is built when omitted).
            batch: Events (and due deliveries) handled per round.
            concurrency: Deliveries attempted at once.
            lease: How long an attempt holds its delivery before another dispatcher may retry it.
            poll_interval: Seconds between looks for work when nothing wakes the dispatcher.
            max_backoff: Longest delay between two attempts of one delivery, in seconds.
        """
        self.client = client
        self.database = database
        self.launcher = launcher or Launcher(client, database)
        self.batch = batch
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._postgres = database.dialect == "postgresql"

    def wake(self) -> None:
        """Look for work now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a failed round is logged in one line and retried."""
        _LOCAL.setdefault(self.database.url, weakref.WeakSet()).add(self)
        listener = asyncio.create_task(self._listen(stop)) if self._postgres else None
        failures = 0
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    busy = await self.run_once()
                    failures = 0
                except Exception as err:
                    failures += 1
                    busy = False
                    log.warning("event delivery round failed (%s: %s); retrying", type(err).__name__, safe_text(str(err).splitlines()[0] if str(err) else "", 300))
                if busy:
                    continue
                delay = self.poll_interval if failures == 0 else min(self.max_backoff, self.poll_interval * 2**failures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(self._wake.wait(), stop.wait()), delay)
        finally:
            _LOCAL.get(self.database.url, weakref.WeakSet()).discard(self)
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener

    async def run_once(self) -> bool:
        """One round: dispatch pending events, attempt due deliveries. Returns whether there was work."""
        now = utcnow()
        async with self.database.engine.connect() as conn:
            pending = (await conn.execute(select(_EVENTS.c.id).where(_EVENTS.c.dispatch_status == "PENDING").limit(1))).first() is not None
            due = (await conn.execute(
                select(func.count()).select_from(_DELIVERIES).where(
                    _DELIVERIES.c.status == "PENDING", _DELIVERIES.c.next_attempt_at <= now,
                    or_(_DELIVERIES.c.claimed_until.is_(None), _DELIVERIES.c.claimed_until < now))
            )).scalar_one() > 0
        work: list[_Work] = []
        dispatched: list[tuple[str, str]] = []
        if pending:
            fresh, dispatched = await self._dispatch_events()
            work += fresh
        if due:
            work += await self._claim_due()
        outcomes = await self._attempt_all(work) if work else []
        if dispatched and _EXPECTED:
            # before the outcomes are recorded: a sender waits for the attempts, not for the
            # database (which the runs they resumed are now busy writing to)
            self._tell_senders(dispatched, work, outcomes)
        if outcomes:
            await self._record(outcomes)
            metrics.observe_deliveries(
                (item.kind, outcome["p_status"], metrics.seconds_between(item.event["received_at"], outcome["p_now"]) if outcome["p_status"] == "DELIVERED" else None)
                for item, outcome in zip(work, outcomes, strict=True)
            )
        if pending or work:
            _announce_progress()
        return bool(pending or work)

    def _tell_senders(self, dispatched: list[tuple[str, str]], work: list[_Work], outcomes: list[dict[str, Any]]) -> None:
        """Hand senders waiting in this process their events' first outcomes."""
        by_event: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item, outcome in zip(work, outcomes, strict=True):
            by_event.setdefault((item.tenant, item.event_id), []).append({
                "kind": item.kind, "target": item.target, "status": outcome["p_status"], "runId": outcome["p_run"],
                "attempts": outcome["p_attempts"], "error": outcome["p_error"] or "",
            })
        for key in dispatched:
            fut = _EXPECTED.pop((self.database.url, *key), None)
            if fut is not None and not fut.done():
                fut.set_result(by_event.get(key, []))

    # ------------------------------------------------------------------------------- rounds

    async def _dispatch_events(self) -> tuple[list[_Work], list[tuple[str, str]]]:
        """Turn a batch of pending events into delivery rows, in one transaction.

        Returns the new deliveries to attempt and the ``(tenant, event id)`` of every event dispatched.
        """
        now = utcnow()
        pick = select(_EVENTS.c.id).where(_EVENTS.c.dispatch_status == "PENDING").order_by(_EVENTS.c.id).limit(self.batch)
        if self._postgres:
            pick = pick.with_for_update(skip_locked=True)
        claim = (
            update(_EVENTS)
            .where(_EVENTS.c.id.in_(pick.scalar_subquery()), _EVENTS.c.dispatch_status == "PENDING")
            .values(dispatch_status="DISPATCHED", dispatched_at=now)
            .returning(_EVENTS.c.tenant, _EVENTS.c.event_id, _EVENTS.c.event_name, _EVENTS.c.correlation_key, _EVENTS.c.payload, _EVENTS.c.received_at)
        )
        async with self.database.engine.begin() as conn:
            events = [dict(row._mapping) for row in await conn.execute(claim)]
            if not events:
                return [], []
            rows = await self._deliveries_for(conn, events, now)
            inserted: list[Any] = []
            if rows:
                stmt = insert_for(conn.dialect.name, _DELIVERIES).on_conflict_do_nothing(index_elements=["tenant", "event_id", "kind", "target"])
                inserted = list(await conn.execute(stmt.returning(_DELIVERIES.c.id, _DELIVERIES.c.tenant, _DELIVERIES.c.event_id,
                                                                  _DELIVERIES.c.kind, _DELIVERIES.c.target), rows))
        by_event = {(e["tenant"], e["event_id"]): e for e in events}
        return [_Work(r.id, r.tenant, r.event_id, r.kind, r.target, 0, by_event[(r.tenant, r.event_id)]) for r in inserted], list(by_event)

    async def _deliveries_for(self, conn: AsyncConnection, events: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """The delivery rows of ``events``: open waits on the same name and key, and event triggers.

        The look-up runs after the events were committed (by ingress): a wait opened later
        finds the event itself (the open-wait activity looks up stored events), so no
        interleaving loses an event.
        """
        params = {"p_tenants": sorted({e["tenant"] for e in events}), "p_names": sorted({e["event_name"] for e in events})}
        waiting: dict[tuple[str, str, str | None], list[str]] = {}
        keys = sorted({e["correlation_key"] for e in events if e["correlation_key"] is not None})
        for row in await conn.execute(_OPEN_WAITS, {**params, "p_keys": keys}):
            runs = waiting.setdefault((row.tenant, row.event_name, row.correlation_key), [])
            if row.run_id not in runs:
                runs.append(row.run_id)
        triggers: dict[tuple[str, str], list[Any]] = {}
        for version in await conn.execute(_TRIGGERED, params):
            triggers.setdefault((version.tenant, version.trigger_event_name), []).append(version)
        until = now + self.lease
        base = {"status": "PENDING", "attempts": 0, "next_attempt_at": now, "claimed_by": self.owner, "claimed_until": until, "created_at": now, "updated_at": now}
        rows: list[dict[str, Any]] = []
        for event in events:
            tenant, event_id = event["tenant"], event["event_id"]
            for run_id in waiting.get((tenant, event["event_name"], event["correlation_key"]), []):
                rows.append({**base, "tenant": tenant, "event_id": event_id, "kind": "signal", "target": run_id, "run_id": run_id})
            for version in triggers.get((tenant, event["event_name"]), []):
                rows.append({**base, "tenant": tenant, "event_id": event_id, "kind": "trigger", "target": f"{version.workflow_id}@{version.version}", "run_id": None})
        return rows

    async def _claim_due(self) -> list[_Work]:
        """Lease the deliveries due for another attempt (failed before, or left by a crashed dispatcher)."""
        now = utcnow()
        free = or_(_DELIVERIES.c.claimed_until.is_(None), _DELIVERIES.c.claimed_until < now)
        pick = (
            select(_DELIVERIES.c.id)
            .where(_DELIVERIES.c.status == "PENDING", _DELIVERIES.c.next_attempt_at <= now, free)
            .order_by(_DELIVERIES.c.next_attempt_at, _DELIVERIES.c.id).limit(self.batch)
        )
        if self._postgres:
            pick = pick.with_for_update(skip_locked=True)
        claim = (
            update(_DELIVERIES)
            .where(_DELIVERIES.c.id.in_(pick.scalar_subquery()), _DELIVERIES.c.status == "PENDING", free)
            .values(claimed_by=self.owner, claimed_until=now + self.lease)
            .returning(_DELIVERIES.c.id, _DELIVERIES.c.tenant, _DELIVERIES.c.event_id, _DELIVERIES.c.kind, _DELIVERIES.c.target, _DELIVERIES.c.attempts)
        )
        async with self.database.engine.begin() as conn:
            claimed = list(await conn.execute(claim))
            if not claimed:
                return []
            keys = sorted({(r.tenant, r.event_id) for r in claimed})
            events = {
                (row.tenant, row.event_id): dict(row._mapping)
                for row in await conn.execute(
                    select(_EVENTS.c.tenant, _EVENTS.c.event_id, _EVENTS.c.event_name, _EVENTS.c.correlation_key, _EVENTS.c.payload, _EVENTS.c.received_at)
                    .where(tuple_(_EVENTS.c.tenant, _EVENTS.c.event_id).in_(keys))
                )
            }
        return [_Work(r.id, r.tenant, r.event_id, r.kind, r.target, r.attempts, events[(r.tenant, r.event_id)]) for r in claimed if (r.tenant, r.event_id) in events]

    async def _attempt_all(self, work: list[_Work]) -> list[dict[str, Any]]:
        """Attempt every delivery (bounded); their outcomes, as update parameters."""
        bound = asyncio.Semaphore(self.concurrency)

        async def one(item: _Work) -> dict[str, Any]:
            async with bound:
                return await self._attempt(item)

        return list(await asyncio.gather(*(one(item) for item in work)))

    async def _record(self, outcomes: list[dict[str, Any]]) -> None:
        """Record the outcomes of a round's attempts in one transaction."""
        async with self.database.engine.begin() as conn:
            await conn.execute(
                update(_DELIVERIES)
                .where(_DELIVERIES.c.id == bindparam("p_id"), _DELIVERIES.c.status == "PENDING")
                .values(
                    status=bindparam("p_status"), attempts=bindparam("p_attempts"), last_error=bindparam("p_error"), run_id=func.coalesce(bindparam("p_run"), _DELIVERIES.c.run_id),
                    next_attempt_at=bindparam("p_next"), delivered_at=bindparam("p_delivered"), claimed_by=None, claimed_until=None, updated_at=bindparam("p_now"),
                ),
                outcomes,
            )

    async def _attempt(self, item: _Work) -> dict[str, Any]:
        """Attempt one delivery; return its outcome as update parameters.

        Lines logged meanwhile carry the tenant, the event id and the target run (or workflow).
        """
        target = {"runId": item.target} if item.kind == "signal" else {"workflowId": item.target}
        with log_context(tenant=item.tenant, eventId=item.event_id, **target):
            return await self._attempt_in_context(item)

    async def _attempt_in_context(self, item: _Work) -> dict[str, Any]:
        attempts = item.attempts + 1
        now = utcnow()
        outcome: dict[str, Any] = {"p_id": item.id, "p_attempts": attempts, "p_error": None, "p_run": None, "p_next": now, "p_delivered": None, "p_now": now}
        try:
            if item.kind == "signal":
                status, run_id = await self._signal(item)
            else:
                status, run_id = await self._start_triggered(item)
            outcome.update(p_status=status, p_run=run_id, p_delivered=now if status == "DELIVERED" else None)
            if status == "SKIPPED":
                outcome["p_error"] = "the run had already ended"
        except _Permanent as err:
            log.warning("event %s: %s delivery to %s cannot succeed: %s", item.event_id, item.kind, item.target, err)
            outcome.update(p_status="FAILED", p_error=safe_text(str(err)))
        except Exception as err:
            delay = min(self.max_backoff, 2.0 ** (attempts - 1))
            message = safe_text(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", 500)
            log.warning("event %s: %s delivery to %s failed (attempt %d, %s); retrying in %.0f s", item.event_id, item.kind, item.target, attempts, message, delay)
            outcome.update(p_status="PENDING", p_error=message, p_next=now + timedelta(seconds=delay))
        return outcome

    async def _signal(self, item: _Work) -> tuple[str, str]:
        event = item.event
        signal = event_signal_payload(item.tenant, item.event_id, event["event_name"], event["correlation_key"], event["payload"], event["received_at"])
        handle = self.client.get_workflow_handle(workflow_id_for_run(item.target))
        try:
            await handle.signal(EVENT_SIGNAL, signal)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and await self._run_ended(item.target):
                if await self._run_received(item.tenant, item.target, item.event_id):
                    # an earlier attempt's signal resumed the run, and its outcome was lost with
                    # its dispatcher (a worker killed between the signal and the record)
                    return "DELIVERED", item.target
                return "SKIPPED", item.target  # the run ended since its wait was projected
            raise
        return "DELIVERED", item.target

    async def _run_received(self, tenant: str, run_id: str, event_id: str) -> bool:
        """Whether an event wait of the run was resolved by ``event_id`` (its read-model row says so)."""
        query = select(_WAITS.c.resolution).where(
            _WAITS.c.tenant == tenant, _WAITS.c.run_id == run_id, _WAITS.c.wait_type == "event", _WAITS.c.status == "RESOLVED")
        async with self.database.engine.connect() as conn:
            resolutions = (await conn.execute(query)).scalars().all()
        return any(isinstance(r, dict) and r.get("eventId") == event_id for r in resolutions)

    async def _run_ended(self, run_id: str) -> bool:
        """Whether a run that could not be signalled has ended (Temporal's word first, then the read model's)."""
        try:
            described = await self.client.get_workflow_handle(workflow_id_for_run(run_id)).describe()
            return described.status is not None and described.status != WorkflowExecutionStatus.RUNNING
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        async with self.database.sessions() as session:
            status = (await session.execute(select(RunRow.status).where(RunRow.run_id == run_id))).scalar_one_or_none()
        return status is None or status in ("SUCCEEDED", "FAILED", "CANCELED")

    async def _start_triggered(self, item: _Work) -> tuple[str, str]:
        event = item.event
        workflow_id, _, version_text = item.target.rpartition("@")
        async with self.database.sessions() as session:
            document = (await session.execute(
                select(DefinitionVersion.document).where(DefinitionVersion.tenant == item.tenant, DefinitionVersion.workflow_id == workflow_id,
                                                         DefinitionVersion.version == int(version_text))
            )).scalar_one_or_none()
        if document is None:
            raise _Permanent(f"{workflow_id} v{version_text} is no longer published")
        mapping = (document.get("trigger") or {}).get("payloadMapping")
        context = {"event": {"name": event["event_name"], "correlationKey": event["correlation_key"], "payload": event["payload"]}}
        try:
            payload = _map(mapping, context) if mapping is not None else event["payload"]
        except RunError as err:
            raise _Permanent(f"payloadMapping failed: {err.info.message}") from None
        try:
            launched = await self.launcher.launch(
                item.tenant, workflow_id, payload, version=int(version_text), idempotency_key=trigger_key(item.event_id, workflow_id),
                trigger={"type": "event", "eventId": item.event_id, "eventName": event["event_name"], "correlationKey": event["correlation_key"]},
            )
        except LaunchError as err:
            raise _Permanent(str(err)) from None
        return "DELIVERED", launched.run_id

    # ------------------------------------------------------------------------------ wake-up

    async def _listen(self, stop: asyncio.Event) -> None:
        """LISTEN for stored events on PostgreSQL (reconnecting), waking the dispatcher on each."""
        import asyncpg

        url = make_url(self.database.url).set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 1.0
        while not stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(url)
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: self.wake())
                delay = 1.0
                self.wake()  # anything stored while we were not listening
                while not stop.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("event delivery: LISTEN on %s failed (%s); polling every %.0f s meanwhile", self.database.safe_url, type(err).__name__, self.poll_interval)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()


@contextlib.asynccontextmanager
async def delivering(client: Client, database: Database, **options: Any) -> AsyncIterator[Dispatcher]:
    """Run a :class:`Dispatcher` in the background for the duration of a ``with`` block.

    Args:
        client: Temporal client of the authored namespace.
        database: The runtime database.
        options: Passed to :class:`Dispatcher`.
    """
    dispatcher = Dispatcher(client, database, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield dispatcher
    finally:
        stop.set()
        try:
            # a round in progress finishes; one stuck on an unreachable Temporal is cut short, and
            # its leased deliveries are retried by another dispatcher once the lease ends
            await asyncio.wait_for(task, 10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:
            log.exception("event delivery stopped with an error")


class _Permanent(Exception):
    """A delivery that can never succeed (recorded FAILED, not retried)."""


async def _first(*waits: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _map(value: Any, context: dict[str, Any]) -> Any:
    """Evaluate a trigger's payloadMapping over ``{event: {name, correlationKey, payload}}``."""
    if isinstance(value, dict):
        if set(value) == {"$expr"}:
            return _ENGINE.evaluate(value["$expr"], context)
        if set(value) == {"$secret"}:
            return redact(value)
        return {k: _map(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_map(v, context) for v in value]
    return value

