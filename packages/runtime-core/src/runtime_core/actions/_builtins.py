"""Built-in, worker-safe actions (version 1)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from runtime_core.actions._registry import ActionContext, ActionFailure, ActionRegistry
from runtime_core.persistence import DataStoreEntry, utcnow
from runtime_core.persistence._upsert import insert_for, table_of

__all__ = ["register_builtins"]

#: The data store's key column holds 500 characters.
_MAX_KEY = 500
#: core.delay sleeps inside one activity attempt, which has a 5-minute start-to-close timeout.
_MAX_DELAY_MS = 240_000


def _require_object(data: Any, action: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ActionFailure(f"{action} expects an object input, got {type(data).__name__}", category="ValidationError")
    return data


def _require_key(ctx: ActionContext, data: dict[str, Any], action: str) -> str:
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise ActionFailure(f"{action}: 'key' must be a non-empty string", category="ValidationError")
    if len(key) > _MAX_KEY:
        raise ActionFailure(f"{action}: 'key' is {len(key)} characters long; keys are at most {_MAX_KEY}", category="ValidationError")
    return str(ctx.without_secrets(key))  # a secret never becomes a stored key


async def echo(ctx: ActionContext, data: Any) -> Any:
    """Return the input unchanged."""
    return _require_object(data, "core.echo")


async def fail(ctx: ActionContext, data: Any) -> Any:
    """Raise the configured error while the attempt is below ``succeedOnAttempt``."""
    data = _require_object(data, "core.fail")
    succeed_on = data.get("succeedOnAttempt")
    if isinstance(succeed_on, int) and ctx.attempt >= succeed_on:
        return {"attempt": ctx.attempt}
    category = data.get("category", "ActionError")
    if category not in ("ActionError", "TransientError", "ValidationError"):
        raise ActionFailure(f"core.fail: category must be ActionError, TransientError or ValidationError, not {category!r}", category="ValidationError")
    raise ActionFailure(str(data.get("message", "core.fail failed as asked")), category=category, code=data.get("code"))


async def delay(ctx: ActionContext, data: Any) -> Any:
    """Sleep ``ms`` milliseconds inside the activity."""
    data = _require_object(data, "core.delay")
    ms = data.get("ms")
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        raise ActionFailure("core.delay: 'ms' must be a non-negative integer", category="ValidationError")
    if ms > _MAX_DELAY_MS:
        raise ActionFailure(f"core.delay: 'ms' is at most {_MAX_DELAY_MS} (one activity attempt); use a time.wait step for longer pauses", category="ValidationError")
    await asyncio.sleep(ms / 1000)
    return {"sleptMs": ms}


_DATA = table_of(DataStoreEntry)


def _expired(expires_at: datetime | None) -> bool:
    now = utcnow()
    return expires_at is not None and expires_at.replace(tzinfo=expires_at.tzinfo or now.tzinfo) <= now


async def data_set(ctx: ActionContext, data: Any) -> Any:
    """Store ``value`` at ``key`` for this tenant, optionally expiring after ``ttlMs``.

    One upsert: two runs setting the same new key at once never collide.
    """
    data = _require_object(data, "data.set")
    key = _require_key(ctx, data, "data.set")
    ttl = data.get("ttlMs")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
        raise ActionFailure("data.set: 'ttlMs' must be a positive integer", category="ValidationError")
    now = utcnow()
    stmt = insert_for(ctx.connection.dialect.name, _DATA).values(
        tenant=ctx.tenant, key=key, value=ctx.without_secrets(data.get("value")), expires_at=now + timedelta(milliseconds=ttl) if ttl else None, updated_at=now
    )
    new = stmt.excluded
    await ctx.connection.execute(
        stmt.on_conflict_do_update(index_elements=["tenant", "key"], set_={"value": new.value, "expires_at": new.expires_at, "updated_at": new.updated_at})
    )
    return {"key": key, "value": data.get("value")}


async def data_get(ctx: ActionContext, data: Any) -> Any:
    """Read ``key``; ``default`` (or null) when missing or expired."""
    data = _require_object(data, "data.get")
    key = _require_key(ctx, data, "data.get")
    row = (await ctx.connection.execute(select(_DATA.c.value, _DATA.c.expires_at).where(_DATA.c.tenant == ctx.tenant, _DATA.c.key == key))).first()
    if row is None or _expired(row.expires_at):
        return {"key": key, "value": data.get("default"), "found": False}
    return {"key": key, "value": row.value, "found": True}


async def data_increment(ctx: ActionContext, data: Any) -> Any:
    """Add ``by`` (default 1) to the number at ``key``; a missing or expired key counts from 0.

    Concurrent increments of one key never lose an update: the row is created if absent
    (``ON CONFLICT DO NOTHING``), then read under the write lock (``FOR UPDATE`` on PostgreSQL;
    SQLite's single writer already holds it) and updated in the same transaction.
    """
    data = _require_object(data, "data.increment")
    key = _require_key(ctx, data, "data.increment")
    by = data.get("by", 1)
    if not isinstance(by, (int, float)) or isinstance(by, bool):
        raise ActionFailure("data.increment: 'by' must be a number", category="ValidationError")
    conn, now = ctx.connection, utcnow()
    dialect = conn.dialect.name
    await conn.execute(
        insert_for(dialect, _DATA).values(tenant=ctx.tenant, key=key, value=0, expires_at=None, updated_at=now).on_conflict_do_nothing(index_elements=["tenant", "key"])
    )
    query = select(_DATA.c.value, _DATA.c.expires_at).where(_DATA.c.tenant == ctx.tenant, _DATA.c.key == key)
    if dialect == "postgresql":
        query = query.with_for_update()
    current, expires_at = (await conn.execute(query)).one()
    if _expired(expires_at):
        current, expires_at = 0, None
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        raise ActionFailure(f"data.increment: the value at {key!r} is not a number", category="ValidationError")
    value = current + by
    await conn.execute(update(_DATA).where(_DATA.c.tenant == ctx.tenant, _DATA.c.key == key).values(value=value, expires_at=expires_at, updated_at=now))
    return {"key": key, "value": value}


async def data_delete(ctx: ActionContext, data: Any) -> Any:
    """Delete ``key``."""
    data = _require_object(data, "data.delete")
    key = _require_key(ctx, data, "data.delete")
    result = await ctx.connection.execute(delete(_DATA).where(_DATA.c.tenant == ctx.tenant, _DATA.c.key == key))
    return {"key": key, "deleted": bool(result.rowcount)}


def register_builtins(registry: ActionRegistry) -> None:
    """Register the built-in actions (all version 1)."""
    for action_id, handler, uses_database, short in (
        ("core.echo", echo, False, True),
        ("core.fail", fail, False, True),
        ("core.delay", delay, False, False),  # sleeps: a regular activity that heartbeats
        ("data.set", data_set, True, True),
        ("data.get", data_get, True, True),
        ("data.increment", data_increment, True, True),
        ("data.delete", data_delete, True, True),
    ):
        registry.register(action_id, 1, handler, description=(handler.__doc__ or "").strip(), uses_database=uses_database, short=short)
