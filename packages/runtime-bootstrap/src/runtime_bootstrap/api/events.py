"""Inbound events: send (durable once answered), list, read with their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from runtime_bootstrap.api._common import Cursor, Limit
from runtime_bootstrap.api._deps import Operator, Ops, Viewer
from runtime_core.operations import EventAccepted, EventView, Page, SendEventRequest

__all__ = ["router"]

router = APIRouter(tags=["events"])


@router.post("/events", status_code=202, response_model=EventAccepted)
async def send_event(body: SendEventRequest, who: Operator, ops: Ops) -> EventAccepted:
    """Store an event (durable once answered); workflow-workers deliver it to waiting runs and triggers."""
    return await ops.send_event(who.tenant, body, source="api")


@router.get("/events", response_model=Page[EventView])
async def list_events(
    who: Viewer,
    ops: Ops,
    event_name: Annotated[str | None, Query(alias="eventName", max_length=200)] = None,
    correlation_key: Annotated[str | None, Query(alias="correlationKey", max_length=500)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[EventView]:
    """The tenant's events, newest first, each with its deliveries."""
    return await ops.list_events(who.tenant, event_name=event_name, correlation_key=correlation_key, limit=limit, cursor=cursor)


@router.get("/events/{eventId:path}", response_model=EventView)
async def get_event(event_id: Annotated[str, Path(alias="eventId", description="The event's id (it may contain '/').")], who: Viewer, ops: Ops) -> EventView:
    """One event with its deliveries."""
    return await ops.get_event(who.tenant, event_id)
