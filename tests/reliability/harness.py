"""Real processes as an operator deploys them, the faults to inject into them, and the checks every test runs.

- :class:`TemporalServer`: a Temporal dev server on a fixed port and a persistent database file,
  which a test may SIGKILL (or SIGTERM) and restart with timers, events and actions in flight;
- :class:`WorkerProcess`: a ``workflow-worker`` console-script process, configured by ``WFR_*``
  variables like a deployment, which a test may SIGKILL and restart (several at once);
- :class:`PostgresCluster`: a private PostgreSQL cluster (initdb into a temporary directory, a free
  port) that a test may stop (``pg_ctl stop -m immediate``) and start again;
- :class:`SqliteLockHolder`: another process holding ``BEGIN EXCLUSIVE`` on a SQLite file;
- :func:`assert_read_model_matches_temporal` and the counters: what every test asserts.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from runtime_bootstrap._devserver import DevServer, free_port
from runtime_core.contract import workflow_id_for_run
from runtime_core.launcher import LaunchedRun, Launcher
from runtime_core.persistence import ActionInvocation, Database, DataStoreEntry, RunRow, StepRow, TaskRow, WaitRow
from runtime_core.worker import temporal_runtime

__all__ = [
    "NAMESPACE",
    "PostgresCluster",
    "SqliteLockHolder",
    "TemporalServer",
    "WorkerProcess",
    "assert_read_model_matches_temporal",
    "data_store",
    "domain_worker_process",
    "launch_many",
    "ledger_duplicates",
    "ledger_rows_by_run",
    "postgres_bindir",
    "results_path",
    "run_rows",
    "step_rows",
    "wait_for_runs",
    "wait_for_runs_in_flight",
    "wait_for_steps",
    "worker_env",
]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
#: The one namespace of every reliability server (each test has its own server).
NAMESPACE = "wfr-reliability"
#: What workflow-worker logs once it is about to poll.
READY = "polling task queue workflow-runtime-v2"
#: What domain-worker logs once it is about to poll.
DOMAIN_READY = "polling domain task queue"
RESULTS_ENV = "WFR_RELIABILITY_RESULTS"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
#: Temporal's status of an execution -> the read-model statuses that agree with it.
AGREES_WITH = {
    WorkflowExecutionStatus.COMPLETED: {"SUCCEEDED"},
    WorkflowExecutionStatus.FAILED: {"FAILED"},
    WorkflowExecutionStatus.CANCELED: {"CANCELED"},
    WorkflowExecutionStatus.RUNNING: {"RUNNING", "WAITING"},
}


def results_path() -> Path:
    """Where the figures go: ``$WFR_RELIABILITY_RESULTS``, else ``.nox/reliability-results.jsonl``."""
    explicit = os.environ.get(RESULTS_ENV)
    return Path(explicit) if explicit else ROOT / ".nox" / "reliability-results.jsonl"


async def _wait_proc(proc: subprocess.Popen[bytes], timeout: float) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, timeout)


# --------------------------------------------------------------------------------- Temporal


class TemporalServer:
    """A Temporal dev server on a fixed port with its state in a file, so it survives a restart."""

    def __init__(self, workdir: Path) -> None:
        """Choose the port and the files (nothing starts yet)."""
        self.port = free_port()
        self.db_file = workdir / "temporal.db"
        self.log_file = workdir / "temporal.log"
        self.starts = 0
        self._server: DevServer | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the frontend; the same across restarts."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> float:
        """Start (or restart) on the same port and database file; the seconds it took to answer."""
        began = time.monotonic()
        self._server = DevServer(port=self.port, namespaces=(NAMESPACE,), db_file=str(self.db_file), log_file=str(self.log_file))
        await self._server.start(timeout=120)
        self.starts += 1
        return time.monotonic() - began

    async def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the server's process group and wait for it to exit (SIGKILL after 30 s)."""
        assert self._server is not None, "the server is not running"
        # DevServer keeps its child private; a fault needs the real process (its own session, so
        # the group is the binary and anything it spawned).
        proc: subprocess.Popen[bytes] | None = self._server._proc
        self._server = None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            await _wait_proc(proc, 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            await _wait_proc(proc, 30)

    async def stop(self) -> None:
        """Stop for good (SIGTERM, then SIGKILL)."""
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def client(self) -> Client:
        """A client of the reliability namespace."""
        return await Client.connect(self.address, namespace=NAMESPACE, runtime=temporal_runtime())


# ---------------------------------------------------------------------------------- workers


def worker_env(temporal: TemporalServer, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a workflow-worker process: this process's, without its ``WFR_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env.update(WFR_TEMPORAL_ADDRESS=temporal.address, WFR_TEMPORAL_NAMESPACE=NAMESPACE, WFR_DATABASE_URL=database_url, WFR_LOG_LEVEL="INFO")
    env.update(extra)
    return env


def domain_worker_process(name: str, env: dict[str, str], log: Path) -> WorkerProcess:
    """A ``domain-worker`` process (the console script), ready once it polls the domain queue."""
    return WorkerProcess(name, env, log, command=[str(BIN / "domain-worker")], ready=DOMAIN_READY)


class WorkerProcess:
    """A ``workflow-worker`` process (or ``command``, ready once it logs ``ready``); every start appends to the same log file."""

    def __init__(self, name: str, env: dict[str, str], log: Path, command: Sequence[str] | None = None, ready: str = READY) -> None:
        """Configure (nothing starts yet)."""
        self.name = name
        self.env = env
        self.log = log
        self.command = list(command) if command is not None else [str(BIN / "workflow-worker")]
        self.ready = ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    async def start(self, timeout: float = 90) -> float:
        """Start the process and wait until it polls; the seconds that took."""
        assert not self.alive, f"{self.name} is already running"
        began = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - began < timeout:
            if self.ready in self.log_text(offset):
                self.starts += 1
                return time.monotonic() - began
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.log_text(offset)}")
            await asyncio.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"{self.name} never logged {self.ready!r} within {timeout:.0f}s:\n{self.log_text(offset)}")

    async def kill(self) -> None:
        """SIGKILL: the process dies with whatever it had in flight."""
        assert self.proc is not None and self.alive, f"{self.name} is not running"
        self.proc.send_signal(signal.SIGKILL)
        await _wait_proc(self.proc, 30)

    async def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL when it does not exit in time. The exit code (None if killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await _wait_proc(self.proc, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await _wait_proc(self.proc, 30)
            return None

    def log_text(self, offset: int = 0) -> str:
        """The log from byte ``offset`` on."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")

    def tracebacks(self) -> int:
        """How many tracebacks the log holds (an expected retry must not print one)."""
        return self.log_text().count("Traceback (most recent call last)")

    def warning_lines(self) -> int:
        """Log records at WARNING or above (the process's format: ``time LEVEL logger: message``)."""
        return len(re.findall(r"^\S+ \S+ (?:WARNING|ERROR|CRITICAL) ", self.log_text(), flags=re.MULTILINE))


# ------------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (``$WFR_TEST_PG_BINDIR`` first)."""
    explicit = os.environ.get("WFR_TEST_PG_BINDIR")
    if explicit:
        return Path(explicit)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """A private cluster in a temporary directory on a free port; stop and start it at will.

    Run as root, every PostgreSQL command runs as the ``postgres`` user (initdb refuses root).
    """

    def __init__(self, bindir: Path) -> None:
        """Choose the directory and port (nothing is created yet)."""
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="wfr-rel-pg."))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    @property
    def admin_url(self) -> str:
        """The superuser's URL (trust authentication on loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stdout}{result.stderr}\n{log}")

    def init(self) -> None:
        """initdb (no fsync of the new files: it is thrown away after the tests)."""
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> float:
        """Start and wait until it accepts connections; the seconds that took."""
        began = time.monotonic()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", "-o", options, "start")
        return time.monotonic() - began

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m MODE``: ``immediate`` is a crash (every connection dropped, recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    async def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        """Stop (if running) and remove every file."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        except Exception:  # already stopped
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------------- SQLite

_LOCK_SCRIPT = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
conn.close()
print("released", flush=True)
"""


class SqliteLockHolder:
    """Another process that opens the SQLite file and holds ``BEGIN EXCLUSIVE`` for ``seconds``."""

    def __init__(self, path: Path, seconds: float) -> None:
        """Configure (nothing starts yet)."""
        self.path = path
        self.seconds = seconds
        self.proc: subprocess.Popen[str] | None = None
        self.locked_at: float | None = None
        self.released_at: float | None = None

    async def acquire(self, timeout: float = 120) -> float:
        """Start the holder and wait until it has the lock; the seconds it waited for it."""
        began = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-c", _LOCK_SCRIPT, str(self.path), str(self.seconds)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline), timeout)
        assert line.strip() == "locked", f"the lock holder said {line!r}"
        self.locked_at = time.monotonic()
        return self.locked_at - began

    async def released(self) -> None:
        """Wait until the holder committed and exited."""
        assert self.proc is not None and self.proc.stdout is not None
        rest = await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.read)
        code = await _wait_proc(self.proc, 30)  # type: ignore[arg-type]
        assert code == 0 and "released" in rest, f"the lock holder exited {code}: {rest}"
        self.released_at = time.monotonic()

    def kill(self) -> None:
        """Kill the holder if it still runs (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


# ---------------------------------------------------------------------------------- runs


async def launch_many(
    launcher: Launcher, tenant: str, workflow_id: str, payloads: Sequence[dict[str, Any]], *, per_second: float = 20, concurrency: int = 8
) -> list[LaunchedRun]:
    """Launch one run per payload, in payload order, at most ``per_second`` launches a second.

    Paced like traffic, not all at once: one worker handed a hundred new runs in the same instant
    spends over ten seconds on their first workflow tasks together (each new run builds its
    sandbox), Temporal times those tasks out and hands them out again, and the load, not the
    fault, would decide what a test measures.
    """
    bound = asyncio.Semaphore(concurrency)
    began = time.monotonic()

    async def one(index: int, payload: dict[str, Any]) -> LaunchedRun:
        await asyncio.sleep(max(0.0, began + index / per_second - time.monotonic()))
        async with bound:
            return await launcher.launch(tenant, workflow_id, payload)

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads))))


