"""Event ingress: store an inbound event once, signal every waiting run, start triggered runs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
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
_OPEN = select(_W.c.run_id).where(_W.c.tenant == bindparam("p_tenant"), _W.c.wait_type == "event", _W.c.status == "WAITING", _W.c.event_name == bindparam("p_name"))
#: Runs with an open wait on a name and key (an event without a key matches waits without one).
_OPEN_WAITS = {True: _OPEN.where(_W.c.correlation_key == bindparam("p_key")).distinct(), False: _OPEN.where(_W.c.correlation_key.is_(None)).distinct()}
_ENGINE = ExpressionEngine()


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
        received = utcnow()
        async with self.database.engine.begin() as conn:
            stored = await conn.execute(
                insert_for(conn.dialect.name, _EVENTS).on_conflict_do_nothing(index_elements=["tenant", "event_id"]),
                {"tenant": tenant, "event_id": event_id, "event_name": event_name, "correlation_key": correlation_key, "payload": payload, "source": source, "received_at": received},
            )
        if stored.rowcount == 0:
            result.duplicate = True
            return result
        signal = {"eventId": event_id, "eventName": event_name, "correlationKey": correlation_key, "payload": payload, "receivedAt": received.isoformat(), "tenant": tenant}
        async with self.database.engine.connect() as conn:
            keyed = correlation_key is not None
            params = {"p_tenant": tenant, "p_name": event_name, **({"p_key": correlation_key} if keyed else {})}
            run_ids = (await conn.execute(_OPEN_WAITS[keyed], params)).scalars().all()
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
        result.started_runs = await self._start_triggered(tenant, event_name, correlation_key, payload, event_id)
        return result

    async def _start_triggered(self, tenant: str, event_name: str, correlation_key: str | None, payload: Any, event_id: str) -> list[str]:
        async with self.database.sessions() as session:
            rows = (
                await session.execute(
                    select(DefinitionVersion)
                    .join(WorkflowDefinitionRow, (WorkflowDefinitionRow.tenant == DefinitionVersion.tenant) & (WorkflowDefinitionRow.workflow_id == DefinitionVersion.workflow_id)
                          & (WorkflowDefinitionRow.latest_version == DefinitionVersion.version))
                    .where(DefinitionVersion.tenant == tenant, DefinitionVersion.trigger_type == "event", DefinitionVersion.trigger_event_name == event_name)
                    .order_by(DefinitionVersion.workflow_id)
                )
            ).scalars().all()
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
