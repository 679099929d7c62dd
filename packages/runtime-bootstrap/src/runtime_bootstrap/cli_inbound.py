"""``wfr tasks list|show|complete`` and ``wfr events list|show`` (``events send`` and ``tasks register`` are in :mod:`runtime_bootstrap.cli`)."""

from __future__ import annotations

import click

from runtime_bootstrap._cli_kit import actor_of, actor_option, call, check_texts, echo_json, json_option, request, tenant_option
from runtime_bootstrap._table import cell, instant, table
from runtime_bootstrap.cli import _check_json, _check_text, _parse_json_option, events, tasks
from runtime_core.operations import CompleteTaskRequest, EventView, OverrideTaskRequest, TaskDetail

__all__: list[str] = []

#: ``tasks list --status``: a task status, or every status.
TASK_STATUSES = ("PENDING", "COMPLETED", "CANCELED", "ALL")


# ------------------------------------------------------------------------------------ tasks


@tasks.command("list")
@click.option("--status", type=click.Choice(TASK_STATUSES, case_sensitive=False), default="PENDING", show_default=True, help="Tasks with this status (ALL: any).")
@click.option("--type", "task_type", default=None, help="Tasks of this task type.")
@click.option("--run", "run_id", default=None, help="Tasks of this run.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Tasks per page.")
@click.option("--cursor", default=None, help="Continue a list (the nextCursor a previous page printed).")
@tenant_option
@json_option
def tasks_list(status: str, task_type: str | None, run_id: str | None, limit: int, cursor: str | None, tenant: str, as_json: bool) -> None:
    """Human tasks, newest first (PENDING ones unless --status says otherwise)."""
    check_texts((task_type, "--type"), (run_id, "--run"), (cursor, "--cursor"), (tenant, "--tenant"))
    wanted = None if status.upper() == "ALL" else status.upper()
    page = call("database", lambda ops: ops.list_tasks(tenant, status=wanted, task_type=task_type, run_id=run_id, limit=limit, cursor=cursor))
    if as_json:
        echo_json(page)
        return
    if not page.items:
        click.echo("no tasks" + (" on this page" if cursor else ""))
    else:
        rows = [[t.taskId, t.taskType, t.title, t.status, t.runId, instant(t.createdAt), instant(t.completedAt)] for t in page.items]
        for line in table(["TASK", "TYPE", "TITLE", "STATUS", "RUN", "CREATED", "COMPLETED"], rows):
            click.echo(line)
    if page.nextCursor:
        click.echo(f"more: --cursor {page.nextCursor}")


def _task_lines(task: TaskDetail) -> list[str]:
    lines = [f"{cell(task.title, 200)}  ({cell(task.taskType)}, {task.status})",
             f"  task        {task.taskId}",
             f"  run         {task.runId}",
             f"  created     {instant(task.createdAt)}"]
    if task.description:
        lines.append(f"  description {cell(task.description, 500)}")
    lines.append(f"  context     {cell(task.contextData, 500)}")
    lines.append(f"  form schema {cell(task.formSchema, 500)}")
    if task.status != "PENDING":
        by = f" by {task.completedBy}" if task.completedBy else ""
        lines.append(f"  {task.status.lower():<11} {instant(task.completedAt)}{cell(by, 200) if by else ''}{' (admin override)' if task.adminOverride else ''}")
        lines.append(f"  response    {cell(task.response, 500)}")
    return lines


@tasks.command("show")
@click.argument("task_id")
@tenant_option
@json_option
def tasks_show(task_id: str, tenant: str, as_json: bool) -> None:
    """A task with its context, form schema and (once answered) response."""
    check_texts((task_id, "TASK_ID"), (tenant, "--tenant"))
    task = call("database", lambda ops: ops.get_task(tenant, task_id))
    if as_json:
        echo_json(task)
        return
    for line in _task_lines(task):
        click.echo(line)