async def wait_for_runs(client: Client, run_ids: Iterable[str], timeout: float) -> tuple[dict[str, float], list[str]]:
    """Wait until Temporal closes each run (any way); ``({run_id: monotonic close time}, unfinished)``.

    A run's wait survives a server outage (the long poll is retried every 0.5 s).
    """
    closed: dict[str, float] = {}

    async def one(run_id: str) -> None:
        handle = client.get_workflow_handle(workflow_id_for_run(run_id))
        while True:
            try:
                await handle.result()
                break
            except WorkflowFailureError:
                break  # failed, cancelled, terminated: the checks say whether that was right
            except asyncio.CancelledError:
                raise
            except Exception:  # the server is away: ask again
                await asyncio.sleep(0.5)
        closed[run_id] = time.monotonic()

    ids = list(run_ids)
    tasks = [asyncio.create_task(one(r)) for r in ids]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return closed, [r for r in ids if r not in closed]


async def wait_for_steps(database: Database, tenant: str, step_ids: Iterable[str], status: str, at_least: int, timeout: float) -> int:
    """Poll the read model until ``at_least`` step rows of ``step_ids`` have ``status``; that count."""
    ids = list(step_ids)
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        async with database.sessions() as session:
            count = (
                await session.execute(select(func.count()).select_from(StepRow).where(StepRow.tenant == tenant, StepRow.step_id.in_(ids), StepRow.status == status))
            ).scalar_one()
        if count >= at_least:
            return int(count)
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {count} steps {ids} reached {status} within {timeout:.0f}s (wanted {at_least})")


