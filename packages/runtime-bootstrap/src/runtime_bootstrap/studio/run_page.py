"""Run Studio: one run's page (``/runs/{runId}``) and the actions on it.

The page shows the run's header, why it is stuck or how it failed, its step timeline as a tree
following the pinned definition (branches, loop items, try/catch), and its waits, tasks, action
invocations, events and children. While the run is active the body is a live region that
``studio.js`` re-reads as a fragment (``X-Studio-Fragment: 1``). Every action is an operation
the API and the CLI have too: cancel, replay (with a dry-run check of an edited payload),
resume and export.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from runtime_bootstrap.studio._web import StudioUser, User, check_csrf, render
from runtime_core.contract import TASK_QUEUE
from runtime_core.operations import (
    Diagnosis,
    Invalid,
    InvocationView,
    NotFound,
    RunDetail,
    RunSummary,
    StepView,
    require_role,
)

__all__ = ["ACTIVE", "Group", "Node", "router", "step_tree", "stuck_words", "timing_bar"]

router = APIRouter()

#: Statuses of a run that is still going (the page keeps itself up to date).
ACTIVE = ("RUNNING", "WAITING")
#: Most loop items shown per loop (the export has them all).
MAX_ITEMS = 200
_BRANCHES = {"control.if": ("then", "else"), "control.tryCatch": ("try", "catch"), "control.forEach": ("body",)}


# ------------------------------------------------------------------------------ the tree


@dataclass
class Node:
    """One step of the definition in one loop context, with its executions there."""

    step: dict[str, Any]
    path: str
    context: tuple[int, ...]
    runs: list[StepView]
    invocations: list[InvocationView] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    children: list[RunSummary] = field(default_factory=list)
    hidden_items: int = 0
    failing: bool = False

    @property
    def last(self) -> StepView | None:
        """The latest execution of the step here, if it ran."""
        return self.runs[-1] if self.runs else None

    @property
    def anchor(self) -> str:
        """The element id of the step (path and loop indices)."""
        text = self.path + "".join(f"-{i}" for i in self.context)
        return "step-" + re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


@dataclass
class Group:
    """A nested sequence of a control step: a branch (``then``, ``catch``) or one loop item."""

    label: str
    nodes: list[Node]
    taken: bool


def _loops(row: StepView) -> tuple[int, ...]:
    return tuple(row.loopIndices or ())


def step_tree(definition: dict[str, Any] | None, steps: list[StepView], invocations: list[InvocationView],
              children: list[RunSummary], error: dict[str, Any] | None) -> tuple[list[Node], str | None]:
    """The step timeline as a tree following ``definition``, and the anchor of the failing step.

    Each definition step becomes a node per loop context it ran in (a ``forEach`` body once per
    item), holding the step executions recorded at its ``stepPath`` with those ``loopIndices``;
    steps that never ran are nodes without executions (shown as pending). Executions whose path
    is not in the definition (none is stored) are listed flat at the end.

    Args:
        definition: The pinned definition document (``None`` when it is no longer stored).
        steps: The run's step executions (``run_steps``).
        invocations: The run's action invocations (``run_invocations``), matched by step seq.
        children: The run's child runs, shown under the ``callWorkflow`` step of their workflow.
        error: The run's error; its ``nodePath`` marks the failing step.
    """
    by_key: dict[tuple[str, tuple[int, ...]], list[StepView]] = {}
    for row in steps:
        by_key.setdefault((row.stepPath, _loops(row)), []).append(row)
    by_seq: dict[int, list[InvocationView]] = {}
    for inv in invocations:
        by_seq.setdefault(inv.stepSeq, []).append(inv)
    used: set[int] = set()
    failing_path = error.get("nodePath") if isinstance(error, dict) else None
    failing: list[Node] = []

    def sequence(items: Any, seq_path: str, context: tuple[int, ...]) -> list[Node]:
        nodes = []
        for index, step in enumerate(items if isinstance(items, list) else []):
            if isinstance(step, dict):
                nodes.append(one(step, f"{seq_path}[{index}]", context))
        return nodes

    def one(step: dict[str, Any], path: str, context: tuple[int, ...]) -> Node:
        runs = by_key.get((path, context), [])
        used.update(r.seq for r in runs)
        node = Node(step=step, path=path, context=context, runs=runs, invocations=[i for r in runs for i in by_seq.get(r.seq, [])])
        kind = step.get("type")
        if kind == "control.forEach":
            depth, prefix = len(context), f"{path}.body.steps["
            indices = sorted({_loops(r)[depth] for r in steps
                              if r.stepPath.startswith(prefix) and len(_loops(r)) > depth and _loops(r)[:depth] == context})
            node.hidden_items = max(0, len(indices) - MAX_ITEMS)
            node.groups = [Group(f"item {i}", sequence(step.get("body"), f"{path}.body.steps", (*context, i)), True) for i in indices[:MAX_ITEMS]]
            for i in indices[MAX_ITEMS:]:  # not shown, but not "unknown" either
                used.update(r.seq for r in steps if r.stepPath.startswith(prefix) and _loops(r)[: depth + 1] == (*context, i))
        elif kind in _BRANCHES:
            for key in _BRANCHES[kind]:
                if key in step:
                    nodes = sequence(step.get(key), f"{path}.{key}.steps", context)
                    node.groups.append(Group(key, nodes, any(n.runs or any(g.taken for g in n.groups) for n in nodes)))
        elif kind == "control.callWorkflow":
            node.children = [c for c in children if c.workflowId == step.get("workflowId")]
        if failing_path == path and (node.last is None or node.last.status == "FAILED"):
            failing.append(node)
        return node

    tree = sequence((definition or {}).get("steps"), "root.steps", ())
    for row in steps:  # executions the definition does not explain
        if row.seq not in used:
            tree.append(Node(step={"id": row.stepId, "type": row.type, "name": row.name}, path=row.stepPath, context=_loops(row),
                             runs=[row], invocations=by_seq.get(row.seq, [])))
    anchor = None
    if failing:
        target = next((n for n in reversed(failing) if n.runs), failing[-1])
        target.failing = True
        anchor = target.anchor
    return tree, anchor


# ---------------------------------------------------------------------------- the words

_STUCK: dict[str, tuple[str, str]] = {
    "NO_WORKER": (f"No worker is polling {TASK_QUEUE}", "Start workflow-worker: the run continues where it stopped."),
    "WORKFLOW_TASK_FAILING": ("The worker keeps failing to run this workflow's code",
                              "Read the workflow-worker log and fix the cause (a bug or a bad deployment): the task is retried and the run continues."),
    "ACTIVITY_RETRYING": ("A step keeps failing and is being retried",
                          "Fix what it depends on (its database, the network, the worker): it is retried until it succeeds."),
    "BACKLOG": (f"Workers poll {TASK_QUEUE}, but too many tasks are queued", "Add workflow-worker processes."),
    "EXECUTION_GONE": ("Temporal no longer has this run's execution",
                       "Reconcile the run (wfr runs reconcile) to give it the end Temporal knows."),
}


def stuck_words(diagnosis: Diagnosis) -> tuple[str, str]:
    """Why a run is stuck and what to do, in an operator's words, for a diagnosis reason."""
    return _STUCK.get(diagnosis.reason, (f"The run makes no progress ({diagnosis.reason})", "See the detail below."))


