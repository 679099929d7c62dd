"""Prometheus metrics: the workflow-worker process's counters against the database, the SDK's exporter, the API's /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from temporalio.client import Client

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_bootstrap.api import create_app, serving
from runtime_core.actions import ActionRegistry
from runtime_core.contract import DOMAIN_TASK_QUEUE, HOUSEKEEPING_SCHEDULE_ID, HOUSEKEEPING_WORKFLOW
from runtime_core.ingress import EventIngress
from runtime_core.launcher import Launcher
from runtime_core.operations import Operations
from runtime_core.persistence import ActionInvocation, Database, EventDelivery, RunRow, StepRow, WaitRow, upgrade, utcnow
from runtime_core.publishing import publish_definitions
from runtime_core.worker import temporal_runtime

from .conftest import isolated_namespace
from .test_workers import BIN, _env, _start, _stop

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

METERED = {"id": "metered", "version": 1, "name": "metered", "steps": [
    {"id": "hello", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"k": {"$expr": "payload.key"}}}},
    {"id": "nap", "type": "time.wait", "config": {"durationMs": 200}},
    {"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.key"}}},
    {"id": "bye", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"k": {"$expr": "payload.key"}}}},
]}
FAILING = {"id": "failing", "version": 1, "name": "failing", "steps": [
    {"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"category": "TransientError", "message": "no"}},
     "retry": {"maxAttempts": 2, "backoffMs": 1}},
]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(url: str) -> tuple[str, Samples]:
    async with httpx.AsyncClient() as http:
        response = await http.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return response.text, _parse(response.text)


async def _scrape_until(url: str, check: Callable[[Samples], bool], timeout: float = 10) -> tuple[str, Samples]:
    """Scrape until ``check`` holds (a delivery is counted once its outcome is recorded, just after the run resumed)."""
    deadline = time.monotonic() + timeout
    while True:
        text, samples = await _scrape(url)
        if check(samples) or time.monotonic() > deadline:
            return text, samples
        await asyncio.sleep(0.2)


async def _wait_status(database: Database, run_ids: list[str], statuses: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with database.sessions() as session:
            seen = set((await session.execute(select(RunRow.status).where(RunRow.run_id.in_(run_ids)))).scalars())
        if seen <= statuses and len(seen) > 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"runs never reached {statuses}")


async def _event_waits_open(database: Database, tenant: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with database.sessions() as session:
            n = (await session.execute(select(func.count()).select_from(WaitRow).where(WaitRow.tenant == tenant, WaitRow.wait_type == "event", WaitRow.status == "WAITING"))).scalar_one()
        if n == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never {count} open event waits")


async def test_worker_metrics_match_the_database(temporal_server: DevServer, tmp_path: Path) -> None:
    """A workflow-worker process with WFR_METRICS_PORT reports runs, actions and deliveries exactly as the database records them."""
    db_url = f"sqlite:///{tmp_path / 'metrics.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(database, ActionRegistry.default(), tenant, [METERED, FAILING])).published
    port, sdk_port = _free_port(), _free_port()
    with isolated_namespace() as namespace:
        env = _env(temporal_server, db_url, WFR_METRICS_PORT=str(port), WFR_TEMPORAL_METRICS_PORT=str(sdk_port))
        env["WFR_TEMPORAL_NAMESPACE"] = namespace
        proc = await _start("workflow-worker", env, "polling task queue workflow-runtime-v2", tmp_path / "worker.log")
        try:
            client = await Client.connect(temporal_server.address, namespace=namespace, runtime=temporal_runtime())
            launcher = Launcher(client, database)
            metered = [await launcher.launch(tenant, "metered", {"key": f"k{i}"}) for i in range(3)]
            failing = [await launcher.launch(tenant, "failing", {})]
            await _event_waits_open(database, tenant, 3)  # not the timer's WAITING: the events must go through the dispatcher
            ingress = EventIngress(database)
            for i in range(3):
                await ingress.send(tenant, "go", f"k{i}", {"n": i}, wait=None)
            await _wait_status(database, [r.run_id for r in metered], {"SUCCEEDED"})
            await _wait_status(database, [r.run_id for r in failing], {"FAILED"})

            async with database.sessions() as session:
                ended = {(wf, status): n for wf, status, n in (await session.execute(
                    select(RunRow.workflow_id, RunRow.status, func.count()).where(RunRow.tenant == tenant).group_by(RunRow.workflow_id, RunRow.status))).all()}
                ledger = {action: n for action, n in (await session.execute(
                    select(ActionInvocation.action_id, func.count()).where(ActionInvocation.tenant == tenant).group_by(ActionInvocation.action_id))).all()}
                steps = (await session.execute(select(StepRow.step_id, StepRow.status, StepRow.attempts).where(StepRow.tenant == tenant, StepRow.step_type == "action.call"))).all()
                deliveries = {(kind, status): n for kind, status, n in (await session.execute(
                    select(EventDelivery.kind, EventDelivery.status, func.count()).where(EventDelivery.tenant == tenant).group_by(EventDelivery.kind, EventDelivery.status))).all()}
                run_ids = set((await session.execute(select(RunRow.run_id).where(RunRow.tenant == tenant))).scalars())
            assert ended == {("metered", "SUCCEEDED"): 3, ("failing", "FAILED"): 1}
            assert deliveries == {("signal", "DELIVERED"): 3}
            failed_attempts = sum(attempts - (status == "SUCCEEDED") for _, status, attempts in steps)
            assert failed_attempts == 2  # core.fail, two attempts

            url = f"http://127.0.0.1:{port}/metrics"
            text, samples = await _scrape_until(url, lambda s: _value(s, "wfr_event_deliveries_total", kind="signal", status="delivered") >= 3)
            for (wf, status), n in ended.items():
                assert _value(samples, "wfr_runs_ended_total", workflow=wf, status=status) == n, (wf, status)
            assert _value(samples, "wfr_action_attempts_total", action="core.echo", outcome="succeeded") == ledger["core.echo"] == 6
            assert _value(samples, "wfr_action_attempts_total", action="core.fail", outcome="failed") == failed_attempts
            assert _value(samples, "wfr_action_failures_total", action="core.fail", category="TransientError") == failed_attempts
            assert _value(samples, "wfr_action_attempts_total", action="core.fail", outcome="succeeded") == 0
            assert _value(samples, "wfr_event_deliveries_total", kind="signal", status="delivered") == deliveries[("signal", "DELIVERED")]
            assert _value(samples, "wfr_event_delivery_lag_seconds_count") == 3
            assert _value(samples, "wfr_step_duration_seconds_count", step_type="action.call") == 6 + 1  # six echoes, one failed step
            assert _value(samples, "wfr_step_duration_seconds_count", step_type="time.wait") == 3
            assert _value(samples, "wfr_step_duration_seconds_count", step_type="event.wait") == 3
            # bounded labels: no run id (nor any 32-hex id) is ever a label value
            values = {v for (_, labels) in samples for _, v in labels}
            assert not values & run_ids
            assert not [v for v in values if re.fullmatch(r"[0-9a-f]{32}", v)]
            assert "# TYPE wfr_open_waits gauge" in text and "# TYPE wfr_stuck_runs gauge" in text

            sdk_text, _ = await _scrape(f"http://127.0.0.1:{sdk_port}/metrics")
            assert "# TYPE temporal_request_total counter" in sdk_text and "# TYPE temporal_workflow_completed_total counter" in sdk_text
            assert "# TYPE temporal_workflow_task_execution_latency histogram" in sdk_text
        finally:
            code = await _stop(proc)
            await database.dispose()
    assert code == 0, (tmp_path / "worker.log").read_text()


def test_bad_metrics_port_exits_2_naming_the_variable(tmp_path: Path) -> None:
    """An unusable WFR_METRICS_PORT is a configuration error: exit 2, the message names the variable."""
    for name, value in (("WFR_METRICS_PORT", "http"), ("WFR_METRICS_PORT", "70000"), ("WFR_TEMPORAL_METRICS_PORT", "-1")):
        env = {"PATH": "/usr/bin:/bin", "WFR_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", name: value}
        env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})
        done = subprocess.run([str(BIN / "workflow-worker")], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert name in done.stderr, done.stderr


async def test_api_serves_metrics(sqlite_stack: Stack) -> None:
    """The API app's /metrics (when on): runs started by its launcher, open waits from the read model."""
    stack = sqlite_stack
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    wf = f"api-{uuid.uuid4().hex[:6]}"
    waiter = {"id": wf, "version": 1, "name": wf, "steps": [{"id": "w", "type": "event.wait", "config": {"eventName": "never", "correlationKey": {"$expr": "'x'"}}}]}
    assert (await publish_definitions(stack.database, stack.registry, tenant, [waiter])).published
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    assert "/metrics" not in {getattr(r, "path", "") for r in create_app(ops).routes}  # off unless asked for
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ops, metrics_route=True)), base_url="http://wfr.test") as http:
        response = await http.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        before = _parse(response.text)
        launched = await stack.launcher.launch(tenant, wf, {})
        await _wait_status(stack.database, [launched.run_id], {"WAITING"})
        await asyncio.sleep(5.1)  # past the open-waits cache
        after = _parse((await http.get("/metrics")).text)
        try:
            assert _value(after, "wfr_runs_started_total", workflow=wf) == _value(before, "wfr_runs_started_total", workflow=wf) + 1 == 1
            async with stack.database.sessions() as session:
                open_waits = (await session.execute(select(func.count()).select_from(WaitRow).where(WaitRow.status == "WAITING", WaitRow.wait_type == "event"))).scalar_one()
            assert open_waits >= 1
            assert _value(after, "wfr_open_waits", type="event") == open_waits
        finally:
            await stack.launcher.cancel(tenant, launched.run_id)


