"""What the operations commands of ``wfr`` share: the operations object, the actor, refusals, JSON.

Every such command is a thin adapter: it checks its arguments (before anything connects), builds
the operation's request, calls one operation of :class:`runtime_core.operations.Operations` and
prints the result, as a table or (``--json``) as the operation's model. An
:class:`~runtime_core.operations.OperationError` becomes its ``errors`` (one per line, for invalid
input) and one ``Error:`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

import click
from pydantic import BaseModel, ValidationError

from runtime_bootstrap import cli as base
from runtime_bootstrap.settings import AppSettings
from runtime_core.operations import OperationError, Operations

__all__ = ["Instant", "actor_of", "actor_option", "call", "check_texts", "echo_json", "json_option", "refusal", "request", "tenant_option"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)

#: What a command needs: the database alone; the database and, when configured, Temporal for the
#: diagnosis of stuck runs; or the configured stack (Temporal required).
Needs = Literal["database", "diagnosis", "temporal"]


def tenant_option(fn: F) -> F:
    """``--tenant`` (default ``default``)."""
    return click.option("--tenant", default="default", show_default=True, help="Whose resources.")(fn)


def json_option(fn: F) -> F:
    """``--json``: print the operation's result as JSON."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (the operation's model, as the HTTP API answers).")(fn)


def actor_option(fn: F) -> F:
    """``--actor``: who is recorded (default ``cli:<OS user>``)."""
    return click.option("--actor", default=None, help="Who is recorded as doing this (default: cli:<your OS user>).")(fn)


def actor_of(actor: str | None) -> str:
    """The actor recorded: ``--actor``, or ``cli:<OS user>``."""
    if actor is not None:
        check_texts((actor, "--actor"))
        return actor
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no passwd entry (containers with an arbitrary uid)
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def check_texts(*pairs: tuple[str | None, str]) -> None:
    """Refuse empty or unstorable text arguments (``(value, name)``; ``None`` is skipped)."""
    for value, what in pairs:
        if value is not None:
            base._check_text(value, what)


class Instant(click.ParamType):
    """``--since``/``--until``: an RFC 3339 instant with an offset, or ``30m``, ``2h``, ``7d``, ``1w`` ago; given on as RFC 3339."""

    name = "instant"
    _relative: ClassVar[re.Pattern[str]] = re.compile(r"^(\d{1,6})([smhdw])$")
    _units: ClassVar[dict[str, str]] = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The instant as RFC 3339 UTC with milliseconds."""
        text = str(value).strip()
        found = self._relative.match(text)
        try:
            if found is not None:
                at = datetime.now(UTC) - timedelta(**{self._units[found.group(2)]: int(found.group(1))})
            else:
                at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if at.tzinfo is not None:
                return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        except (ValueError, OverflowError):
            pass
        self.fail(f"{text[:80]!r} is neither an RFC 3339 instant with an offset (2026-11-25T10:00:00Z) nor a time ago (30m, 2h, 7d, 1w)", param, ctx)


def refusal(err: OperationError) -> click.ClickException:
    """An operation's refusal: its ``errors`` on stderr, one per line; the ``Error:`` line to raise."""
    for problem in err.errors:
        click.echo(base._one_line(f"{problem.get('path') or '-'}: {problem.get('message') or problem.get('code') or 'invalid'}"), err=True)
    return click.ClickException(err.detail)


def request(model: type[M], names: dict[str, str] | None = None, **fields: Any) -> M:
    """Build an operation's request from options, before anything connects.

    What the request refuses (a reason too long …) is a usage error naming the option:
    ``names`` maps a field to the option that gave it (``reason`` is ``--reason`` by default).
    """
    try:
        return model(**fields)
    except ValidationError as err:
        names = names or {}
        problems = []
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            where = names.get(field) or ("--" + re.sub(r"(?<!^)([A-Z])", r"-\1", field).lower() if field else "input")
            problems.append(f"{where}: {e['msg']}")
        raise click.UsageError("; ".join(problems)) from None