# ---------------------------------------------------------------------------- the page


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def timing_bar(run: RunSummary) -> Callable[[StepView], tuple[float, float] | None]:
    """Where a step execution sits in the run's span, as ``(left %, width %)`` for its timeline bar."""
    start = _when(run.startedAt)
    end = _when(run.endedAt) or datetime.now(UTC)
    total = (end - start).total_seconds() if start else 0

    def bar(step: StepView) -> tuple[float, float] | None:
        began = _when(step.startedAt)
        if start is None or began is None or total <= 0:
            return None
        ended = _when(step.endedAt) or end
        left = min(100.0, max(0.0, (began - start).total_seconds() / total * 100))
        width = min(100.0 - left, max(0.6, (ended - began).total_seconds() / total * 100))
        return round(left, 2), round(width, 2)

    return bar


async def _context(user: User, run_id: str) -> dict[str, Any]:
    ops, tenant = user.ops, user.tenant
    run: RunDetail = await ops.get_run(tenant, run_id)
    steps, waits, tasks, invocations, events, children = await asyncio.gather(
        ops.run_steps(tenant, run_id), ops.run_waits(tenant, run_id), ops.run_tasks(tenant, run_id),
        ops.run_invocations(tenant, run_id), ops.run_events(tenant, run_id), ops.run_children(tenant, run_id))
    try:
        definition: dict[str, Any] | None = (await ops.get_version(tenant, run.workflowId, run.workflowVersion)).definition
    except NotFound:
        definition = None
    tree, failing_anchor = step_tree(definition, steps, invocations, children, run.error)
    replays = [h.detail["newRunId"] for h in run.history
               if h.action in ("replay", "replayed-as") and isinstance(h.detail, dict) and isinstance(h.detail.get("newRunId"), str)]
    return {
        "run": run, "tree": tree, "failing_anchor": failing_anchor, "definition": definition, "steps": steps, "waits": waits,
        "tasks": tasks, "invocations": invocations, "events": events, "children": children, "replays": replays,
        "active": run.status in ACTIVE, "bar": timing_bar(run), "stuck": stuck_words(run.diagnosis) if run.diagnosis else None,
        "ran": len(steps), "payload_text": json.dumps(run.payload if isinstance(run.payload, dict) else {}, indent=2, ensure_ascii=False),
    }


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str, user: StudioUser) -> Response:
    """One run; just its live body (``_run_body.html``) when asked with ``X-Studio-Fragment``."""
    context = await _context(user, run_id)
    if request.headers.get("x-studio-fragment"):
        response = render(request, "_run_body.html", context, user=user)
        response.headers["Cache-Control"] = "no-store"
        return response
    return render(request, "run.html", context, user=user)


