"""``wfr schedules list|show|pause|unpause|trigger``: the Temporal Schedules of `schedule` and `recurring` triggers."""

from __future__ import annotations

import click

from runtime_bootstrap._cli_kit import actor_of, actor_option, call, check_texts, echo_json, json_option, request, tenant_option
from runtime_bootstrap._table import cell, instant, table
from runtime_bootstrap.cli import wfr
from runtime_core.operations import ScheduleNoteRequest, ScheduleView

__all__ = ["schedules"]


@wfr.group()
def schedules() -> None:
    """The schedules of `schedule` and `recurring` triggers (publishing creates, updates and deletes them)."""


def _spec(view: ScheduleView) -> str:
    trigger = view.trigger or {}
    if trigger.get("type") == "recurring":
        return f"{trigger.get('cron')} ({trigger.get('timezone')})"
    if trigger.get("type") == "schedule":
        return f"once at {trigger.get('runAt')}"
    return "-"


@schedules.command("list")
@click.option("--workflow", "workflow_id", default=None, help="Only this workflow's schedules.")
@tenant_option
@json_option
def schedules_list(workflow_id: str | None, tenant: str, as_json: bool) -> None:
    """The tenant's trigger schedules: spec, state, next fire."""
    check_texts((tenant, "--tenant"), (workflow_id, "--workflow"))
    found = call("temporal", lambda ops: ops.list_schedules(tenant, workflow_id=workflow_id))
    if as_json:
        echo_json({"items": found, "nextCursor": None})
        return
    if not found:
        click.echo("no schedules (publish a workflow with a `schedule` or `recurring` trigger)")
        return
    rows = [[v.scheduleId, v.workflowId, _spec(v), "paused" if v.paused else "active", instant(v.nextFires[0]) if v.nextFires else "-", v.fires]
            for v in found]
    for line in table(["SCHEDULE", "WORKFLOW", "WHEN", "STATE", "NEXT FIRE", "FIRES"], rows, right=[5]):
        click.echo(line)


def _show(view: ScheduleView, as_json: bool) -> None:
    if as_json:
        echo_json(view)
        return
    click.echo(f"schedule     {view.scheduleId}")
    click.echo(f"workflow     {cell(view.workflowId)}")
    click.echo(f"when         {cell(_spec(view))}")
    click.echo(f"state        {'paused' if view.paused else 'active'}" + (f" ({cell(view.note)})" if view.note else ""))
    click.echo(f"next fires   {', '.join(instant(t) for t in view.nextFires[:3]) or '-'}")
    click.echo(f"fires        {view.fires} (missed catch-up window {view.missedCatchupWindow}, skipped overlap {view.skippedOverlap})")
    for fire in view.recentFires[-5:]:
        click.echo(f"  fired      {instant(fire.scheduledAt)} (started {instant(fire.startedAt)})")


@schedules.command("show")
@click.argument("schedule_id")
@tenant_option
@json_option
def schedules_show(schedule_id: str, tenant: str, as_json: bool) -> None:
    """One schedule: its spec, state, next and recent fires."""
    check_texts((schedule_id, "SCHEDULE_ID"), (tenant, "--tenant"))
    _show(call("temporal", lambda ops: ops.get_schedule(tenant, schedule_id)), as_json)


@schedules.command("pause")
@click.argument("schedule_id")
@click.option("--reason", default=None, help="Why (kept as the schedule's note).")
@actor_option
@tenant_option
@json_option
def schedules_pause(schedule_id: str, reason: str | None, actor: str | None, tenant: str, as_json: bool) -> None:
    """Stop a schedule firing until it is unpaused."""
    check_texts((schedule_id, "SCHEDULE_ID"), (reason, "--reason"), (tenant, "--tenant"))
    body = request(ScheduleNoteRequest, reason=reason)
    who = actor_of(actor)
    _show(call("temporal", lambda ops: ops.pause_schedule(tenant, schedule_id, actor=who, reason=body.reason)), as_json)


@schedules.command("unpause")
@click.argument("schedule_id")
@click.option("--reason", default=None, help="Why (kept as the schedule's note).")
@actor_option
@tenant_option
@json_option
def schedules_unpause(schedule_id: str, reason: str | None, actor: str | None, tenant: str, as_json: bool) -> None:
    """Let a paused schedule fire again (fires missed while paused are not made up)."""
    check_texts((schedule_id, "SCHEDULE_ID"), (reason, "--reason"), (tenant, "--tenant"))
    body = request(ScheduleNoteRequest, reason=reason)
    who = actor_of(actor)
    _show(call("temporal", lambda ops: ops.unpause_schedule(tenant, schedule_id, actor=who, reason=body.reason)), as_json)


@schedules.command("trigger")
@click.argument("schedule_id")
@tenant_option
@json_option
def schedules_trigger(schedule_id: str, tenant: str, as_json: bool) -> None:
    """Fire a schedule once now: it launches one run, recorded as triggered by the schedule."""
    check_texts((schedule_id, "SCHEDULE_ID"), (tenant, "--tenant"))
    _show(call("temporal", lambda ops: ops.trigger_schedule(tenant, schedule_id)), as_json)
