"""Fixtures of the reliability suite: per-test Temporal servers and worker processes, a private
PostgreSQL cluster per module, and the figures each test records (see docs/reliability.md).

Every test here runs the real pieces as separate processes the way an operator deploys them, so
it can kill, stop and lock them. `nox -s reliability` runs this folder; `nox -s tests` leaves it out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import PostgresCluster, TemporalServer, WorkerProcess, postgres_bindir, results_path, worker_env, write_figures

FIGURES = pytest.StashKey[dict[str, Any]]()
_WRITTEN: list[dict[str, Any]] = []


@pytest.fixture
def tenant() -> str:
    """A tenant no other test uses."""
    return f"rel-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test's figures (fault, runs, outcomes, seconds …): written as one JSON line with its outcome."""
    found: dict[str, Any] = {}
    request.node.stash[FIGURES] = found
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    found = item.stash.get(FIGURES, None)
    if report.when != "call" or found is None:
        return
    line: dict[str, Any] = {"test": item.nodeid.split("::", 1)[-1], "outcome": report.outcome, "seconds": round(report.duration, 1), **found}
    if call.excinfo is not None:
        line["failure"] = call.excinfo.exconly().splitlines()[0][:400]
    write_figures(line)
    _WRITTEN.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _WRITTEN:
        return
    terminalreporter.section("reliability figures")
    for line in _WRITTEN:
        shown = {k: v for k, v in line.items() if k not in ("test", "outcome", "failure")}
        terminalreporter.write_line(f"{line['outcome'].upper():7} {line['test']}: {shown}")
        if "failure" in line:
            terminalreporter.write_line(f"        {line['failure']}")
    terminalreporter.write_line(f"figures appended to {results_path()}")


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[TemporalServer]:
    """This test's own Temporal dev server (a persistent database file, so it survives a restart)."""
    server = TemporalServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def spawn_worker(temporal: TemporalServer, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[WorkerProcess]]]:
    """Start a workflow-worker process: ``await spawn_worker(database_url, name="w1", WFR_X="…")``.

    Every worker still running at the end of the test gets SIGTERM (then SIGKILL).
    """
    started: list[WorkerProcess] = []

    async def spawn(database_url: str, name: str = "worker", **env: str) -> WorkerProcess:
        worker = WorkerProcess(name, worker_env(temporal, database_url, **env), tmp_path / f"{name}.log")
        started.append(worker)
        await worker.start()
        return worker

    try:
        yield spawn
    finally:
        for worker in started:
            await worker.stop(timeout=15)


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the module's tests; in CI a missing PostgreSQL fails."""
    bindir = postgres_bindir()
    problem = None
    if bindir is None or not (bindir / "initdb").exists():
        problem = "no PostgreSQL server binaries (initdb) found: install postgresql or set WFR_TEST_PG_BINDIR"
    elif os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            problem = "running as root needs a 'postgres' user to run the PostgreSQL server"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL reliability tests: {problem}")
        pytest.skip(problem)
    assert bindir is not None
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
