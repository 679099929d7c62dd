"""Run Studio: the task inbox (``/tasks``) and a task answered through a form built from its schema (``/tasks/{taskId}``).

Answering calls :meth:`Operations.complete_task`, as ``POST /api/v1/tasks/{taskId}/complete``
does (operator role); the override calls :meth:`Operations.override_task` (admin role). The
server's schema check is the only judge: its errors come back next to their fields.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from runtime_bootstrap.studio._forms import build_form, flatten, parse_form, place_errors
from runtime_bootstrap.studio._web import StudioUser, User, build, check_csrf, render
from runtime_core.operations import CompleteTaskRequest, Invalid, OverrideTaskRequest, TaskDetail, require_role

__all__ = ["STATUSES", "router"]

router = APIRouter()

#: The inbox's status filter (``ALL`` lists every task).
STATUSES = ("PENDING", "COMPLETED", "CANCELED", "ALL")


@router.get("/tasks")
async def task_list(request: Request, user: StudioUser) -> Response:
    """The tenant's human tasks, newest first: PENDING ones unless the status filter says otherwise."""
    q = request.query_params
    status = q.get("status") or "PENDING"
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", errors=[{"path": "status", "code": "UNKNOWN_STATUS", "message": f"one of {', '.join(STATUSES)}"}])
    task_type = q.get("taskType") or None
    page = await user.ops.list_tasks(user.tenant, status=None if status == "ALL" else status, task_type=task_type, limit=25, cursor=q.get("cursor") or None)
    keep = {"status": status if status != "PENDING" else None, "taskType": task_type}
    return render(request, "tasks.html", {"page": page, "status": status, "task_type": task_type or "", "keep": keep, "statuses": STATUSES,
                                          "cursor": q.get("cursor")}, user=user)


def _task_page(request: Request, user: User, task: TaskDetail, *, values: dict[str, Any] | None = None, errors: list[dict[str, Any]] | None = None,
               override: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    form = build_form(task.formSchema, values, place_errors(errors or []))
    return render(request, "task.html", {"task": task, "form": form, "override": override or {"response": "{}", "reason": "", "errors": {}}},
                  status_code=status_code, user=user)


@router.get("/tasks/{task_id}")
async def task_page(request: Request, task_id: str, user: StudioUser) -> Response:
    """A task: title, description, context, status, its run; a form built from its schema while it is PENDING."""
    return _task_page(request, user, await user.ops.get_task(user.tenant, task_id))


@router.post("/tasks/{task_id}")
async def answer(request: Request, task_id: str, user: StudioUser) -> Response:
    """Answer a task with the posted form (read back into JSON by the schema); then show its run.

    A response the schema refuses shows the form again (422) with each error next to its field;
    the task stays open.
    """
    form = await request.form()
    check_csrf(request, user, form)
    require_role(user.principal, "operator")
    task = await user.ops.get_task(user.tenant, task_id)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    value, problems = parse_form(task.formSchema, fields)
    if not problems:
        try:
            await user.ops.complete_task(user.tenant, task_id, build(CompleteTaskRequest, response=value), actor=user.actor)
        except Invalid as err:
            problems = err.errors
        else:
            return RedirectResponse(f"/runs/{task.runId}", status_code=303)
    return _task_page(request, user, task, values=flatten(task.formSchema, value), errors=problems, status_code=422)


@router.post("/tasks/{task_id}/override")
async def override(request: Request, task_id: str, user: StudioUser) -> Response:
    """An admin's answer that skips the schema (JSON and a reason, both recorded); then show the run."""
    form = await request.form()
    check_csrf(request, user, form)
    require_role(user.principal, "admin")
    task = await user.ops.get_task(user.tenant, task_id)
    text, reason = str(form.get("response") or ""), str(form.get("reason") or "")
    errors: dict[str, str] = {}
    try:
        response = json.loads(text)
    except ValueError as err:
        errors["response"] = f"not JSON ({err}): write the response as JSON, e.g. {{\"ok\": true}}"
    if not errors:
        try:
            await user.ops.override_task(user.tenant, task_id, build(OverrideTaskRequest, response=response, reason=reason), actor=user.actor)
        except Invalid as err:
            for e in err.errors:
                errors.setdefault(str(e.get("path") or "response").split(".")[0], str(e.get("message")))
        else:
            return RedirectResponse(f"/runs/{task.runId}", status_code=303)
    return _task_page(request, user, task, override={"response": text, "reason": reason, "errors": errors}, status_code=422)
