"""Worker processes in production: health endpoints, SIGTERM draining, the start-up ownership check.

Real console-script processes against the real Temporal dev server and real SQLite files.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.worker import Worker

from runtime_bootstrap._devserver import DevServer
from runtime_core.actions import ActionRegistry
from runtime_core.config import SETTINGS_DOC, ConfigError, RuntimeSettings
from runtime_core.contract import DOMAIN_TASK_QUEUE, TASK_QUEUE
from runtime_core.launcher import Launcher
from runtime_core.persistence import Database, upgrade
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view
from runtime_core.worker import foreign_pollers

from .conftest import isolated_namespace
from .test_workers import _start

BIN = Path(sys.executable).parent
#: The worker processes run this checkout's sources (the venv may hold another one).
SOURCES = os.pathsep.join(
    str(Path(__file__).resolve().parent.parent / p) for p in ("packages/runtime-core/src", "packages/runtime-bootstrap/src", "packages/worker/src", "packages/domain-worker/src")
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(server: DevServer, namespace: str, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env["PYTHONPATH"] = SOURCES + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(WFR_TEMPORAL_ADDRESS=server.address, WFR_TEMPORAL_NAMESPACE=namespace, WFR_DATABASE_URL=db_url, WFR_LOG_LEVEL="INFO", **extra)
    return env


async def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, timeout)


async def _http(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], Any]:
    """One raw HTTP/1.1 request; the server must close the connection after its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 15)  # to EOF: Connection: close
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


async def _until_status(port: int, path: str, status: int, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got, _, body = await _http(port, path)
        if got == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} stayed {got} {body}, expected {status}")
        await asyncio.sleep(0.2)


