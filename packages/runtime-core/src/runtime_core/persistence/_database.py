"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

__all__ = ["Database", "Plan", "Statement", "execute_statements", "ignore_outcomes", "normalize_url", "utcnow"]

_T = TypeVar("_T")

#: One statement of a write: a SQLAlchemy Core statement and its parameters (a dict, or a list
#: of dicts for executemany).
Statement = tuple[Any, Any]
#: A transaction written once for both drivers: a generator that yields statements and is sent
#: each one's outcome (a ``SELECT``'s first row or ``None``; the rows another statement changed)
#: and returns the transaction's result. An exception it raises rolls the transaction back.
Plan = Generator[Statement, Any, _T]


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


class _RawStatement:
    """A Core statement compiled once for the ``sqlite3`` module: its SQL, the order of its
    parameters, and SQLAlchemy's own bind and result processors for each (JSON, timestamps,
    booleans are stored exactly as the async path stores them)."""

    __slots__ = ("literals", "names", "processors", "results", "row_type", "sql")

    def __init__(self, statement: Any, keys: list[str], dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.sql: str = compiled.string
        self.names: list[str] = list(compiled.positiontup or [])
        self.processors = [compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names]
        #: values written into the statement itself (``column == "x"``), used when not passed
        self.literals = {name: compiled.binds[name].effective_value for name in self.names if name not in keys}
        columns = list(getattr(statement, "selected_columns", ()))
        self.results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        #: rows are named tuples (``row.column`` and ``row[0]``, as SQLAlchemy's rows)
        self.row_type = collections.namedtuple("Row", [str(column.key) for column in columns], rename=True)  # type: ignore[misc]

    def bind(self, parameters: dict[str, Any]) -> tuple[Any, ...]:
        """The positional parameters of one execution."""
        values = (parameters[name] if name in parameters else self.literals[name] for name in self.names)
        return tuple(value if process is None else process(value) for value, process in zip(values, self.processors, strict=True))

    def row(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        """A result row as SQLAlchemy would give it."""
        return self.row_type(*(value if process is None else process(value) for value, process in zip(raw, self.results, strict=True)))


class DirectSQLite:
    """The hot paths' way into a SQLite file: one thread hand-off per transaction, no per-statement overhead.

    aiosqlite hands every statement, cursor and commit to its connection's thread and back, and
    SQLAlchemy's async layer switches greenlets around each of them: measured, an action's
    ledger lookup and its write cost 1.4 ms of this process's (GIL-bound) time, most of it in
    those hand-offs. Here a whole transaction is one function run in a worker thread on that
    thread's own ``sqlite3`` connection, with each Core statement compiled once (SQLAlchemy's
    SQL and its type processors, so rows are stored exactly as the async path stores them;
    see docs/performance.md). Reads have their own thread, so a write waiting on another
    process's lock never holds up a read. Writes go through the process's
    :class:`SQLiteWriterGate` first, like every other writer, and take SQLite's write lock at
    ``BEGIN IMMEDIATE``. Errors are raised as SQLAlchemy's (``IntegrityError``,
    ``OperationalError`` …) without parameters, like the async path's.
    """

    def __init__(self, url: str, gate: SQLiteWriterGate, busy_timeout: float = 10.0) -> None:
        """Prepare for the file of ``url`` (no connection is made yet); ``busy_timeout``: how
        long a statement waits for another process's lock before ``database is locked``."""
        parsed = make_url(url)
        self.busy_timeout = busy_timeout
        self.path = str(parsed.database)
        self.dialect = create_engine(parsed.set(drivername="sqlite")).dialect
        self.gate = gate
        self._threads: dict[str, ThreadPoolExecutor] = {}
        self._compiled: dict[tuple[Any, tuple[str, ...]], _RawStatement] = {}
        self._local = threading.local()

    def _thread(self, kind: str) -> ThreadPoolExecutor:
        executor = self._threads.get(kind)
        if executor is None:
            executor = self._threads[kind] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"wfr-sqlite-{kind}")
        return executor

    async def first(self, statement: Any, parameters: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a read statement, or ``None`` (in the read thread)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread("read"), self._first, statement, parameters)

    async def transaction(self, plan: Callable[[], Plan[_T]]) -> _T:
        """Drive ``plan()`` in one transaction in the write thread, holding the writer gate."""
        try:
            gate = await self.gate.acquire()
        except sqlite3.Error as err:  # this process's other writers held it too long
            raise _wrapped("BEGIN IMMEDIATE", err) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread("write"), self._transaction, plan)
        finally:
            gate.release()

    def _statement(self, statement: Any, parameters: dict[str, Any]) -> _RawStatement:
        key = (statement, tuple(parameters))
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= 512:  # the hot paths' statements are built once; anything else must not pile up
                self._compiled.clear()
            compiled = self._compiled[key] = _RawStatement(statement, list(parameters), self.dialect)
        return compiled

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # autocommit mode: this class issues BEGIN and COMMIT itself
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            try:
                _sqlite_pragmas(conn, None)
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _first(self, statement: Any, parameters: dict[str, Any]) -> tuple[Any, ...] | None:
        compiled = self._statement(statement, parameters)
        try:
            raw = self._connection().execute(compiled.sql, compiled.bind(parameters)).fetchone()
        except sqlite3.Error as err:
            if not _keeps_connection(err):
                self._drop_connection()
            raise _wrapped(compiled.sql, err) from None
        return None if raw is None else compiled.row(raw)

    def _transaction(self, plan: Callable[[], Plan[_T]]) -> _T:
        sql = "BEGIN IMMEDIATE"
        try:
            conn = self._connection()
        except sqlite3.Error as err:
            raise _wrapped(sql, err) from None
        try:
            conn.execute(sql)
            steps = _Steps(plan)
            outcome: Any = None
            while (step := steps.next(outcome)) is not None:
                statement, parameters = step
                if isinstance(parameters, list):
                    compiled = self._statement(statement, parameters[0])
                    sql = compiled.sql
                    outcome = conn.executemany(sql, [compiled.bind(p) for p in parameters]).rowcount
                else:
                    compiled = self._statement(statement, parameters)
                    sql = compiled.sql
                    cursor = conn.execute(sql, compiled.bind(parameters))
                    if _is_select(statement):
                        raw = cursor.fetchone()
                        outcome = None if raw is None else compiled.row(raw)
                    else:
                        outcome = cursor.rowcount
            sql = "COMMIT"
            conn.execute(sql)
            return steps.result
        except BaseException as err:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                self._drop_connection()
            if isinstance(err, sqlite3.Error):
                if not _keeps_connection(err):
                    self._drop_connection()
                raise _wrapped(sql, err) from None
            raise

    def dispose(self) -> None:
        """Close the connections and stop the threads (both come back on the next use)."""
        threads, self._threads = self._threads, {}
        for executor in threads.values():
            with contextlib.suppress(RuntimeError):
                executor.submit(self._drop_connection).result()
            executor.shutdown(wait=True)


