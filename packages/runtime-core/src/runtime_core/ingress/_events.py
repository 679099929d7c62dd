"""Event ingress: store an inbound event once, signal every waiting run, start triggered runs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.contract import EVENT_SIGNAL, workflow_id_for_run
from runtime_core.expressions import ExpressionEngine
from runtime_core.launcher import Launcher, LaunchError
from runtime_core.persistence import Database, DefinitionVersion, RuntimeEvent, WaitRow, WorkflowDefinitionRow, utcnow
from runtime_core.persistence._upsert import insert_for, table_of
from runtime_core.secrets import redact

__all__ = ["EventIngress", "IngressResult"]

log = logging.getLogger(__name__)
_EVENTS = table_of(RuntimeEvent)
_W = table_of(WaitRow)
_V = table_of(DefinitionVersion)
_D = table_of(WorkflowDefinitionRow)
#: The latest version of every definition triggered by one of the batch's event names.
_TRIGGERED = (
    select(_V.c.tenant, _V.c.trigger_event_name, _V.c.workflow_id, _V.c.version, _V.c.document)
    .join(_D, (_D.c.tenant == _V.c.tenant) & (_D.c.workflow_id == _V.c.workflow_id) & (_D.c.latest_version == _V.c.version))
    .where(_V.c.tenant.in_(bindparam("p_tenants", expanding=True)), _V.c.trigger_type == "event", _V.c.trigger_event_name.in_(bindparam("p_names", expanding=True)))
    .order_by(_V.c.workflow_id)
)
#: Open event waits on one of the batch's names; matched to each event's exact key in Python.
_OPEN_WAITS = select(_W.c.tenant, _W.c.event_name, _W.c.correlation_key, _W.c.run_id).where(
    _W.c.tenant.in_(bindparam("p_tenants", expanding=True)), _W.c.wait_type == "event", _W.c.status == "WAITING",
    _W.c.event_name.in_(bindparam("p_names", expanding=True)),
    or_(_W.c.correlation_key.in_(bindparam("p_keys", expanding=True)), _W.c.correlation_key.is_(None)),
)
#: Events stored in one transaction at most.
_BATCH = 500
_ENGINE = ExpressionEngine()


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
    """What one inbound event did."""

    event_id: str
    duplicate: bool = False
    signalled: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    started_runs: list[str] = field(default_factory=list)


class EventIngress:
    """Accepts inbound events for a tenant."""

    def __init__(self, client: Client, database: Database, launcher: Launcher | None = None, *, concurrency: int = 32, signal_attempts: int = 3) -> None:
        """Bind to Temporal and the database.

        Args:
            client: Temporal client of the authored namespace.
            database: Where events are stored and open waits are projected.
            launcher: Starts runs of definitions with an ``event`` trigger (one is built when omitted).
            concurrency: Signals in flight at once.
            signal_attempts: Tries per signal before it is reported as failed.
        """
        self.client = client
        self.database = database
        self.launcher = launcher or Launcher(client, database)
        self.concurrency = concurrency
        self.signal_attempts = signal_attempts
        self._queue: list[tuple[_Inbound, asyncio.Future[tuple[list[str], list[Any]] | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def send(self, tenant: str, event_name: str, correlation_key: str | None, payload: Any, *, event_id: str | None = None, source: str | None = None) -> IngressResult:
        """Store the event (once per ``event_id``) and deliver it.

        Every run of ``tenant`` with an open wait on this name and key is signalled concurrently,
        each failure isolated and retried; the workflow decides whether filters hold. A duplicate
        ``event_id`` is accepted and has no further effect.

        Raises:
            ValueError: The event is malformed (the message says which field).
        """
        if not isinstance(event_name, str) or not event_name:
            raise ValueError("eventName must be a non-empty string")
        if correlation_key is not None and not isinstance(correlation_key, str):
            raise ValueError("correlationKey must be a string")
        event_id = event_id or uuid.uuid4().hex
        result = IngressResult(event_id=event_id)
        event = _Inbound(tenant, event_id, event_name, correlation_key, payload, source, utcnow())
        stored = await self._store(event)
        if stored is None:
            result.duplicate = True
            return result
        run_ids, triggered = stored
        signal = {"eventId": event_id, "eventName": event_name, "correlationKey": correlation_key, "payload": payload, "receivedAt": event.received.isoformat(), "tenant": tenant}
        bound = asyncio.Semaphore(self.concurrency)

        async def deliver(run_id: str) -> None:
            async with bound:
                error: Exception | None = None
                for attempt in range(self.signal_attempts):
                    try:
                        await self.client.get_workflow_handle(workflow_id_for_run(run_id)).signal(EVENT_SIGNAL, signal)
                        result.signalled.append(run_id)
                        return
                    except RPCError as err:
                        if err.status == RPCStatusCode.NOT_FOUND:
                            return  # the run ended since its wait was projected
                        error = err
                    except Exception as err:
                        error = err
                    await asyncio.sleep(0.2 * 2**attempt)
                log.warning("event %s: signalling run %s failed: %s", event_id, run_id, error)
                result.failed.append({"runId": run_id, "error": str(error)})

        await asyncio.gather(*(deliver(r) for r in sorted(run_ids)))
        result.started_runs = await self._start_triggered(tenant, event_name, correlation_key, payload, event_id, triggered)
        return result

    async def _store(self, event: _Inbound) -> tuple[list[str], list[Any]] | None:
        """Store the event with whatever else is being sent now (one transaction for all of them).

        Returns the runs waiting on it and the definitions it triggers, or ``None`` for a
        duplicate. Concurrent ``send`` calls queue here; whoever finds no store in progress
        writes the whole queue in one transaction (group commit), so a burst of events costs a
        few transactions instead of one each, and a lone event waits for nothing.
        """
        done: asyncio.Future[tuple[list[str], list[Any]] | None] = asyncio.get_running_loop().create_future()
        self._queue.append((event, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
            try:
                outcomes = await self._store_batch([event for event, _ in batch])
            except BaseException as err:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(err)
                if not isinstance(err, Exception):
                    raise
                continue
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)

    async def _store_batch(self, events: list[_Inbound]) -> list[tuple[list[str], list[Any]] | None]:
        """Insert new events, commit, then look up open waits and triggers for the stored ones.

        The look-up follows the commit: a wait opened from now on finds the event itself (see
        the open-wait activity), so no interleaving loses an event.
        """
        first: dict[tuple[str, str], _Inbound] = {}
        for event in events:
            first.setdefault((event.tenant, event.event_id), event)  # a repeat within the batch is a duplicate
        async with self.database.engine.begin() as conn:
            inserted = {
                (row.tenant, row.event_id)
                for row in await conn.execute(
                    insert_for(conn.dialect.name, _EVENTS).on_conflict_do_nothing(index_elements=["tenant", "event_id"]).returning(_EVENTS.c.tenant, _EVENTS.c.event_id),
                    [
                        {"tenant": e.tenant, "event_id": e.event_id, "event_name": e.event_name, "correlation_key": e.correlation_key, "payload": e.payload,
                         "source": e.source, "received_at": e.received}
                        for e in first.values()
                    ],
                )
            }
        stored = {e for e in events if (e.tenant, e.event_id) in inserted and first[(e.tenant, e.event_id)] is e}
        waiting: dict[tuple[str, str, str | None], list[str]] = {}
        triggers: dict[tuple[str, str], list[Any]] = {}
        if stored:
            params = {"p_tenants": sorted({e.tenant for e in stored}), "p_names": sorted({e.event_name for e in stored})}
            async with self.database.engine.connect() as conn:
                keys = sorted({e.correlation_key for e in stored if e.correlation_key is not None})
                for row in await conn.execute(_OPEN_WAITS, {**params, "p_keys": keys}):
                    runs = waiting.setdefault((row.tenant, row.event_name, row.correlation_key), [])
                    if row.run_id not in runs:
                        runs.append(row.run_id)
                for version in await conn.execute(_TRIGGERED, params):
                    triggers.setdefault((version.tenant, version.trigger_event_name), []).append(version)
        return [
            (waiting.get((e.tenant, e.event_name, e.correlation_key), []), triggers.get((e.tenant, e.event_name), [])) if e in stored else None
            for e in events
        ]

    async def _start_triggered(self, tenant: str, event_name: str, correlation_key: str | None, payload: Any, event_id: str, rows: list[Any]) -> list[str]:
        started: list[str] = []
        context = {"event": {"name": event_name, "correlationKey": correlation_key, "payload": payload}}
        for version in rows:
            mapping = (version.document.get("trigger") or {}).get("payloadMapping")
            try:
                run_payload = _map(mapping, context) if mapping is not None else payload
                launched = await self.launcher.launch(
                    tenant, version.workflow_id, run_payload, version=version.version,
                    trigger={"type": "event", "eventId": event_id, "eventName": event_name, "correlationKey": correlation_key},
                )
                started.append(launched.run_id)
            except (LaunchError, Exception) as err:
                log.warning("event %s: could not start %s v%s: %s", event_id, version.workflow_id, version.version, err)
        return started


def _map(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$expr"}:
            return _ENGINE.evaluate(value["$expr"], context)
        if set(value) == {"$secret"}:
            return redact(value)
        return {k: _map(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_map(v, context) for v in value]
    return value