def test_health_and_shutdown_settings_are_validated() -> None:
    """WFR_HEALTH_PORT, WFR_SHUTDOWN_GRACE_SECONDS and WFR_STRICT_OWNERSHIP: defaults, and errors that name the variable."""
    default = RuntimeSettings.from_env({})
    assert (default.health_port, default.shutdown_grace_seconds, default.strict_ownership) == (None, 30.0, False)
    chosen = RuntimeSettings.from_env({"WFR_HEALTH_PORT": "8081", "WFR_SHUTDOWN_GRACE_SECONDS": "5", "WFR_STRICT_OWNERSHIP": "1"})
    assert (chosen.health_port, chosen.shutdown_grace_seconds, chosen.strict_ownership) == (8081, 5.0, True)
    for name, bad in (("WFR_HEALTH_PORT", "http"), ("WFR_HEALTH_PORT", "0"), ("WFR_HEALTH_PORT", "70000"), ("WFR_SHUTDOWN_GRACE_SECONDS", "-1"), ("WFR_STRICT_OWNERSHIP", "yes")):
        with pytest.raises(ConfigError, match=name):
            RuntimeSettings.from_env({name: bad})
    operations = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in ("WFR_HEALTH_PORT", "WFR_SHUTDOWN_GRACE_SECONDS", "WFR_STRICT_OWNERSHIP"):  # the table is rendered from SETTINGS_DOC
        default, meaning = SETTINGS_DOC[name]
        assert f"| `{name}` | {f'`{default}`' if default else '—'} | {meaning} |" in operations, name
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")} | {"PYTHONPATH": SOURCES, "WFR_HEALTH_PORT": "eighty"}
    result = subprocess.run([str(BIN / "workflow-worker")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "WFR_HEALTH_PORT" in result.stderr, result.stderr


async def test_domain_worker_readyz_follows_the_database_migration(temporal_server: DevServer, tmp_path: Path) -> None:
    """The domain worker's /readyz is 503 naming the database until it is migrated, then 200; /healthz is 200 throughout."""
    db_url = f"sqlite:///{tmp_path / 'domain.db'}"
    port = _free_port()
    proc = await _start("domain-worker", _env(temporal_server, "wfr-misc", db_url, WFR_HEALTH_PORT=str(port)), f"polling domain task queue {DOMAIN_TASK_QUEUE}", tmp_path / "domain.log")
    database = Database(db_url)
    try:
        status, headers, body = await _http(port, "/healthz")
        assert (status, body, headers["connection"]) == (200, {"status": "ok"}, "close")
        status, headers, body = await _http(port, "/readyz")
        assert status == 503 and headers["content-type"] == "application/json", body
        assert [(e["path"], e["code"]) for e in body["errors"]] == [("database", "NOT_AT_HEAD")], body
        assert "wfr db upgrade" in body["errors"][0]["message"]
        assert (await _http(port, "/metrics"))[0] == 404
        assert (await _http(port, "/readyz", "POST"))[0] == 405
        await upgrade(database)
        assert await _until_status(port, "/readyz", 200) == {"status": "ready"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await _wait(proc, 30)
        await database.dispose()
    assert code == 0, (tmp_path / "domain.log").read_text()


def _definition(ms: int) -> dict[str, Any]:
    return {"id": "slow", "version": 1, "name": "slow", "steps": [
        {"id": "nap", "type": "action.call", "config": {"actionId": "core.delay", "version": 1, "inputMapping": {"ms": ms}}},
        {"id": "say", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"done": True}, "saveAs": "said"}},
    ]}


async def _delay_started(client: Client, workflow_id: str) -> None:
    """Wait until the run's core.delay activity has been picked up by a worker."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(200):
        description = await handle.describe()
        if any(a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in description.raw_description.pending_activities):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the core.delay activity never started")


async def test_sigterm_drains_the_running_activity_and_readiness_turns_503(temporal_server: DevServer, tmp_path: Path) -> None:
    """SIGTERM during a 4 s core.delay: /readyz turns 503 at once, the activity completes on that worker, it exits 0 within the grace; a fresh worker finishes the run."""
    db_url = f"sqlite:///{tmp_path / 'drain.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(database, ActionRegistry.default(), tenant, [_definition(4000)])).published
    with isolated_namespace() as namespace:
        port = _free_port()
        env = _env(temporal_server, namespace, db_url, WFR_HEALTH_PORT=str(port), WFR_SHUTDOWN_GRACE_SECONDS="20")
        first = await _start("workflow-worker", env, f"polling task queue {TASK_QUEUE}", tmp_path / "first.log")
        client = await Client.connect(temporal_server.address, namespace=namespace)
        try:
            assert await _until_status(port, "/readyz", 200) == {"status": "ready"}
            launched = await Launcher(client, database).launch(tenant, "slow", {})
            await _delay_started(client, launched.temporal_workflow_id)
            signalled = time.monotonic()
            first.send_signal(signal.SIGTERM)
            body = await _until_status(port, "/readyz", 503, seconds=2)
            assert [e["code"] for e in body["errors"] if e["path"] == "worker"] == ["DRAINING"], body
            assert (await _http(port, "/healthz"))[0] == 200
            code = await _wait(first, 30)
            took = time.monotonic() - signalled
        finally:
            if first.poll() is None:
                first.kill()
        log = (tmp_path / "first.log").read_text()
        assert code == 0, log
        assert 1.0 < took < 20, (took, log)  # waited for the activity, not for the whole grace
        assert "stopped" in log and "as workflow-worker@" in log
        history = await client.get_workflow_handle(launched.temporal_workflow_id).fetch_history()
        completed = [e.activity_task_completed_event_attributes.identity for e in history.events if e.HasField("activity_task_completed_event_attributes")]
        assert any(identity.startswith("workflow-worker@") and identity.endswith(f":{first.pid}") for identity in completed), completed
        second = await _start("workflow-worker", env, f"polling task queue {TASK_QUEUE}", tmp_path / "second.log")
        try:
            await asyncio.wait_for(client.get_workflow_handle(launched.temporal_workflow_id).result(), 60)
            view = await run_view(database, launched.run_id)
            assert view is not None and view["status"] == "SUCCEEDED" and view["vars"] == {"said": {"done": True}}, view
        finally:
            second.send_signal(signal.SIGTERM)
            assert await _wait(second, 30) == 0
            await database.dispose()
        # the first worker's identity is a workflow-worker's: never reported (in-process test workers of
        # earlier tests may have polled this lent namespace under the SDK's default identity, and are)
        reported = [line for line in (tmp_path / "second.log").read_text().splitlines() if "OWNERSHIP" in line]
        assert not [line for line in reported if "OWNERSHIP: 'workflow-worker@" in line], reported


async def test_a_second_sigterm_exits_at_once(temporal_server: DevServer, tmp_path: Path) -> None:
    """With a 30 s activity running and a 60 s grace, a second SIGTERM ends the process at once with 143."""
    db_url = f"sqlite:///{tmp_path / 'twice.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(database, ActionRegistry.default(), tenant, [_definition(30000)])).published
    with isolated_namespace() as namespace:
        env = _env(temporal_server, namespace, db_url, WFR_SHUTDOWN_GRACE_SECONDS="60")
        proc = await _start("workflow-worker", env, f"polling task queue {TASK_QUEUE}", tmp_path / "twice.log")
        client = await Client.connect(temporal_server.address, namespace=namespace)
        launched = await Launcher(client, database).launch(tenant, "slow", {})
        try:
            await _delay_started(client, launched.temporal_workflow_id)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert proc.poll() is None, "the first SIGTERM must drain, not exit"
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await _wait(proc, 10)
            took = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
            await client.get_workflow_handle(launched.temporal_workflow_id).terminate("test over")
            await database.dispose()
        log = (tmp_path / "twice.log").read_text()
        assert code == 143, log
        assert took < 3, took
        assert "SIGTERM again: exiting now without draining" in log


@activity.defn(name="stray")
async def _stray() -> None:
    """Never called: the stray worker only needs something to poll for."""


async def test_a_stray_poller_is_logged_once_and_strict_makes_it_fatal(temporal_server: DevServer, tmp_path: Path) -> None:
    """A plain worker with another identity polling workflow-runtime-v2 is logged once at start-up; --strict or WFR_STRICT_OWNERSHIP=1 exits 1 naming it."""
    db_url = f"sqlite:///{tmp_path / 'owned.db'}"
    database = Database(db_url)
    await upgrade(database)
    await database.dispose()
    stray_identity = f"stray-poller-{uuid.uuid4().hex[:6]}@test"
    with isolated_namespace() as namespace:
        client = await Client.connect(temporal_server.address, namespace=namespace)
        stray = Worker(client, task_queue=TASK_QUEUE, activities=[_stray], identity=stray_identity, graceful_shutdown_timeout=timedelta(seconds=1))
        async with stray:
            for _ in range(100):
                if stray_identity in await foreign_pollers(client):
                    break
                await asyncio.sleep(0.1)
            assert stray_identity in await foreign_pollers(client)
            env = _env(temporal_server, namespace, db_url)
            lenient = await _start("workflow-worker", env, f"polling task queue {TASK_QUEUE}", tmp_path / "lenient.log")
            lenient.send_signal(signal.SIGTERM)
            assert await _wait(lenient, 30) == 0
            log = (tmp_path / "lenient.log").read_text()
            assert log.count(f"OWNERSHIP: {stray_identity!r}") == 1, log
            assert "ERROR" in log.split(f"OWNERSHIP: {stray_identity!r}")[0].splitlines()[-1]

            strict = subprocess.run([str(BIN / "workflow-worker"), "--strict"], env=env, capture_output=True, text=True, timeout=60)
            assert strict.returncode == 1, strict.stderr
            assert stray_identity in strict.stderr and "foreign poller" in strict.stderr and "--strict" in strict.stderr
            assert "polling task queue" not in strict.stderr

            strict_env = subprocess.run([str(BIN / "domain-worker")], env=env | {"WFR_STRICT_OWNERSHIP": "1"}, capture_output=True, text=True, timeout=60)
            assert strict_env.returncode == 1, strict_env.stderr
            assert stray_identity in strict_env.stderr and "domain-worker" in strict_env.stderr


async def test_readyz_is_503_naming_temporal_while_temporal_is_down(tmp_path: Path) -> None:
    """A workflow-worker whose Temporal server stops stays live (/healthz 200) but unready (/readyz 503, temporal UNREACHABLE), and ready again once it is back."""
    db_url = f"sqlite:///{tmp_path / 'outage.db'}"
    database = Database(db_url)
    await upgrade(database)
    await database.dispose()
    server = DevServer(namespaces=("wfr-outage",), db_file=str(tmp_path / "temporal.db"))
    await server.start()
    port = _free_port()
    proc = None
    code = None
    try:
        env = _env(server, "wfr-outage", db_url, WFR_HEALTH_PORT=str(port), WFR_SHUTDOWN_GRACE_SECONDS="2")
        proc = await _start("workflow-worker", env, f"polling task queue {TASK_QUEUE}", tmp_path / "outage.log")
        assert await _until_status(port, "/readyz", 200) == {"status": "ready"}
        await server.stop()
        body = await _until_status(port, "/readyz", 503)
        assert [(e["path"], e["code"]) for e in body["errors"]] == [("temporal", "UNREACHABLE")], body
        assert "WFR_TEMPORAL_ADDRESS" in body["errors"][0]["message"]
        assert (await _http(port, "/healthz"))[0] == 200
        await server.start()
        assert await _until_status(port, "/readyz", 200, seconds=60) == {"status": "ready"}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            code = await _wait(proc, 30)
        await server.stop()
    assert code == 0, (tmp_path / "outage.log").read_text()