async def test_wfr_serve_serves_metrics_on_both_ports(sqlite_stack: Stack) -> None:
    """``serving`` with a metrics port (what ``wfr serve`` does with WFR_METRICS_PORT): /metrics on that port and on the API's."""
    port = _free_port()
    async with serving(sqlite_stack, "127.0.0.1", 0, metrics_port=port) as url:
        api_text, _ = await _scrape(f"{url}/metrics")
        own_text, _ = await _scrape(f"http://127.0.0.1:{port}/metrics")
    for text in (api_text, own_text):
        assert "# TYPE wfr_runs_started_total counter" in text and "# TYPE wfr_open_waits gauge" in text
    async with serving(sqlite_stack, "127.0.0.1", 0) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/metrics")).status_code == 404  # off unless configured


def _ghost_run() -> RunRow:
    """An open run row whose Temporal execution does not exist, last moving an hour ago."""
    long_ago = utcnow() - timedelta(hours=1)
    return RunRow(run_id=uuid.uuid4().hex, tenant="t", workflow_id="ghost", workflow_version=1, status="RUNNING", temporal_workflow_id=f"ghost-{uuid.uuid4().hex}",
                  definition_hash="0" * 64, semantics_version=1, created_at=long_ago, started_at=long_ago, updated_at=long_ago)