async def wait_for_runs_in_flight(database: Database, tenant: str, past_step: str, at_least: int, timeout: float) -> int:
    """Poll the read model until ``at_least`` runs of ``tenant`` are RUNNING with ``past_step`` SUCCEEDED; that count.

    For a definition made of actions only, such a run is inside one of its later actions (or
    between two, for the moment a workflow task takes).
    """
    query = (
        select(func.count(func.distinct(StepRow.run_id)))
        .select_from(StepRow)
        .join(RunRow, RunRow.run_id == StepRow.run_id)
        .where(StepRow.tenant == tenant, StepRow.step_id == past_step, StepRow.status == "SUCCEEDED", RunRow.status == "RUNNING")
    )
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        async with database.sessions() as session:
            count = int((await session.execute(query)).scalar_one())
        if count >= at_least:
            return count
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {count} runs were RUNNING past {past_step} within {timeout:.0f}s (wanted {at_least})")


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def run_rows(database: Database, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{run_id: {status, error, result, temporal_workflow_id, ended_at}}`` from ``workflow_runs``."""
    ids = list(run_ids)
    rows: dict[str, dict[str, Any]] = {}
    async with database.sessions() as session:
        for chunk in _chunks(ids):
            for run in (await session.execute(select(RunRow).where(RunRow.run_id.in_(chunk)))).scalars():
                rows[run.run_id] = {"status": run.status, "error": run.error, "result": run.result, "temporal_workflow_id": run.temporal_workflow_id, "ended_at": run.ended_at}
    return rows


async def step_rows(database: Database, run_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Every step row of the runs, by sequence."""
    ids = list(run_ids)
    steps: dict[str, list[dict[str, Any]]] = {r: [] for r in ids}
    async with database.sessions() as session:
        for chunk in _chunks(ids):
            query = select(StepRow).where(StepRow.run_id.in_(chunk)).order_by(StepRow.run_id, StepRow.seq)
            for s in (await session.execute(query)).scalars():
                steps[s.run_id].append({"seq": s.seq, "stepId": s.step_id, "type": s.step_type, "status": s.status, "attempts": s.attempts, "error": s.error})
    return steps


# --------------------------------------------------------------------------------- checks


async def assert_read_model_matches_temporal(database: Database, client: Client, run_ids: Iterable[str]) -> None:
    """Each run's read-model status agrees with Temporal's, and an ended run left nothing open.

    COMPLETED -> SUCCEEDED, FAILED -> FAILED, CANCELED -> CANCELED, RUNNING -> RUNNING or WAITING;
    TERMINATED, TIMED_OUT (nothing in the runtime does either) or any other pair is a mismatch.
    A run the read model calls ended has an ``ended_at``, no WAITING wait, no STARTED step and no
    PENDING task. Every problem is listed at once.
    """
    ids = list(run_ids)
    rows = await run_rows(database, ids)
    open_waits: dict[str, int] = {}
    started_steps: dict[str, int] = {}
    pending_tasks: dict[str, int] = {}
    async with database.sessions() as session:
        for chunk in _chunks(ids):
            for table, status, into in ((WaitRow, "WAITING", open_waits), (StepRow, "STARTED", started_steps), (TaskRow, "PENDING", pending_tasks)):
                query = select(table.run_id, func.count()).where(table.run_id.in_(chunk), table.status == status).group_by(table.run_id)
                for run_id, count in await session.execute(query):
                    into[run_id] = count
    bound = asyncio.Semaphore(16)
    problems: list[str] = []

    async def check(run_id: str) -> None:
        row = rows.get(run_id)
        if row is None:
            problems.append(f"{run_id}: no workflow_runs row")
            return
        async with bound:
            try:
                description = await client.get_workflow_handle(row["temporal_workflow_id"]).describe()
            except Exception as err:
                problems.append(f"{run_id}: Temporal cannot describe it: {err}")
                return
        agreeing = AGREES_WITH.get(description.status) if description.status is not None else None
        if agreeing is None or row["status"] not in agreeing:
            name = description.status.name if description.status is not None else "?"
            problems.append(f"{run_id}: read model {row['status']}, Temporal {name}")
        if row["status"] in TERMINAL:
            if row["ended_at"] is None:
                problems.append(f"{run_id}: {row['status']} without ended_at")
            for what, counts in (("open waits", open_waits), ("STARTED steps", started_steps), ("PENDING tasks", pending_tasks)):
                if counts.get(run_id):
                    problems.append(f"{run_id}: {row['status']} with {counts[run_id]} {what}")

    await asyncio.gather(*(check(r) for r in ids))
    assert not problems, f"{len(problems)} of {len(ids)} runs disagree with Temporal or left something open:\n" + "\n".join(sorted(problems)[:40])


async def ledger_duplicates(database: Database, tenant: str) -> dict[str, int]:
    """Idempotency keys of ``tenant`` with more than one ledger row (must be empty)."""
    query = (
        select(ActionInvocation.idempotency_key, func.count())
        .where(ActionInvocation.tenant == tenant)
        .group_by(ActionInvocation.idempotency_key)
        .having(func.count() > 1)
    )
    async with database.sessions() as session:
        return {key: int(count) for key, count in await session.execute(query)}


async def ledger_rows_by_run(database: Database, tenant: str) -> dict[str, dict[str, int]]:
    """``{run_id: {action_id: ledger rows}}`` of ``tenant``."""
    query = select(ActionInvocation.run_id, ActionInvocation.action_id, func.count()).where(ActionInvocation.tenant == tenant).group_by(ActionInvocation.run_id, ActionInvocation.action_id)
    result: dict[str, dict[str, int]] = {}
    async with database.sessions() as session:
        for run_id, action_id, count in await session.execute(query):
            result.setdefault(run_id, {})[action_id] = int(count)
    return result


async def data_store(database: Database, tenant: str) -> dict[str, Any]:
    """Every data-store key of ``tenant`` with its value."""
    async with database.sessions() as session:
        return {key: value for key, value in await session.execute(select(DataStoreEntry.key, DataStoreEntry.value).where(DataStoreEntry.tenant == tenant))}


# -------------------------------------------------------------------------------- figures


def write_figures(line: dict[str, Any]) -> Path:
    """Append one JSON line to the results file; its path."""
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), **line}, default=str, sort_keys=False) + "\n")
    return path
