"""Run Studio: the run list (``/runs``) with its filters, and launching a run."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from runtime_bootstrap.studio._web import StudioUser, build, check_csrf, render
from runtime_core.operations import Invalid, LaunchRequest, RunFilter, require_role

__all__ = ["STATUSES", "router"]

router = APIRouter()

STATUSES = ("RUNNING", "WAITING", "SUCCEEDED", "FAILED", "CANCELED")


def _instant(local: str, offset_minutes: str) -> str | None:
    """A ``datetime-local`` value with the browser's UTC offset (minutes; UTC without JavaScript) as RFC 3339."""
    if not local:
        return None
    try:
        minutes = int(offset_minutes or 0)
    except ValueError:
        minutes = 0
    minutes = max(-14 * 60, min(14 * 60, minutes))
    sign = "+" if minutes >= 0 else "-"
    text = local if len(local) > 16 else local + ":00"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@router.get("/runs")
async def run_list(request: Request, user: StudioUser) -> Response:
    """The tenant's runs, newest first: status, workflow and version, started, duration, stuck badge."""
    q = request.query_params
    params: dict[str, Any] = {k: q.get(k, "") for k in ("status", "workflowId", "after", "before", "tz")}
    params["stuck"] = q.get("stuck") == "on"
    status = params["status"] if params["status"] in STATUSES else ""
    flt = build(RunFilter, status=[status] if status else None, workflowId=params["workflowId"] or None,
                    startedAfter=_instant(params["after"], params["tz"]), startedBefore=_instant(params["before"], params["tz"]), stuck=params["stuck"])
    page = await user.ops.list_runs(user.tenant, flt, limit=25, cursor=q.get("cursor") or None)
    workflows = [d.workflowId for d in await user.ops.list_definitions(user.tenant)]
    keep = {**params, "stuck": "on" if params["stuck"] else None}
    return render(request, "runs.html", {"page": page, "params": params, "keep": keep, "statuses": STATUSES, "workflows": workflows,
                                         "cursor": q.get("cursor"), "launch": None}, user=user)


@router.post("/runs")
async def launch(request: Request, user: StudioUser) -> Response:
    """Launch a run of the latest version of a workflow with a JSON payload; show its page."""
    form = await request.form()
    check_csrf(request, user, form)
    require_role(user.principal, "operator")
    workflow_id = str(form.get("workflowId") or "")
    text = str(form.get("payload") or "{}")
    try:
        payload = json.loads(text or "{}")
    except ValueError as err:
        raise Invalid(f"the payload is not JSON: {err}", errors=[{"path": "payload", "code": "INVALID_JSON", "message": str(err)}]) from None
    if not isinstance(payload, dict):
        raise Invalid("the payload must be a JSON object", errors=[{"path": "payload", "code": "NOT_AN_OBJECT", "message": "a JSON object"}])
    run, _ = await user.ops.launch_run(user.tenant, build(LaunchRequest, workflowId=workflow_id, payload=payload))
    return RedirectResponse(f"/runs/{run.runId}", status_code=303)
