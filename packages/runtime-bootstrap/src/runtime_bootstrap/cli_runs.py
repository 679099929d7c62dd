"""``wfr runs``: list, show, steps, live, export, cancel (one, several, by filter), replay, resume, reconcile.

Each command calls one operation of :mod:`runtime_core.operations` (``runs show`` reads the run's
steps and waits too, for its timeline); ``--json`` prints the operation's model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runtime_bootstrap._cli_kit import Instant, actor_of, actor_option, call, check_texts, echo_json, json_option, request, tenant_option
from runtime_bootstrap._table import cell, compact_json, duration, instant, table
from runtime_bootstrap.cli import _check_json, _parse_json_option, wfr
from runtime_core.operations import BulkCancelRequest, CancelRequest, Operations, ReplayRequest, RunDetail, RunFilter, RunSummary, StepView, WaitView

__all__ = ["runs"]


@wfr.group()
def runs() -> None:
    """Runs: read them, see why one is stuck, cancel, replay, resume, reconcile with Temporal."""


def _filter_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--status", "statuses", multiple=True, help="RUNNING, WAITING, SUCCEEDED, FAILED or CANCELED (repeat for several)."),
        click.option("--workflow", "workflow_id", default=None, help="Runs of this workflow id."),
        click.option("--since", type=Instant(), default=None, help="Started at or after: an RFC 3339 instant, or 30m, 2h, 7d … ago."),
        click.option("--until", type=Instant(), default=None, help="Started before: an RFC 3339 instant, or 30m, 2h, 7d … ago."),
        click.option("--stuck", is_flag=True, help="Only RUNNING runs that make no progress, with why (needs Temporal)."),
    ]):
        fn = option(fn)
    return fn


def _run_filter(statuses: tuple[str, ...], workflow_id: str | None, since: str | None, until: str | None, stuck: bool, root_only: bool = False) -> RunFilter:
    check_texts(*((s, "--status") for s in statuses), (workflow_id, "--workflow"))
    return request(RunFilter, {"status": "--status", "workflowId": "--workflow"}, status=[s.upper() for s in statuses] or None, workflowId=workflow_id,
                   startedAfter=since, startedBefore=until, rootOnly=root_only, stuck=stuck)


def _note(run: RunSummary) -> str:
    if run.diagnosis is not None:
        return f"STUCK {run.diagnosis.reason}"
    if run.replayOfRunId:
        return f"replay of {run.replayOfRunId}"
    if run.parentRunId:
        return f"child of {run.parentRunId}"
    return ""


def _runs_table(items: list[RunSummary], indent: str = "") -> list[str]:
    return table(["RUN", "WORKFLOW", "VERSION", "STATUS", "STARTED", "DURATION", "NOTE"],
                 ([r.runId, r.workflowId, r.workflowVersion, r.status, instant(r.startedAt), duration(r.durationMs), _note(r)] for r in items),
                 indent=indent, right=[2])


@runs.command("list")
@_filter_options
@click.option("--root-only", is_flag=True, help="Only runs that are not child runs.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Runs per page.")
@click.option("--cursor", default=None, help="Continue a list (the nextCursor a previous page printed).")
@tenant_option
@json_option
def runs_list(statuses: tuple[str, ...], workflow_id: str | None, since: str | None, until: str | None, stuck: bool, root_only: bool,
              limit: int, cursor: str | None, tenant: str, as_json: bool) -> None:
    """Runs, newest first, with the diagnosis of any that makes no progress."""
    check_texts((tenant, "--tenant"), (cursor, "--cursor"))
    flt = _run_filter(statuses, workflow_id, since, until, stuck, root_only)
    page = call("temporal" if stuck else "diagnosis", lambda ops: ops.list_runs(tenant, flt, limit=limit, cursor=cursor))
    if as_json:
        echo_json(page)
        return
    if not page.items:
        click.echo("no runs" + (" on this page" if cursor else ""))
    else:
        for line in _runs_table(page.items):
            click.echo(line)
    if page.nextCursor:
        click.echo(f"more: --cursor {page.nextCursor}")


# ------------------------------------------------------------------------------------ show


def _show_lines(run: RunDetail, steps: list[StepView], waits: list[WaitView]) -> list[str]:
    from runtime_bootstrap._demo import format_timeline

    lines = [f"{cell(run.workflowId)} v{run.workflowVersion}  {run.status}",
             f"  run       {run.runId}",
             f"  started   {instant(run.startedAt)}   ended {instant(run.endedAt)}   duration {duration(run.durationMs)}"]
    related = [(label, value) for label, value in (("parent", run.parentRunId), ("root", run.rootRunId if run.rootRunId != run.runId else None),
                                                   ("replay of", run.replayOfRunId)) if value]
    if related:
        lines.append("  " + "   ".join(f"{label} {value}" for label, value in related))
    if run.triggeredBy:
        lines.append(f"  trigger   {cell(run.triggeredBy, 200)}")
    lines.append(f"  payload   {cell(run.payload, 200)}")
    lines.append(f"  vars      {cell(run.vars, 200)}")
    if run.error:
        lines.append(f"  error     {cell(run.error.get('category'))}: {cell(run.error.get('message'), 300)}")
    if run.diagnosis is not None:
        lines.append(f"STUCK since {instant(run.diagnosis.since)}: {run.diagnosis.reason}: {cell(run.diagnosis.detail, 500)}")
    if run.history:
        lines.append("history:")
        lines += table(["AT", "ACTION", "ACTOR", "REASON", "DETAIL"],
                       ([instant(h.at), h.action, h.actor, h.reason, compact_json(h.detail, 100) if h.detail else None] for h in run.history), indent="  ")
    lines += format_timeline({"steps": [s.model_dump() for s in steps]}, indent="  ")
    for wait in waits:
        lines.append(f"  wait {wait.type:<6} {wait.status:<9} {cell(wait.eventName or '')} {cell(wait.correlationKey or '')}".rstrip())
    return lines


@runs.command("show")
@click.argument("run_id")
@tenant_option
@json_option
def runs_show(run_id: str, tenant: str, as_json: bool) -> None:
    """A run: header, why it is stuck (if it is), operator history, step timeline and waits."""
    check_texts((run_id, "RUN_ID"), (tenant, "--tenant"))

    async def read(ops: Operations) -> tuple[RunDetail, list[StepView], list[WaitView]]:
        run = await ops.get_run(tenant, run_id)
        if as_json:
            return run, [], []
        return run, await ops.run_steps(tenant, run_id), await ops.run_waits(tenant, run_id)

    run, steps, waits = call("diagnosis", read)
    if as_json:
        echo_json(run)
        return
    for line in _show_lines(run, steps, waits):
        click.echo(line)


@runs.command("steps")
@click.argument("run_id")
@tenant_option
@json_option
def runs_steps(run_id: str, tenant: str, as_json: bool) -> None:
    """A run's step executions in start order (an action's input and output with --json)."""
    check_texts((run_id, "RUN_ID"), (tenant, "--tenant"))
    steps = call("database", lambda ops: ops.run_steps(tenant, run_id))
    if as_json:
        echo_json(steps)
        return
    if not steps:
        click.echo("no steps yet")
        return
    rows = [[s.seq, s.stepPath, s.type, s.stepId, s.name, s.status, s.attempts, s.itemIndex, instant(s.startedAt), duration(s.durationMs),
             f"{s.error.get('category')}: {s.error.get('message')}" if s.error else None] for s in steps]
    for line in table(["SEQ", "PATH", "TYPE", "STEP", "NAME", "STATUS", "ATTEMPTS", "ITEM", "STARTED", "DURATION", "ERROR"], rows, right=[0, 6, 7]):
        click.echo(line)


@runs.command("live")
@click.argument("run_id")
@tenant_option
@json_option
def runs_live(run_id: str, tenant: str, as_json: bool) -> None:
    """What the interpreter itself says (Temporal queries): current step, current wait, summary."""
    check_texts((run_id, "RUN_ID"), (tenant, "--tenant"))
    live = call("temporal", lambda ops: ops.run_live(tenant, run_id))
    if as_json:
        echo_json(live)
        return
    click.echo(f"current step: {cell(live.currentStep, 500)}")
    click.echo(f"current wait: {cell(live.currentWait, 500)}")
    for key, value in live.summary.items():
        click.echo(f"{cell(key)}: {cell(value, 500)}")


@runs.command("export")
@click.argument("run_id")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None, help="Write the document to this file instead of stdout.")
@tenant_option
@json_option
def runs_export(run_id: str, out: str | None, tenant: str, as_json: bool) -> None:
    """Everything about a run in one JSON document (run, steps, waits, tasks, invocations, events, children, definition), for a bug report."""
    check_texts((run_id, "RUN_ID"), (tenant, "--tenant"))
    document = call("diagnosis", lambda ops: ops.export_run(tenant, run_id))
    text = json.dumps(document, indent=2)
    if out is None:
        click.echo(text)
        return
    try:
        Path(out).write_text(text + "\n", encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"{out}: {err.strerror or err}") from None
    if as_json:
        echo_json({"runId": run_id, "file": out, "bytes": len(text) + 1})
    else:
        click.echo(f"exported run {run_id} to {out} ({len(document['steps'])} steps, {len(text) + 1} bytes)")


# ---------------------------------------------------------------------------------- actions


@runs.command("cancel")
@click.argument("run_ids", nargs=-1, metavar="[RUN_ID]...")
@click.option("--reason", default=None, help="Why (recorded in the run's history).")
@click.option("--filter", "by_filter", is_flag=True, help="Bulk: cancel the open root runs the filter options select (admin).")
@_filter_options
@click.option("--dry-run", is_flag=True, help="Bulk: only report what would be cancelled.")
@actor_option
@tenant_option
@json_option
def runs_cancel(run_ids: tuple[str, ...], reason: str | None, by_filter: bool, statuses: tuple[str, ...], workflow_id: str | None, since: str | None,
                until: str | None, stuck: bool, dry_run: bool, actor: str | None, tenant: str, as_json: bool) -> None:
    """Cancel a run (its children first; steps, waits, tasks end CANCELED), or several: by ids, or with --filter.

    A run whose Temporal execution was already closed outside the runtime is reconciled instead.
    """
    filtered = bool(statuses or workflow_id or since or until or stuck)
    if by_filter and run_ids:
        raise click.UsageError("give RUN_IDs or --filter, not both")
    if not by_filter and not run_ids:
        raise click.UsageError("give the RUN_ID to cancel, several, or --filter with filter options")
    if filtered and not by_filter:
        raise click.UsageError("--status, --workflow, --since, --until and --stuck select runs with --filter")
    check_texts(*((r, "RUN_ID") for r in run_ids), (reason, "--reason"), (tenant, "--tenant"))
    who = actor_of(actor)
    if len(run_ids) == 1 and not dry_run:
        request(CancelRequest, reason=reason)
        result = call("temporal", lambda ops: ops.cancel_run(tenant, run_ids[0], actor=who, reason=reason))
        if as_json:
            echo_json(result)
        elif result["status"] == "CANCEL_REQUESTED":
            click.echo(f"cancel requested for run {run_ids[0]}")
        else:
            click.echo(f"run {run_ids[0]}: its Temporal execution had already ended; reconciled as {result['status']}")
        return
    body = request(BulkCancelRequest, {"runIds": "RUN_ID"}, runIds=list(run_ids) if run_ids else None, dryRun=dry_run, reason=reason,
                   filter=_run_filter(statuses, workflow_id, since, until, stuck) if by_filter else None)
    outcome = call("temporal", lambda ops: ops.bulk_cancel(tenant, body, actor=who))
    if as_json:
        echo_json(outcome)
        return
    done = "would cancel" if outcome.dryRun else "canceled"
    click.echo(f"matched {outcome.matched}; {done} {len(outcome.canceled)}; skipped {len(outcome.skipped)}" + (" (dry run: nothing changed)" if outcome.dryRun else ""))
    rows = [[r, done] for r in outcome.canceled] + [[s["runId"], f"skipped: {s['reason']}"] for s in outcome.skipped]
    if rows:
        for line in table(["RUN", "RESULT"], rows):
            click.echo(line)


@runs.command("replay")
@click.argument("run_id")
@click.option("--payload", default=None, help="An edited payload (JSON, or @file.json), validated against the workflow's schema; default: the original input as launched.")
@click.option("--reason", default=None, help="Why (recorded in both runs' history).")
@click.option("--dry-run", is_flag=True, help="Only check the payload against the workflow's schema; launch nothing (exit 1 when invalid).")
@actor_option
@tenant_option
@json_option
def runs_replay(run_id: str, payload: str | None, reason: str | None, dry_run: bool, actor: str | None, tenant: str, as_json: bool) -> None:
    """Start a new run of the same workflow version from the run's original input (never a redacted copy) or an edited payload."""
    check_texts((run_id, "RUN_ID"), (reason, "--reason"), (tenant, "--tenant"))
    data = None
    if payload is not None:
        data = _parse_json_option(payload, "--payload")
        _check_json(data, "--payload", "payload", object_only=True)
    body = request(ReplayRequest, payload=data, reason=reason, dryRun=dry_run)
    if body.dryRun:
        checked = call("temporal", lambda ops: ops.check_replay_payload(tenant, run_id, body.payload))
        if as_json:
            echo_json(checked)
        elif checked.valid:
            click.echo(f"a replay of run {run_id} with this payload would be accepted (nothing launched)")
        else:
            for line in table(["PATH", "PROBLEM"], [[e.path, e.message] for e in checked.errors]):
                click.echo(line)
        if not checked.valid:
            raise SystemExit(1)
        return
    who = actor_of(actor)
    new = call("temporal", lambda ops: ops.replay_run(tenant, run_id, payload=body.payload, actor=who, reason=body.reason))
    if as_json:
        echo_json(new)
        return
    click.echo(f"replayed run {run_id} as run {new.runId} ({cell(new.workflowId)} v{new.workflowVersion}, {new.status})")