def _stuck(samples: Samples) -> dict[str, float]:
    return {dict(labels)["reason"]: v for (name, labels), v in samples.items() if name == "wfr_stuck_runs"}


async def test_stuck_runs_gauge_counts_the_last_diagnosis_pass(sqlite_stack: Stack, tmp_path: Path) -> None:
    """A diagnosis pass sets wfr_stuck_runs by reason; the next pass, with nothing stuck, sets it back to 0."""
    database = Database(f"sqlite:///{tmp_path / 'stuck.db'}")
    await upgrade(database)
    ghost = _ghost_run()
    async with database.sessions.begin() as session:
        session.add(ghost)
    ops = Operations(database, sqlite_stack.client)
    try:
        counts = await ops.record_diagnoses()
        assert counts["stuck"] == 1
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ops, metrics_route=True)), base_url="http://wfr.test") as http:
            stuck = _stuck(_parse((await http.get("/metrics")).text))
            assert stuck == {"NO_WORKER": 0, "EXECUTION_GONE": 1, "WORKFLOW_TASK_FAILING": 0, "ACTIVITY_RETRYING": 0, "BACKLOG": 0}  # a worker polls wfr-sqlite
            async with database.sessions.begin() as session:
                (await session.get(RunRow, ghost.run_id)).status = "CANCELED"  # type: ignore[union-attr]
            await ops.record_diagnoses()
            assert set(_stuck(_parse((await http.get("/metrics")).text)).values()) == {0}
    finally:
        await database.dispose()