@tasks.command("complete")
@click.argument("task_id")
@click.option("--response", required=True, help="JSON response, or @file.json.")
@click.option("--admin", "admin", default=None, metavar="ACTOR", help="Admin override as ACTOR: skip validation; needs --reason; both recorded.")
@click.option("--reason", default=None, help="Why the admin override (recorded).")
@actor_option
@tenant_option
@json_option
def tasks_complete(task_id: str, response: str, admin: str | None, reason: str | None, actor: str | None, tenant: str, as_json: bool) -> None:
    """Answer a task; the response is validated against its form schema first (every failing path is listed)."""
    if admin is not None and reason is None:
        raise click.UsageError("--admin needs --reason: an override is recorded with who did it and why")
    if admin is None and reason is not None:
        raise click.UsageError("--reason goes with --admin (an answer needs no reason)")
    if admin is not None and actor is not None:
        raise click.UsageError("--admin ACTOR names who overrides; leave out --actor")
    check_texts((task_id, "TASK_ID"), (admin, "--admin"), (reason, "--reason"), (tenant, "--tenant"))
    data = _parse_json_option(response, "--response")
    _check_json(data, "--response", "response")
    if admin is not None:
        override = request(OverrideTaskRequest, response=data, reason=reason)
        task = call("temporal", lambda ops: ops.override_task(tenant, task_id, override, actor=admin))
    else:
        answer = request(CompleteTaskRequest, response=data)
        who = actor_of(actor)
        task = call("temporal", lambda ops: ops.complete_task(tenant, task_id, answer, actor=who))
    if as_json:
        echo_json(task)
        return
    click.echo(f"task {task_id} completed" + (f" by admin override ({cell(admin)})" if admin is not None else ""))


# ----------------------------------------------------------------------------------- events


def _deliveries(event: EventView) -> str:
    if not event.deliveries:
        return "none" if event.dispatched else "not dispatched yet"
    counts: dict[str, int] = {}
    for delivery in event.deliveries:
        counts[delivery.status] = counts.get(delivery.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


@events.command("list")
@click.option("--name", "event_name", default=None, help="Events of this name.")
@click.option("--key", "correlation_key", default=None, help="Events with this correlation key.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Events per page.")
@click.option("--cursor", default=None, help="Continue a list (the nextCursor a previous page printed).")
@tenant_option
@json_option
def events_list(event_name: str | None, correlation_key: str | None, limit: int, cursor: str | None, tenant: str, as_json: bool) -> None:
    """Inbound events, newest first, with what their deliveries did."""
    check_texts((event_name, "--name"), (cursor, "--cursor"), (tenant, "--tenant"))
    if correlation_key is not None:
        _check_text(correlation_key, "--key", empty_ok=True)
    page = call("database", lambda ops: ops.list_events(tenant, event_name=event_name, correlation_key=correlation_key, limit=limit, cursor=cursor))
    if as_json:
        echo_json(page)
        return
    if not page.items:
        click.echo("no events" + (" on this page" if cursor else ""))
    else:
        rows = [[e.eventId, e.eventName, e.correlationKey, instant(e.receivedAt), e.source, _deliveries(e)] for e in page.items]
        for line in table(["EVENT", "NAME", "KEY", "RECEIVED", "SOURCE", "DELIVERIES"], rows):
            click.echo(line)
    if page.nextCursor:
        click.echo(f"more: --cursor {page.nextCursor}")


@events.command("show")
@click.argument("event_id")
@tenant_option
@json_option
def events_show(event_id: str, tenant: str, as_json: bool) -> None:
    """An event, its payload (redacted) and each delivery (to a waiting run, or a run it started)."""
    check_texts((event_id, "EVENT_ID"), (tenant, "--tenant"))
    event = call("database", lambda ops: ops.get_event(tenant, event_id))
    if as_json:
        echo_json(event)
        return
    click.echo(f"{cell(event.eventName)}  key {cell(event.correlationKey)}  received {instant(event.receivedAt)}  source {cell(event.source)}")
    click.echo(f"  event     {event.eventId}")
    click.echo(f"  payload   {cell(event.payload, 500)}")
    if not event.deliveries:
        click.echo("  no deliveries" + ("" if event.dispatched else " yet (not dispatched: is a workflow-worker running?)"))
        return
    rows = [[d.kind, d.runId, d.target, d.status, d.attempts, d.reason] for d in event.deliveries]
    for line in table(["KIND", "RUN", "TARGET", "STATUS", "ATTEMPTS", "REASON"], rows, indent="  ", right=[4]):
        click.echo(line)
