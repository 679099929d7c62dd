"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

__all__ = ["Database", "normalize_url", "utcnow"]


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Pick the async driver for a database URL.

    ``sqlite:///file.db`` becomes ``sqlite+aiosqlite:///file.db`` and ``postgresql://…``
    becomes ``postgresql+asyncpg://…``; URLs naming a driver are kept.

    Raises:
        ValueError: The URL names a database other than SQLite or PostgreSQL.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the worker's writes and the CLI's reads proceed together; busy_timeout turns
    # short lock contention into waiting instead of 'database is locked'.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


#: Statements that never take SQLite's write lock.
_READS = ("SELECT", "PRAGMA", "SAVEPO", "RELEAS", "EXPLAI")


class SQLiteWriterGate:
    """An in-process FIFO queue in front of SQLite's single writer.

    SQLite lets one connection write at a time; the others retry in its busy handler, which
    sleeps 1, 2, 5 … up to 100 ms between tries. Under concurrent writers (many runs' activities,
    event ingress) that sleeping, not the writes, dominated latency (measured in the fan-out
    benchmark: most writer-thread samples sat in ``sqlite3InvokeBusyHandler``). The gate makes
    this process's writers queue on an asyncio lock instead: a connection takes it just before its
    first write statement of a transaction and gives it back when it is returned to the pool,
    after its commit or rollback. Reads never wait (WAL), and other processes still meet the
    busy timeout as before.
    """

    def __init__(self, timeout: float) -> None:
        """Create the gate; ``timeout`` bounds the wait, like SQLite's busy timeout."""
        self.timeout = timeout
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, sync_engine: Any) -> None:
        """Hook the engine: acquire before a transaction's first write, release at check-in."""
        event.listen(sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(sync_engine.pool, "checkin", self._checkin)
        event.listen(sync_engine.pool, "invalidate", self._invalidate)

    def _gate(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or (self._loop is not loop and not self._lock.locked()):
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def _before_execute(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        info = conn.info
        if info.get("wfr_gate") is not None or statement.lstrip()[:6].upper() in _READS:
            return
        gate = self._gate()
        try:
            await_only(asyncio.wait_for(gate.acquire(), self.timeout))
        except TimeoutError:
            raise sqlite3.OperationalError(f"database is locked: this process's other writers held it for {self.timeout:g} s") from None
        info["wfr_gate"] = gate

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        self._release(record)

    def _invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        self._release(record)

    @staticmethod
    def _release(record: Any) -> None:
        gate = record.info.pop("wfr_gate", None) if record is not None else None
        if gate is not None and gate.locked():
            gate.release()


class Database:
    """An async engine plus a session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        """Create the engine (no connection is made yet).

        Args:
            url: SQLite or PostgreSQL URL; the async driver is chosen automatically.
            echo: Log SQL statements.
        """
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql":
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self.writer_gate: SQLiteWriterGate | None = None
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self.writer_gate = SQLiteWriterGate(timeout=10.0)
            self.writer_gate.install(self.engine.sync_engine)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
