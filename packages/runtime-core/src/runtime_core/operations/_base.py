"""What every operation shares: the database, the Temporal client, formatting and look-ups."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from temporalio.client import Client

from runtime_core.actions import ActionRegistry
from runtime_core.contract import DOMAIN_TASK_QUEUE
from runtime_core.expressions import format_instant
from runtime_core.launcher import Launcher
from runtime_core.operations._errors import Invalid, NotFound
from runtime_core.operations._redaction import Redactor
from runtime_core.persistence import Database, RedactionRule, RunAction, RunRow, utcnow

__all__ = ["OperationsBase", "decode_cursor", "encode_cursor", "iso", "parse_time"]

#: Statuses of a run that has ended.
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})


class _TenantOwned(Protocol):
    tenant: str


_Row = TypeVar("_Row", bound=_TenantOwned)


def iso(value: datetime | None) -> str | None:
    """An instant as RFC 3339 UTC with milliseconds (SQLite hands back naive UTC datetimes)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return format_instant(value)


def parse_time(value: str, field: str) -> datetime:
    """An RFC 3339 instant from a request.

    Raises:
        Invalid: Not an instant with an offset (or one outside the calendar once in UTC).
    """
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError
        return parsed.astimezone(UTC)
    except (ValueError, AttributeError, TypeError, OverflowError):
        raise Invalid(f"{field} must be an RFC 3339 instant with an offset, such as 2026-11-25T10:00:00Z",
                      errors=[{"path": field, "code": "INVALID_INSTANT", "message": "not an RFC 3339 instant with an offset"}]) from None


#: Largest value of the database's 64-bit and 32-bit integer columns.
MAX_BIGINT = 2**63 - 1
MAX_INT32 = 2**31 - 1


def storable(value: Any) -> bool:
    """Whether a string from a request can be compared with a column (no NUL, valid Unicode)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_param(value: Any, field: str, *, max_length: int = 500) -> str:
    """A string filter or field from a request.

    Raises:
        Invalid: Not a string the database can compare (NUL, lone surrogate) or too long.
    """
    if not storable(value) or len(value) > max_length:
        raise Invalid(f"{field} must be text of at most {max_length} characters without NUL", errors=[{"path": field, "code": "INVALID_TEXT", "message": "unusable text"}])
    return str(value)


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(json.dumps(parts, default=str, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The parts of a cursor made by :func:`encode_cursor`.

    Raises:
        Invalid: Not a cursor this API handed out.
    """
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or len(parts) != arity:
            raise ValueError
        for part in parts:  # a time and an id: text without NUL, or an integer that fits a column
            if not (storable(part) and len(part) < 300) and not (type(part) is int and 0 <= part <= MAX_BIGINT):
                raise ValueError
        return parts
    except (ValueError, TypeError, UnicodeDecodeError):
        raise Invalid("cursor is not one this API handed out; start again without it", errors=[{"path": "cursor", "code": "INVALID_CURSOR", "message": "unknown cursor"}]) from None


def check_limit(limit: int) -> int:
    """A page size within 1–200.

    Raises:
        Invalid: Out of range.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
        raise Invalid("limit must be between 1 and 200", errors=[{"path": "limit", "code": "OUT_OF_RANGE", "message": "between 1 and 200"}])
    return limit


class OperationsBase:
    """Dependencies of the operations, injected once: the database, Temporal, the action registry."""

    def __init__(
        self,
        database: Database,
        client: Client | None,
        *,
        registry: ActionRegistry | None = None,
        stuck_after_seconds: float = 60.0,
        diagnosis_cache_seconds: float = 10.0,
        backlog_threshold: int = 500,
        domain_task_queue: str = DOMAIN_TASK_QUEUE,
    ) -> None:
        """Bind the operations to a database and (for anything that touches a run) Temporal.

        Args:
            database: The runtime database.
            client: Temporal client of the authored namespace (``None``: database-only use,
                such as token management).
            registry: Registered actions, for publishing checks (built-ins and entry points by default).
            stuck_after_seconds: A RUNNING run with no step progress for longer is diagnosed.
            diagnosis_cache_seconds: How long what Temporal said is reused.
            backlog_threshold: Queued workflow tasks from which a backlog is reported.
            domain_task_queue: The domain queue the schedules' fire workflow runs on (``WFR_DOMAIN_TASK_QUEUE``).
        """
        from runtime_core.operations._diagnosis import Diagnoser

        self.database = database
        self._client = client
        self._registry = registry
        self.domain_task_queue = domain_task_queue
        self.diagnoser = Diagnoser(self, stuck_after_seconds=stuck_after_seconds, cache_seconds=diagnosis_cache_seconds, backlog_threshold=backlog_threshold)

    @property
    def client(self) -> Client:
        """The Temporal client.

        Raises:
            RuntimeError: The operations were built without one.
        """
        if self._client is None:
            raise RuntimeError("this operation needs Temporal: build Operations with a client")
        return self._client

    @property
    def registry(self) -> ActionRegistry:
        """The action registry used for publishing checks."""
        if self._registry is None:
            self._registry = ActionRegistry.default()
        return self._registry

    @property
    def launcher(self) -> Launcher:
        """A launcher on these dependencies."""
        return Launcher(self.client, self.database, registry=self.registry)

    async def run_row(self, tenant: str, run_id: str) -> RunRow:
        """The run row of ``tenant``.

        Raises:
            NotFound: No such run, or another tenant's.
        """
        return await self.tenant_row(RunRow, "run", tenant, run_id)

    async def tenant_row(self, model: type[_Row], what: str, tenant: str, key: str) -> _Row:
        """The row of ``model`` with primary key ``key`` if it belongs to ``tenant``.

        Another tenant's row is reported exactly like a missing one.

        Raises:
            NotFound: No such row, or another tenant's (the message names ``what``).
        """
        if not storable(key) or not key or len(key) > 64:
            raise NotFound(f"{what} {str(key)[:80]!r} not found")
        async with self.database.sessions() as session:
            row = await session.get(model, key)
        if row is None or row.tenant != tenant:
            raise NotFound(f"{what} {key} not found")
        return row

    async def redactor(self, tenant: str) -> Redactor:
        """The tenant's redaction rules, compiled."""
        async with self.database.sessions() as session:
            rules = (await session.execute(select(RedactionRule.kind, RedactionRule.pattern).where(RedactionRule.tenant == tenant))).all()
        return Redactor((r.kind, r.pattern) for r in rules)

    async def record(self, tenant: str, run_id: str, action: str, actor: str | None, reason: str | None, detail: dict[str, Any] | None = None) -> None:
        """Add an operator action to a run's history."""
        async with self.database.sessions.begin() as session:
            session.add(RunAction(tenant=tenant, run_id=run_id, action=action, actor=actor, reason=reason, detail=detail, at=utcnow()))
