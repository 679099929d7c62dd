"""Dialect upserts: ``INSERT … ON CONFLICT`` on both SQLite and PostgreSQL.

The read model is written by activities that Temporal may retry and by concurrent runs, so its
writes are single statements that either insert or update, instead of read-then-write pairs that
race (two writers both see "absent" and one fails on the unique constraint).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["dialect_of", "greatest", "insert_for", "table_of"]


def dialect_of(target: AsyncSession | AsyncConnection) -> str:
    """The backend name (``sqlite`` or ``postgresql``) of a session's bind or a connection."""
    if isinstance(target, AsyncConnection):
        return target.dialect.name
    return target.get_bind().dialect.name


def table_of(model: type[Any]) -> Table:
    """The Core table of a mapped class, for statements built once and run with parameters."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_for(dialect: str, table: Table) -> Any:
    """An ``INSERT`` construct that supports ``on_conflict_do_update`` / ``on_conflict_do_nothing``.

    Raises:
        ValueError: ``dialect`` is neither SQLite nor PostgreSQL.
    """
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no upsert for dialect {dialect!r}")


def greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    """The larger of two values: ``GREATEST`` on PostgreSQL, two-argument ``MAX`` on SQLite."""
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)
