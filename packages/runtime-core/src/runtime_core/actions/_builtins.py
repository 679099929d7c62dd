"""Built-in, worker-safe actions (version 1)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from runtime_core.actions._registry import ActionContext, ActionFailure, ActionRegistry
from runtime_core.persistence import DataStoreEntry, utcnow

__all__ = ["register_builtins"]


def _require_object(data: Any, action: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ActionFailure(f"{action} expects an object input, got {type(data).__name__}", category="ValidationError")
    return data


def _require_key(data: dict[str, Any], action: str) -> str:
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise ActionFailure(f"{action}: 'key' must be a non-empty string", category="ValidationError")
    return key


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
    await asyncio.sleep(ms / 1000)
    return {"sleptMs": ms}


async def _entry(ctx: ActionContext, key: str) -> DataStoreEntry | None:
    row = (await ctx.session.execute(select(DataStoreEntry).where(DataStoreEntry.tenant == ctx.tenant, DataStoreEntry.key == key))).scalar_one_or_none()
    if row is not None and row.expires_at is not None and row.expires_at.replace(tzinfo=row.expires_at.tzinfo or utcnow().tzinfo) <= utcnow():
        return None
    return row


async def data_set(ctx: ActionContext, data: Any) -> Any:
    """Store ``value`` at ``key`` for this tenant, optionally expiring after ``ttlMs``."""
    data = _require_object(data, "data.set")
    key = _require_key(data, "data.set")
    ttl = data.get("ttlMs")
    if ttl is not None and (not isinstance(ttl, int) or ttl <= 0):
        raise ActionFailure("data.set: 'ttlMs' must be a positive integer", category="ValidationError")
    now = utcnow()
    expires = now + timedelta(milliseconds=ttl) if ttl else None
    row = (await ctx.session.execute(select(DataStoreEntry).where(DataStoreEntry.tenant == ctx.tenant, DataStoreEntry.key == key))).scalar_one_or_none()
    if row is None:
        ctx.session.add(DataStoreEntry(tenant=ctx.tenant, key=key, value=data.get("value"), expires_at=expires, updated_at=now))
    else:
        row.value, row.expires_at, row.updated_at = data.get("value"), expires, now
    return {"key": key, "value": data.get("value")}


async def data_get(ctx: ActionContext, data: Any) -> Any:
    """Read ``key``; ``default`` (or null) when missing or expired."""
    data = _require_object(data, "data.get")
    key = _require_key(data, "data.get")
    row = await _entry(ctx, key)
    if row is None:
        return {"key": key, "value": data.get("default"), "found": False}
    return {"key": key, "value": row.value, "found": True}


async def data_increment(ctx: ActionContext, data: Any) -> Any:
    """Add ``by`` (default 1) to the number at ``key``; a missing key counts from 0."""
    data = _require_object(data, "data.increment")
    key = _require_key(data, "data.increment")
    by = data.get("by", 1)
    if not isinstance(by, (int, float)) or isinstance(by, bool):
        raise ActionFailure("data.increment: 'by' must be a number", category="ValidationError")
    row = await _entry(ctx, key)
    now = utcnow()
    if row is None:
        stale = (await ctx.session.execute(select(DataStoreEntry).where(DataStoreEntry.tenant == ctx.tenant, DataStoreEntry.key == key))).scalar_one_or_none()
        if stale is not None:
            await ctx.session.delete(stale)
            await ctx.session.flush()
        ctx.session.add(DataStoreEntry(tenant=ctx.tenant, key=key, value=by, expires_at=None, updated_at=now))
        return {"key": key, "value": by}
    if not isinstance(row.value, (int, float)) or isinstance(row.value, bool):
        raise ActionFailure(f"data.increment: the value at {key!r} is not a number", category="ValidationError")
    row.value = row.value + by
    row.updated_at = now
    return {"key": key, "value": row.value}


async def data_delete(ctx: ActionContext, data: Any) -> Any:
    """Delete ``key``."""
    data = _require_object(data, "data.delete")
    key = _require_key(data, "data.delete")
    result = await ctx.session.execute(delete(DataStoreEntry).where(DataStoreEntry.tenant == ctx.tenant, DataStoreEntry.key == key))
    return {"key": key, "deleted": bool(getattr(result, "rowcount", 0))}


def register_builtins(registry: ActionRegistry) -> None:
    """Register the built-in actions (all version 1)."""
    for action_id, handler in (
        ("core.echo", echo),
        ("core.fail", fail),
        ("core.delay", delay),
        ("data.set", data_set),
        ("data.get", data_get),
        ("data.increment", data_increment),
        ("data.delete", data_delete),
    ):
        registry.register(action_id, 1, handler, description=(handler.__doc__ or "").strip())
