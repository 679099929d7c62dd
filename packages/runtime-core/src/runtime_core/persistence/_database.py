"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

__all__ = ["Database", "Statement", "normalize_url", "utcnow"]

#: One statement of a write: a SQLAlchemy Core statement and its parameters (a dict, or a list
#: of dicts for executemany).
Statement = tuple[Any, Any]
_T = TypeVar("_T")


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

    async def acquire(self) -> asyncio.Lock:
        """Wait for the gate (at most ``timeout``) and return the lock to :meth:`release` later.

        Raises:
            sqlite3.OperationalError: This process's other writers held it for ``timeout``.
        """
        gate = self._gate()
        try:
            await asyncio.wait_for(gate.acquire(), self.timeout)
        except TimeoutError:
            raise sqlite3.OperationalError(f"database is locked: this process's other writers held it for {self.timeout:g} s") from None
        return gate

    def _gate(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or (self._loop is not loop and not self._lock.locked()):
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def _before_execute(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        info = conn.info
        if info.get("wfr_gate") is not None or statement.lstrip()[:6].upper() in _READS:
            return
        info["wfr_gate"] = await_only(self.acquire())

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        self._release(record)

    def _invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        self._release(record)

    @staticmethod
    def _release(record: Any) -> None:
        gate = record.info.pop("wfr_gate", None) if record is not None else None
        if gate is not None and gate.locked():
            gate.release()


class DirectSQLite:
    """The hot paths' way into a SQLite file: one thread hand-off per transaction.

    aiosqlite hands every statement, cursor and commit to its connection's thread and back, and
    SQLAlchemy's async layer switches greenlets around each of them: measured, an action's
    ledger lookup and its write cost 1.4 ms of this process's (GIL-bound) time, most of it in
    those hand-offs. Here a whole transaction is one function run on a plain ``sqlite3``
    connection in a worker thread (0.3 ms for the same statements; see docs/performance.md).
    Reads have their own thread, so a write waiting on another process's lock never holds up a
    read. Writes go through the process's :class:`SQLiteWriterGate` first, like every other writer.
    """

    def __init__(self, url: str, gate: SQLiteWriterGate) -> None:
        """Create the engine for ``url`` (a file database; no connection is made yet)."""
        sync_url = make_url(url).set(drivername="sqlite")
        self.engine: Engine = create_engine(sync_url, connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.gate = gate
        self._threads: dict[str, ThreadPoolExecutor] = {}

    def _thread(self, kind: str) -> ThreadPoolExecutor:
        executor = self._threads.get(kind)
        if executor is None:
            executor = self._threads[kind] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"wfr-sqlite-{kind}")
        return executor

    async def read(self, fn: Callable[[Connection], _T]) -> _T:
        """``fn(connection)`` in the read thread, outside any write transaction."""
        return await asyncio.get_running_loop().run_in_executor(self._thread("read"), self._read, fn)

    async def write(self, fn: Callable[[Connection], _T]) -> _T:
        """``fn(connection)`` in one transaction in the write thread, holding the writer gate."""
        gate = await self.gate.acquire()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread("write"), self._write, fn)
        finally:
            gate.release()

    def _read(self, fn: Callable[[Connection], _T]) -> _T:
        with self.engine.connect() as conn:
            return fn(conn)

    def _write(self, fn: Callable[[Connection], _T]) -> _T:
        with self.engine.begin() as conn:
            return fn(conn)

    def dispose(self) -> None:
        """Stop the threads and close the connections (both come back on the next use)."""
        threads, self._threads = self._threads, {}
        for executor in threads.values():
            executor.shutdown(wait=True)
        self.engine.dispose()


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
        database = make_url(self.url).database
        self.direct: DirectSQLite | None = None
        if self.writer_gate is not None and database and database != ":memory:" and not database.startswith("file:"):
            self.direct = DirectSQLite(self.url, self.writer_gate)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    async def first(self, statement: Any, parameters: dict[str, Any]) -> Any:
        """The first row of a read statement, or ``None``."""
        if self.direct is not None:
            return await self.direct.read(lambda conn: conn.execute(statement, parameters).first())
        async with self.engine.connect() as conn:
            return (await conn.execute(statement, parameters)).first()

    async def write(self, statements: Sequence[Statement]) -> None:
        """Execute ``statements`` in order, in one transaction."""
        if not statements:
            return
        if self.direct is not None:
            await self.direct.write(lambda conn: _execute_all(conn, statements))
            return
        async with self.engine.begin() as conn:
            for statement, parameters in statements:
                await conn.execute(statement, parameters)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.direct is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.direct.dispose)


def _execute_all(conn: Connection, statements: Sequence[Statement]) -> None:
    for statement, parameters in statements:
        conn.execute(statement, parameters)
