"""Runs: list, read (and every part of a run), launch, cancel, replay, resume, reconcile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from runtime_bootstrap.api._common import Cursor, Limit, RunId, whole
from runtime_bootstrap.api._deps import Admin, Operator, Ops, Viewer
from runtime_bootstrap.api._models import CancelAccepted, RunExport
from runtime_core.operations import (
    BulkCancelRequest,
    BulkCancelResult,
    CancelRequest,
    EventView,
    InvocationView,
    LaunchRequest,
    LiveView,
    Page,
    ReconcileResult,
    ReplayCheck,
    ReplayRequest,
    ResumeRequest,
    RunDetail,
    RunFilter,
    RunSummary,
    StepView,
    TaskView,
    WaitView,
)

__all__ = ["router"]

router = APIRouter(tags=["runs"])

_ENDED: dict[int | str, dict[str, Any]] = {409: {"description": "The run has ended (or its state does not allow this); `detail` says why."}}


def _location(response: Response, run: RunSummary) -> None:
    response.headers["Location"] = f"/api/v1/runs/{run.runId}"


@router.get("/runs", response_model=Page[RunSummary])
async def list_runs(
    who: Viewer,
    ops: Ops,
    status: Annotated[list[str] | None, Query(description="RUNNING, WAITING, SUCCEEDED, FAILED, CANCELED: repeat it or separate with commas.")] = None,
    workflow_id: Annotated[str | None, Query(alias="workflowId", max_length=200)] = None,
    started_after: Annotated[str | None, Query(alias="startedAfter", max_length=64, description="RFC 3339 instant (inclusive).")] = None,
    started_before: Annotated[str | None, Query(alias="startedBefore", max_length=64, description="RFC 3339 instant (exclusive).")] = None,
    root_only: Annotated[bool, Query(alias="rootOnly", description="Only runs that are not child runs.")] = False,
    stuck: Annotated[bool, Query(description="Only RUNNING runs that make no progress (those with a diagnosis).")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunSummary]:
    """The tenant's runs, newest first, each with its diagnosis."""
    statuses = [s.strip() for value in status or [] for s in value.split(",") if s.strip()]
    flt = RunFilter(status=statuses or None, workflowId=workflow_id, startedAfter=started_after, startedBefore=started_before, rootOnly=root_only, stuck=stuck)
    return await ops.list_runs(who.tenant, flt, limit=limit, cursor=cursor)


@router.post("/runs", status_code=201, response_model=RunSummary,
             responses={200: {"model": RunSummary, "description": "An earlier launch with the same Idempotency-Key and body: its run."},
                        409: {"description": "The Idempotency-Key was used for a launch with another body."}})
async def launch_run(
    body: LaunchRequest,
    who: Operator,
    ops: Ops,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=300,
                                                  description="Makes the launch idempotent for this tenant: the same key and body give the same run.")] = None,
) -> RunSummary:
    """Start a run of a published workflow (its latest version unless `version` is given)."""
    run, created = await ops.launch_run(who.tenant, body, idempotency_key=idempotency_key)
    response.status_code = 201 if created else 200
    _location(response, run)
    return run


@router.post("/runs:cancel", response_model=BulkCancelResult)
async def bulk_cancel(body: BulkCancelRequest, who: Admin, ops: Ops) -> BulkCancelResult:
    """Cancel runs by id or by filter (open root runs); `dryRun` only reports what would be cancelled."""
    return await ops.bulk_cancel(who.tenant, body, actor=who.actor)


@router.post("/runs:reconcile", response_model=ReconcileResult)
async def reconcile_runs(who: Admin, ops: Ops) -> ReconcileResult:
    """Give every open run of the tenant whose Temporal execution has ended or is gone the end Temporal knows."""
    return await ops.reconcile(who.tenant, actor=who.actor)


@router.get("/runs/{runId}", response_model=RunDetail)
async def get_run(run_id: RunId, who: Viewer, ops: Ops) -> RunDetail:
    """One run: its scopes (redacted), error, output, diagnosis and operator history."""
    return await ops.get_run(who.tenant, run_id)


@router.get("/runs/{runId}/steps", response_model=Page[StepView])
async def run_steps(run_id: RunId, who: Viewer, ops: Ops) -> Page[StepView]:
    """The run's step executions in start order (an action's input and output redacted)."""
    return whole(await ops.run_steps(who.tenant, run_id))