def echo_json(value: Any) -> None:
    """Print a model (or a list of them, or plain JSON) as indented JSON."""
    click.echo(json.dumps(_plain(value), indent=2))


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def call(needs: Needs, use: Callable[[Operations], Awaitable[T]]) -> T:
    """Run ``use`` on operations bound to what the command needs; every expected failure is one line.

    ``database``: ``WFR_DATABASE_URL`` alone. ``diagnosis``: the database, and Temporal when
    ``WFR_TEMPORAL_ADDRESS`` is set (an unreachable Temporal only loses the diagnosis: a warning
    says so). ``temporal``: the configured stack, as ``wfr launch`` uses it.
    """
    settings = base._settings()
    if needs == "temporal":
        base._require_stack(settings)

    async def go() -> T:
        if needs == "temporal":
            async with base._stack(settings, with_worker=False) as stack:
                return await _use(Operations(stack.database, stack.client, registry=stack.registry, domain_task_queue=stack.domain_task_queue), use)
        warning: list[str] = []
        async with _database_operations(settings, diagnosis=needs == "diagnosis", warning=warning) as ops:
            result = await _use(ops, use)
        for line in warning:
            click.echo(f"warning: {line}", err=True)
        return result

    return base._run(go)


async def _use(ops: Operations, use: Callable[[Operations], Awaitable[T]]) -> T:
    try:
        return await use(ops)
    except OperationError as err:
        raise refusal(err) from None


@contextlib.asynccontextmanager
async def _database_operations(settings: AppSettings, *, diagnosis: bool, warning: list[str]) -> AsyncIterator[Operations]:
    """Operations on ``WFR_DATABASE_URL`` (and Temporal for the diagnosis, when configured and reachable)."""
    from sqlalchemy.exc import SQLAlchemyError
    from temporalio.service import RPCError

    database = base._open_database(settings.runtime.database_url, "WFR_DATABASE_URL")
    try:
        client = await _temporal_if_configured(settings, warning) if diagnosis else None
        yield Operations(database, client)
    except click.ClickException:
        raise
    except RPCError as err:
        raise click.ClickException(f"Temporal at {settings.runtime.temporal_address} (WFR_TEMPORAL_ADDRESS) answered {err.status.name}: {err.message}") from err
    except Exception as err:
        problem = await _schema_problem(database) if isinstance(err, SQLAlchemyError) else None
        problem = problem or base._database_problem(err, database.safe_url, "WFR_DATABASE_URL")
        await base._settle()
        if problem is None:
            raise
        raise click.ClickException(problem) from err
    finally:
        with contextlib.suppress(Exception):
            await database.dispose()


async def _temporal_if_configured(settings: AppSettings, warning: list[str]) -> Any:
    """A Temporal client when ``WFR_TEMPORAL_ADDRESS`` is set and answers; otherwise ``None`` (and why, in ``warning``)."""
    if not settings.external:
        return None
    from runtime_core.worker import connect_temporal

    try:
        return await asyncio.wait_for(connect_temporal(settings.runtime), 10)
    except (RuntimeError, TimeoutError) as err:
        reason = "it did not answer within 10 s" if isinstance(err, TimeoutError) else str(err.__cause__ or err)
        warning.append(f"shown without diagnosis: cannot reach Temporal at {settings.runtime.temporal_address} (WFR_TEMPORAL_ADDRESS): {base._one_line(reason)}")
        return None


async def _schema_problem(database: Any) -> str | None:
    """When the database's schema is not the one this ``wfr`` expects: what to do; else ``None``."""
    from runtime_core.persistence import current_revision, head_revision

    try:
        current = await current_revision(database)
    except Exception:
        return None
    head = head_revision()
    if current == head:
        return None
    at = f"is at schema revision {current}" if current else "has no runtime schema"
    return f"the database {database.safe_url} (WFR_DATABASE_URL) {at}, this wfr expects {head}: run `wfr db upgrade` (with the same runtime-core version)"