class _Steps(Generic[_T]):
    """Walks a plan for a driver: :meth:`next` gives the next statement to run (an executemany of
    no rows is answered 0 here), ``None`` once the plan has returned its :attr:`result`."""

    def __init__(self, plan: Callable[[], Plan[_T]]) -> None:
        self._plan = plan()
        self.result: _T

    def next(self, outcome: Any) -> Statement | None:
        """Send ``outcome`` (the previous statement's) and get the next statement."""
        try:
            step = self._plan.send(outcome)
            while isinstance(step[1], list) and not step[1]:
                step = self._plan.send(0)
        except StopIteration as stop:
            self.result = stop.value
            return None
        return step


#: SQLite's result codes that leave a connection usable: busy, locked, a constraint.
_USABLE_AFTER = (5, 6, 19)


def _keeps_connection(err: sqlite3.Error) -> bool:
    """Whether the connection stays usable after ``err`` (another process's lock, a duplicate key)."""
    return isinstance(err, sqlite3.IntegrityError) or (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF in _USABLE_AFTER


def _is_select(statement: Any) -> bool:
    return bool(getattr(statement, "is_select", False))


def ignore_outcomes(statements: Sequence[Statement]) -> Plan[None]:
    """Statements for a plan's ``yield from`` when their outcomes do not matter.

    A loop, not ``yield from statements``: a list's iterator cannot be sent the outcomes.
    """
    for statement in statements:  # noqa: UP028
        yield statement


async def execute_statements(conn: AsyncConnection | AsyncSession, statements: Sequence[Statement]) -> None:
    """Execute ``statements`` in order on a connection or session whose transaction the caller holds."""
    for statement, parameters in statements:
        await conn.execute(statement, parameters)


def _counts(statements: Sequence[Statement]) -> Plan[list[int]]:
    """The plan of :meth:`Database.write`: each statement, collecting the rows it changed."""
    counts: list[int] = []
    for statement in statements:
        counts.append((yield statement))
    return counts


def _wrapped(sql: str, err: sqlite3.Error) -> sa_exc.DBAPIError:
    """SQLAlchemy's exception for a ``sqlite3`` error (``IntegrityError``, ``OperationalError`` …), parameters hidden."""
    return cast(sa_exc.DBAPIError, sa_exc.DBAPIError.instance(sql, None, err, sqlite3.Error, hide_parameters=True))


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
            return await self.direct.first(statement, parameters)
        async with self.engine.connect() as conn:
            return (await conn.execute(statement, parameters)).first()

    async def write(self, statements: Sequence[Statement]) -> list[int]:
        """Execute ``statements`` in order, in one transaction; the rows each one changed."""
        if not statements:
            return []
        return await self.transaction(lambda: _counts(statements))

    async def transaction(self, plan: Callable[[], Plan[_T]]) -> _T:
        """Run ``plan()`` (see :data:`Plan`) in one transaction and return its result.

        On a SQLite file the whole plan runs in one thread hand-off (:class:`DirectSQLite`);
        elsewhere each statement runs on an async connection. The plan is written once for both.
        """
        if self.direct is not None:
            return await self.direct.transaction(plan)
        async with self.engine.begin() as conn:
            steps = _Steps(plan)
            outcome: Any = None
            while (step := steps.next(outcome)) is not None:
                result = await conn.execute(*step)
                outcome = result.first() if _is_select(step[0]) else result.rowcount
            return steps.result

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.direct is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.direct.dispose)