@router.get("/runs/{runId}/waits", response_model=Page[WaitView])
async def run_waits(run_id: RunId, who: Viewer, ops: Ops) -> Page[WaitView]:
    """The run's waits (timers, events, human tasks) in creation order."""
    return whole(await ops.run_waits(who.tenant, run_id))


@router.get("/runs/{runId}/tasks", response_model=Page[TaskView])
async def run_tasks(run_id: RunId, who: Viewer, ops: Ops) -> Page[TaskView]:
    """The run's human tasks in creation order."""
    return whole(await ops.run_tasks(who.tenant, run_id))


@router.get("/runs/{runId}/invocations", response_model=Page[InvocationView])
async def run_invocations(run_id: RunId, who: Viewer, ops: Ops) -> Page[InvocationView]:
    """The run's action invocations from the idempotency ledger (redacted)."""
    return whole(await ops.run_invocations(who.tenant, run_id))


@router.get("/runs/{runId}/events", response_model=Page[EventView])
async def run_events(run_id: RunId, who: Viewer, ops: Ops) -> Page[EventView]:
    """Events delivered to the run, oldest first."""
    return whole(await ops.run_events(who.tenant, run_id))


@router.get("/runs/{runId}/children", response_model=Page[RunSummary])
async def run_children(run_id: RunId, who: Viewer, ops: Ops) -> Page[RunSummary]:
    """The run's child runs in start order."""
    return whole(await ops.run_children(who.tenant, run_id))


@router.get("/runs/{runId}/live", response_model=LiveView, responses={409: {"description": "The run has ended: there is no live view."}})
async def run_live(run_id: RunId, who: Viewer, ops: Ops) -> LiveView:
    """The interpreter's own view, from Temporal queries: current step, current wait, summary."""
    return await ops.run_live(who.tenant, run_id)


@router.get("/runs/{runId}/export", response_model=RunExport)
async def export_run(run_id: RunId, who: Viewer, ops: Ops) -> Any:
    """Everything about the run and its definition version in one document, for a bug report."""
    return await ops.export_run(who.tenant, run_id)


@router.post("/runs/{runId}/cancel", status_code=202, response_model=CancelAccepted, responses=_ENDED)
async def cancel_run(run_id: RunId, who: Operator, ops: Ops, body: CancelRequest | None = None) -> Any:
    """Cancel a root run (children, steps, waits and tasks end CANCELED); the actor and reason are recorded."""
    return await ops.cancel_run(who.tenant, run_id, actor=who.actor, reason=body.reason if body else None)


@router.post("/runs/{runId}/replay", status_code=201, response_model=RunSummary | ReplayCheck,
             responses={200: {"description": "A dry run (`dryRun: true`): the payload's schema errors; nothing was launched.", "model": ReplayCheck},
                        409: {"description": "The run's workflow version can no longer be launched, or its original input is gone."}})
async def replay_run(run_id: RunId, who: Operator, ops: Ops, response: Response, body: ReplayRequest | None = None) -> RunSummary | ReplayCheck:
    """A new run of the same workflow version from the original input as launched (never a redacted copy), or from `payload`.

    With `dryRun: true` nothing is launched: the answer (200) says whether the payload fits the
    version's `payloadSchema` and lists each error with its path, for an editor to show before sending.
    """
    body = body or ReplayRequest()
    if body.dryRun:
        response.status_code = 200
        return await ops.check_replay_payload(who.tenant, run_id, body.payload)
    run = await ops.replay_run(who.tenant, run_id, payload=body.payload, actor=who.actor, reason=body.reason)
    _location(response, run)
    return run


@router.post("/runs/{runId}/resume", status_code=202, response_model=RunSummary,
             responses={409: {"description": "The run is not FAILED, or its failure cannot be resumed (`detail` says why)."}})
async def resume_run(run_id: RunId, who: Operator, ops: Ops, body: ResumeRequest | None = None) -> RunSummary:
    """A FAILED run continues from the step that failed it, as the same run; the actor and reason are recorded."""
    return await ops.resume_run(who.tenant, run_id, actor=who.actor, reason=body.reason if body else None)


@router.post("/runs/{runId}/reconcile", response_model=ReconcileResult)
async def reconcile_run(run_id: RunId, who: Operator, ops: Ops) -> ReconcileResult:
    """If the run is open while its Temporal execution has ended or is gone, give it the end Temporal knows."""
    await ops.run_row(who.tenant, run_id)  # 404 for another tenant's run, as everywhere
    return await ops.reconcile(who.tenant, [run_id], actor=who.actor)
