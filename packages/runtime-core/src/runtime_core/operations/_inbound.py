"""Events and human tasks: send and list events with their deliveries, list and answer tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_

from runtime_core.ingress import EventIngress, IngressError, TaskError, TaskResponseRejected, complete_task
from runtime_core.operations._base import OperationsBase, check_limit, decode_cursor, encode_cursor, iso, parse_time, storable, text_param
from runtime_core.operations._errors import Conflict, Invalid, NotFound
from runtime_core.operations._runs import task_view
from runtime_core.operations._schemas import (
    CompleteTaskRequest,
    Delivery,
    EventAccepted,
    EventView,
    OverrideTaskRequest,
    Page,
    SendEventRequest,
    TaskDetail,
    TaskView,
)
from runtime_core.persistence import EventDelivery, RuntimeEvent, TaskRow

if TYPE_CHECKING:
    from runtime_core.operations._redaction import Redactor

__all__ = ["Inbound", "event_views"]

#: Task statuses.
TASK_STATUSES = ("PENDING", "COMPLETED", "CANCELED")


async def event_views(ops: OperationsBase, tenant: str, events: list[RuntimeEvent], redactor: Redactor | None = None) -> list[EventView]:
    """Events as shown (payload redacted), each with its deliveries."""
    redactor = redactor or await ops.redactor(tenant)
    deliveries: dict[str, list[Delivery]] = {}
    ids = [e.event_id for e in events]
    if ids:
        async with ops.database.sessions() as session:
            rows = (await session.execute(select(EventDelivery).where(EventDelivery.tenant == tenant, EventDelivery.event_id.in_(ids)).order_by(EventDelivery.id))).scalars()
            for d in rows:
                deliveries.setdefault(d.event_id, []).append(
                    Delivery(kind=d.kind, runId=d.run_id, target=d.target, status=d.status, attempts=d.attempts, reason=d.last_error))
    return [
        EventView(eventId=e.event_id, eventName=e.event_name, correlationKey=e.correlation_key, payload=redactor.apply(e.payload, "event"), source=e.source,
                  receivedAt=iso(e.received_at) or "", dispatched=e.dispatch_status == "DISPATCHED", deliveries=deliveries.get(e.event_id, []))
        for e in events
    ]


class Inbound(OperationsBase):
    """Event and task operations."""

    async def send_event(self, tenant: str, request: SendEventRequest, *, source: str = "api") -> EventAccepted:
        """Store an event (durable once this returns); a workflow-worker delivers it.

        Raises:
            Invalid: A field is malformed (the message names it).
        """
        try:
            result = await EventIngress(self.database).send(
                tenant, request.eventName, request.correlationKey, request.payload, event_id=request.eventId, source=source, wait=None,
            )
        except IngressError as err:
            field = str(err).split(":")[0].split(" ")[0]
            raise Invalid(str(err), errors=[{"path": field, "code": "INVALID_EVENT", "message": str(err)}]) from None
        return EventAccepted(eventId=result.event_id, duplicate=result.duplicate)

    async def list_events(self, tenant: str, *, event_name: str | None = None, correlation_key: str | None = None,
                          limit: int = 50, cursor: str | None = None) -> Page[EventView]:
        """The tenant's events, newest first, each with its deliveries."""
        limit = check_limit(limit)
        query = select(RuntimeEvent).where(RuntimeEvent.tenant == tenant)
        if event_name is not None:
            query = query.where(RuntimeEvent.event_name == text_param(event_name, "eventName", max_length=200))
        if correlation_key is not None:
            query = query.where(RuntimeEvent.correlation_key == text_param(correlation_key, "correlationKey"))
        if cursor:
            received, row_id = decode_cursor(cursor, 2)
            if not isinstance(received, str) or type(row_id) is not int:
                raise Invalid("cursor is not one this API handed out", errors=[{"path": "cursor", "code": "INVALID_CURSOR", "message": "unknown cursor"}])
            query = query.where(tuple_(RuntimeEvent.received_at, RuntimeEvent.id) < tuple_(parse_time(received, "cursor"), row_id))
        async with self.database.sessions() as session:
            rows = list((await session.execute(query.order_by(RuntimeEvent.received_at.desc(), RuntimeEvent.id.desc()).limit(limit + 1))).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        items = await event_views(self, tenant, rows)
        return Page[EventView](items=items, nextCursor=encode_cursor(iso(rows[-1].received_at), rows[-1].id) if more else None)

    async def get_event(self, tenant: str, event_id: str) -> EventView:
        """One event with its deliveries.

        Raises:
            NotFound: No such event for this tenant.
        """
        if not storable(event_id) or len(event_id) > 200:
            raise NotFound(f"event {str(event_id)[:80]!r} not found")
        async with self.database.sessions() as session:
            row = (await session.execute(select(RuntimeEvent).where(RuntimeEvent.tenant == tenant, RuntimeEvent.event_id == event_id))).scalar_one_or_none()
        if row is None:
            raise NotFound(f"event {event_id} not found")
        return (await event_views(self, tenant, [row]))[0]

    # ----------------------------------------------------------------------------------- tasks

    async def list_tasks(self, tenant: str, *, status: str | None = "PENDING", task_type: str | None = None, run_id: str | None = None,
                         limit: int = 50, cursor: str | None = None) -> Page[TaskView]:
        """The tenant's tasks, newest first (``PENDING`` ones by default; ``status=None`` for all).

        Raises:
            Invalid: An unknown status or cursor.
        """
        limit = check_limit(limit)
        query = select(TaskRow).where(TaskRow.tenant == tenant)
        if status is not None:
            if status not in TASK_STATUSES:
                raise Invalid(f"status must be one of {', '.join(TASK_STATUSES)}", errors=[{"path": "status", "code": "UNKNOWN_STATUS", "message": f"one of {', '.join(TASK_STATUSES)}"}])
            query = query.where(TaskRow.status == status)
        if task_type is not None:
            query = query.where(TaskRow.task_type == text_param(task_type, "taskType", max_length=200))
        if run_id is not None:
            query = query.where(TaskRow.run_id == text_param(run_id, "runId", max_length=64))
        if cursor:
            created, task_id = decode_cursor(cursor, 2)
            if not isinstance(created, str) or not isinstance(task_id, str):
                raise Invalid("cursor is not one this API handed out", errors=[{"path": "cursor", "code": "INVALID_CURSOR", "message": "unknown cursor"}])
            query = query.where(tuple_(TaskRow.created_at, TaskRow.task_id) < tuple_(parse_time(created, "cursor"), str(task_id)))
        async with self.database.sessions() as session:
            rows = list((await session.execute(query.order_by(TaskRow.created_at.desc(), TaskRow.task_id.desc()).limit(limit + 1))).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page[TaskView](items=[task_view(t) for t in rows], nextCursor=encode_cursor(iso(rows[-1].created_at), rows[-1].task_id) if more else None)

    async def _task_row(self, tenant: str, task_id: str) -> TaskRow:
        return await self.tenant_row(TaskRow, "task", tenant, task_id)

    async def get_task(self, tenant: str, task_id: str) -> TaskDetail:
        """One task with its form schema and context (redacted).

        Raises:
            NotFound: No such task for this tenant.
        """
        row = await self._task_row(tenant, task_id)
        redactor = await self.redactor(tenant)
        return TaskDetail(
            **task_view(row).model_dump(), description=row.description, contextData=redactor.apply(row.context_data, "context"),
            formSchema=row.form_schema, response=redactor.apply(row.response, "response"), completedBy=row.completed_by, adminOverride=row.admin_override,
        )

    async def complete_task(self, tenant: str, task_id: str, request: CompleteTaskRequest, *, actor: str | None) -> TaskDetail:
        """Answer a task; the response is validated against its form schema first.

        Raises:
            NotFound: No such task for this tenant.
            Conflict: The task is not PENDING.
            Invalid: The response does not fit the form schema (every violation listed; the task stays open).
        """
        return await self._answer(tenant, task_id, request.response, admin=False, actor=actor, reason=None)

    async def override_task(self, tenant: str, task_id: str, request: OverrideTaskRequest, *, actor: str) -> TaskDetail:
        """An admin's answer that skips validation; the actor and reason are recorded."""
        return await self._answer(tenant, task_id, request.response, admin=True, actor=actor, reason=request.reason)

    async def _answer(self, tenant: str, task_id: str, response: Any, *, admin: bool, actor: str | None, reason: str | None) -> TaskDetail:
        row = await self._task_row(tenant, task_id)
        if row.status != "PENDING":
            raise Conflict(f"task {task_id} is {row.status}, not PENDING")
        try:
            await complete_task(self.database, self.client, tenant, task_id, response, admin=admin, actor=actor or ("api" if admin else None))
        except TaskResponseRejected as err:
            raise Invalid("the response does not match the task's form schema; the task stays open",
                          errors=[{"path": e["path"], "code": "SCHEMA", "message": e["message"]} for e in err.errors]) from None
        except TaskError as err:
            current = await self._task_row(tenant, task_id)
            if current.status != "PENDING":
                raise Conflict(f"task {task_id} is {current.status}, not PENDING") from None
            raise Invalid(str(err), errors=[{"path": "response", "code": "INVALID_RESPONSE", "message": str(err)}]) from None
        if admin:
            await self.record(tenant, row.run_id, "task-override", actor, reason, {"taskId": task_id})
        return await self.get_task(tenant, task_id)
