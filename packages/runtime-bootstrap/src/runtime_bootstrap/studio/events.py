"""Run Studio: send an event and list events with their deliveries (``/events``).

Sending calls :meth:`Operations.send_event` (source ``studio``), as ``POST /api/v1/events``
does (operator role); the page then shows the stored event, and re-reads itself while its
deliveries to waiting runs and triggers are still under way.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from runtime_bootstrap.studio._web import StudioUser, User, build, check_csrf, render
from runtime_core.operations import EventView, Invalid, NotFound, SendEventRequest, require_role

__all__ = ["router"]

router = APIRouter()


def _pending(event: EventView | None) -> bool:
    """Whether an event's deliveries are still under way (the page keeps re-reading itself)."""
    return event is not None and (not event.dispatched or any(d.status == "PENDING" for d in event.deliveries))


async def _page(request: Request, user: User, *, send: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    q = request.query_params
    params = {"eventName": q.get("eventName", ""), "correlationKey": q.get("correlationKey", "")}
    page = await user.ops.list_events(user.tenant, event_name=params["eventName"] or None, correlation_key=params["correlationKey"] or None,
                                      limit=20, cursor=q.get("cursor") or None)
    sent: EventView | None = None
    if q.get("sent"):
        try:
            sent = await user.ops.get_event(user.tenant, q["sent"])
        except NotFound:
            sent = None
    return render(request, "events.html", {
        "page": page, "params": params, "cursor": q.get("cursor"), "sent": sent, "duplicate": q.get("duplicate") == "1",
        "live": _pending(sent), "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "send": send or {"eventName": "", "correlationKey": "", "payload": "{}", "errors": {}},
    }, status_code=status_code, user=user)


@router.get("/events")
async def event_list(request: Request, user: StudioUser) -> Response:
    """The send form, the event just sent (``?sent=``) and the tenant's events, newest first, filtered by name and key."""
    return await _page(request, user)


@router.post("/events")
async def send(request: Request, user: StudioUser) -> Response:
    """Send an event (name, correlation key, JSON payload); then show it with its deliveries."""
    form = await request.form()
    check_csrf(request, user, form)
    require_role(user.principal, "operator")
    values = {k: str(form.get(k) or "") for k in ("eventName", "correlationKey", "payload")}
    errors: dict[str, str] = {}
    payload: Any = None
    if values["payload"].strip():
        try:
            payload = json.loads(values["payload"])
        except ValueError as err:
            errors["payload"] = f"not JSON ({err}): write the payload as JSON, e.g. {{\"amount\": 10}}, or leave it empty"
    if not errors:
        try:
            body = build(SendEventRequest, eventName=values["eventName"].strip(), correlationKey=values["correlationKey"].strip() or None, payload=payload)
            accepted = await user.ops.send_event(user.tenant, body, source="studio")
        except Invalid as err:
            for e in err.errors or [{"path": "eventName", "message": err.detail}]:
                errors.setdefault(str(e.get("path") or "eventName").split(".")[0], str(e.get("message")))
        else:
            return RedirectResponse(f"/events?sent={quote(accepted.eventId, safe='')}" + ("&duplicate=1" if accepted.duplicate else ""), status_code=303)
    return await _page(request, user, send={**values, "errors": errors}, status_code=422)