@runs.command("resume")
@click.argument("run_id")
@click.option("--reason", default=None, help="Why (recorded in the run's history).")
@actor_option
@tenant_option
@json_option
def runs_resume(run_id: str, reason: str | None, actor: str | None, tenant: str, as_json: bool) -> None:
    """Continue a FAILED run from the step that failed it, as the same run (completed steps are not run again)."""
    from runtime_core.operations import ResumeRequest

    check_texts((run_id, "RUN_ID"), (reason, "--reason"), (tenant, "--tenant"))
    body = request(ResumeRequest, reason=reason)
    who = actor_of(actor)
    run = call("temporal", lambda ops: ops.resume_run(tenant, run_id, actor=who, reason=body.reason))
    if as_json:
        echo_json(run)
        return
    click.echo(f"resumed run {run.runId} ({cell(run.workflowId)} v{run.workflowVersion}, {run.status})")


@runs.command("reconcile")
@click.argument("run_ids", nargs=-1, metavar="[RUN_ID]...")
@actor_option
@tenant_option
@json_option
def runs_reconcile(run_ids: tuple[str, ...], actor: str | None, tenant: str, as_json: bool) -> None:
    """Give open runs whose Temporal execution has ended or is gone (terminated, timed out, deleted) the end Temporal knows.

    Without RUN_IDs every open run of the tenant is checked (oldest first, at most 1,000).
    """
    check_texts(*((r, "RUN_ID") for r in run_ids), (tenant, "--tenant"))
    who = actor_of(actor)
    result = call("temporal", lambda ops: ops.reconcile(tenant, list(run_ids) or None, actor=who))
    if as_json:
        echo_json(result)
        return
    click.echo(f"checked {result.checked} open run(s); reconciled {len(result.reconciled)}")
    if result.reconciled:
        rows = [[r.get("runId"), r.get("status"), r.get("temporalStatus"), r.get("reason")] for r in result.reconciled]
        for line in table(["RUN", "STATUS", "TEMPORAL", "REASON"], rows):
            click.echo(line)