async def _operator_form(request: Request, user: User) -> Any:
    form = await request.form()
    check_csrf(request, user, form)
    require_role(user.principal, "operator")
    return form


def _reason(form: Any) -> str | None:
    text = str(form.get("reason") or "").strip()
    if len(text) > 2000:
        raise Invalid("reason: at most 2000 characters; shorten it", errors=[{"path": "reason", "code": "TOO_LONG", "message": "at most 2000 characters"}])
    return text or None


@router.post("/runs/{run_id}/cancel")
async def cancel(request: Request, run_id: str, user: StudioUser) -> Response:
    """Cancel the run with the form's reason (recorded with the actor); back to its page."""
    form = await _operator_form(request, user)
    await user.ops.cancel_run(user.tenant, run_id, actor=user.actor, reason=_reason(form))
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/resume")
async def resume(request: Request, run_id: str, user: StudioUser) -> Response:
    """Resume a FAILED run from the step that failed it; back to its page."""
    form = await _operator_form(request, user)
    await user.ops.resume_run(user.tenant, run_id, actor=user.actor, reason=_reason(form))
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _payload(form: Any) -> dict[str, Any] | None:
    """The form's edited payload (``None`` when the form sends none: replay the original input)."""
    if "payload" not in form:
        return None
    text = str(form.get("payload") or "").strip() or "{}"
    try:
        payload = json.loads(text)
    except ValueError as err:
        raise Invalid(f"payload: not JSON ({err}); fix the text", errors=[{"path": "payload", "code": "INVALID_JSON", "message": str(err)}]) from None
    if not isinstance(payload, dict):
        raise Invalid("payload: must be a JSON object ({...})", errors=[{"path": "payload", "code": "NOT_AN_OBJECT", "message": "a JSON object"}])
    return payload


@router.post("/runs/{run_id}/replay")
async def replay(request: Request, run_id: str, user: StudioUser) -> Response:
    """Replay the run (original input, or the form's edited ``payload``); go to the new run's page."""
    form = await _operator_form(request, user)
    run = await user.ops.replay_run(user.tenant, run_id, payload=_payload(form), actor=user.actor, reason=_reason(form))
    return RedirectResponse(f"/runs/{run.runId}", status_code=303)


@router.post("/runs/{run_id}/replay/check")
async def replay_check(request: Request, run_id: str, user: StudioUser) -> Response:
    """The replay editor's check: ``{"valid", "errors": [{path, code, message}]}`` of a payload, nothing launched."""
    form = await _operator_form(request, user)
    try:
        payload = _payload(form)
    except Invalid as err:
        return JSONResponse({"valid": False, "errors": err.errors})
    return JSONResponse((await user.ops.check_replay_payload(user.tenant, run_id, payload)).model_dump())


@router.get("/runs/{run_id}/export")
async def export(run_id: str, user: StudioUser) -> Response:
    """The run's export document as a download, ``run-<id>.json``."""
    document = await user.ops.export_run(user.tenant, run_id)
    body = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    return Response(body, media_type="application/json", headers={"Content-Disposition": f'attachment; filename="run-{run_id}.json"'})