async def test_domain_worker_serves_metrics(temporal_server: DevServer, tmp_path: Path) -> None:
    """The domain worker process with WFR_METRICS_PORT serves /metrics; its housekeeping pass sets wfr_stuck_runs for every reason."""
    db_url = f"sqlite:///{tmp_path / 'domain.db'}"
    database = Database(db_url)
    await upgrade(database)
    await database.dispose()
    port = _free_port()
    with isolated_namespace() as namespace:
        env = _env(temporal_server, db_url, WFR_METRICS_PORT=str(port))
        env["WFR_TEMPORAL_NAMESPACE"] = namespace
        proc = await _start("domain-worker", env, f"polling domain task queue {DOMAIN_TASK_QUEUE}", tmp_path / "domain.log")
        client = await Client.connect(temporal_server.address, namespace=namespace, runtime=temporal_runtime())
        try:
            result = await client.execute_workflow(HOUSEKEEPING_WORKFLOW, id=f"housekeeping-{uuid.uuid4().hex[:8]}", task_queue=DOMAIN_TASK_QUEUE,
                                                   execution_timeout=timedelta(seconds=30))
            assert result["failed"] == {}, result
            _, samples = await _scrape(f"http://127.0.0.1:{port}/metrics")
            assert _stuck(samples) == dict.fromkeys(("NO_WORKER", "EXECUTION_GONE", "WORKFLOW_TASK_FAILING", "ACTIVITY_RETRYING", "BACKLOG"), 0)
        finally:
            code = await _stop(proc)
            with contextlib.suppress(Exception):
                await client.get_schedule_handle(HOUSEKEEPING_SCHEDULE_ID).delete()
    assert code == 0, (tmp_path / "domain.log").read_text()


async def test_concurrent_launches_of_one_key_count_one_run_started(sqlite_stack: Stack) -> None:
    """Retried launches racing on one idempotency key start one run, and ``wfr_runs_started`` counts it once.

    Before the fix, each racing launch that found the execution already started counted it again.
    """
    from prometheus_client import generate_latest

    from runtime_core import metrics

    stack = sqlite_stack
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    wf = f"race-{uuid.uuid4().hex[:6]}"
    echo = {"id": wf, "version": 1, "name": wf, "steps": [{"id": "e", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {}}}]}
    assert (await publish_definitions(stack.database, stack.registry, tenant, [echo])).published
    before = _parse(generate_latest(metrics.REGISTRY).decode())
    launched = await asyncio.gather(*(stack.launcher.launch(tenant, wf, {"n": 1}, idempotency_key="same-key") for _ in range(6)))
    assert len({r.run_id for r in launched}) == 1
    after = _parse(generate_latest(metrics.REGISTRY).decode())
    assert _value(after, "wfr_runs_started_total", workflow=wf) - _value(before, "wfr_runs_started_total", workflow=wf) == 1


_MULTIPROC_CHILD = """
import os, sys
from runtime_core import metrics
for _ in range(int(sys.argv[1])):
    metrics.observe_run_ended("wf", "SUCCEEDED")
metrics.observe_deliveries([("signal", "DELIVERED", 0.2)])
metrics.OPEN_WAITS.labels("event").set(float(sys.argv[2]))
if sys.argv[3] == "kill":
    os.kill(os.getpid(), 9)
sys.stdout.write(metrics.generate_latest(metrics.exposed_registry()).decode())
"""


def test_multiprocess_dir_keeps_the_counts_of_a_killed_process(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, a SIGKILLed process's counts survive and its successor reports the sum.

    This is what makes a worker's counters equal the database after a kill -9 and a restart
    (the deployment test of tests/reliability relies on it). Gauges report the most recent value.
    """
    directory = tmp_path / "metrics" / "worker-1"  # created when missing
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    killed = subprocess.run([str(BIN / "python"), "-c", _MULTIPROC_CHILD, "3", "7", "kill"], env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    successor = subprocess.run([str(BIN / "python"), "-c", _MULTIPROC_CHILD, "2", "4", "report"], env=env, capture_output=True, text=True, timeout=60)
    assert successor.returncode == 0, successor.stderr
    samples = _parse(successor.stdout)
    assert _value(samples, "wfr_runs_ended_total", workflow="wf", status="SUCCEEDED") == 5
    assert _value(samples, "wfr_event_deliveries_total", kind="signal", status="delivered") == 2
    assert _value(samples, "wfr_event_delivery_lag_seconds_count") == 2
    assert _value(samples, "wfr_open_waits", type="event") == 4
    # without the variable, a process reports only its own counts
    alone = subprocess.run([str(BIN / "python"), "-c", _MULTIPROC_CHILD, "2", "4", "report"], env={k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
                           capture_output=True, text=True, timeout=60)
    assert _value(_parse(alone.stdout), "wfr_runs_ended_total", workflow="wf", status="SUCCEEDED") == 2
